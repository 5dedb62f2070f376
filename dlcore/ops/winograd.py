"""Winograd convolution F(m x m, r x r) on the CPU (Lavin & Gray, "Fast Algorithms for
Convolutional Neural Networks", 2016): stride 1, square r x r kernels.

The output is cut into m x m tiles; tile t reads the a x a input patch d_t (a = m + r - 1)
and is computed from it in the Winograd domain:
  y_t = A^T [ (G g G^T) ⊙ (B^T d_t B) ] A           A^T (m, a), G (a, r), B^T (a, a)
For each of the a*a Winograd positions the ⊙ over a batch is one GEMM over channels
(P = tiles * N, the batch innermost as in the im2col path):
  U = G w G^T       (a*a, K, C)
  V = B^T d B       (a*a, C, P)
  M = U @ V         (a*a, K, P)    a*a GEMMs of (K, C) @ (C, P)
  out = A^T M A     (m*m, K, P)    folded into (K, OH, OW, N)
m = 4 takes r*r*m*m / a*a = 4.0x (r = 3) and 6.25x (r = 5) fewer multiplications than
im2col; the transforms are small GEMMs that cost about one pass over each array.

The backward pass is the adjoint of the same linear maps:
  dM = A dY A^T                   per tile of dout
  dU = dM @ V^T  -> dw = G^T dU G
  dV = U^T @ dM  -> dd = B dV B^T, folded back into dx (overlapping patches add)

Float32 rounding: the transforms multiply by entries up to 21 and divide by up to 360,
so float32 results are 10-25x further from exact than im2col's: up to ~1e-5 of the
largest output or gradient for the notes' 5x5 layer (im2col: ~4e-7). Float64 agrees with
im2col to ~1e-13. DLCORE_CPU_CONV=im2col turns Winograd off.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

import numpy

from dlcore.ops import scratch
from dlcore.ops.padding import Window2d, even_slices

TILE = 4  # m: outputs per tile side
CHUNK_BYTES = 16 << 20  # of a chunk's largest Winograd-domain array: cache reuse against BLAS calls
# Interpolation points of the Toom-Cook construction, best-conditioned first; a - 1 are used
# (with the point at infinity): a = 8 for 5x5 kernels.
POINTS = (Fraction(0), Fraction(1), Fraction(-1), Fraction(2), Fraction(-2), Fraction(1, 2), Fraction(-1, 2))
KERNEL_SIZES = range(2, len(POINTS) - TILE + 3)  # r with a - 1 = TILE + r - 2 <= len(POINTS): 2..5


def _all_ones_position(a: int) -> int:
    """The flat Winograd position (x, y) = (1, 1) of the point 1: column 1 of A^T is all ones,
    so A^T E A adds e to every output of a tile when E holds e there and zeros elsewhere
    (the bias), and dM = A dY A^T holds there the sum of the tile's dY (the bias gradient)."""
    return POINTS.index(1) * (a + 1)


def applies(window: Window2d) -> bool:
    """Whether the Winograd path computes this convolution: stride 1, no dilation, a square
    kernel of KERNEL_SIZES."""
    kh, kw = window.kernel
    return window.stride == (1, 1) and window.dilation == (1, 1) and kh == kw and kh in KERNEL_SIZES


# ---------------------------------------------------------------- transform matrices


def _inverse(matrix: list[list[Fraction]]) -> list[list[Fraction]]:
    """Exact inverse by Gauss-Jordan elimination."""
    size = len(matrix)
    rows = [row[:] + [Fraction(int(i == j)) for j in range(size)] for i, row in enumerate(matrix)]
    for col in range(size):
        pivot = next(r for r in range(col, size) if rows[r][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        rows[col] = [value / rows[col][col] for value in rows[col]]
        for r in range(size):
            if r != col and rows[r][col] != 0:
                factor = rows[r][col]
                rows[r] = [value - factor * lead for value, lead in zip(rows[r], rows[col])]
    return [row[size:] for row in rows]


def _evaluation(points: tuple[Fraction, ...], degree: int) -> list[list[Fraction]]:
    """(len(points) + 1, degree): a polynomial's values at the points, then its leading
    coefficient (its 'value at infinity')."""
    return [[p**k for k in range(degree)] for p in points] + [[Fraction(0)] * (degree - 1) + [Fraction(1)]]


@functools.cache
def _exact_transforms(m: int, r: int) -> tuple[list[list[Fraction]], ...]:
    """(A^T, G, B^T) of F(m, r), exact.

    Toom-Cook: the product s = u * g of polynomials of m and r coefficients is
    s = E_a^-1 [(E_m u) ⊙ (E_r g)] with E_n = _evaluation(points, n). The correlation
    y_i = sum_j g_j d_{i+j} is the transpose of that bilinear map in u:
    y = E_m^T [(E_r g) ⊙ (E_a^-T d)], so A^T = E_m^T, G = E_r, B^T = E_a^-T. Each row of
    B^T is scaled to coprime integers and the matching row of G divided by the same factor."""
    a = m + r - 1
    points = POINTS[: a - 1]
    inverse = _inverse(_evaluation(points, a))
    b_t = [list(column) for column in zip(*inverse)]
    g = _evaluation(points, r)
    a_t = [list(column) for column in zip(*_evaluation(points, m))]
    for row in range(a):
        denominator = math.lcm(*(value.denominator for value in b_t[row]))
        scale = Fraction(denominator, math.gcd(*(int(value * denominator) for value in b_t[row])))
        b_t[row] = [value * scale for value in b_t[row]]
        g[row] = [value / scale for value in g[row]]
    return a_t, g, b_t


@functools.cache
def transforms(r: int, dtype) -> tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Read-only (A^T (m, a), G (a, r), B^T (a, a)) of F(TILE, r) in `dtype`."""
    matrices = tuple(numpy.array(exact, dtype=dtype) for exact in _exact_transforms(TILE, r))
    for matrix in matrices:
        matrix.flags.writeable = False
    return matrices


def _sandwich(left, array, out):
    """left (L, p) applied to both leading axes of array (p, p, R), into out (L, L, R):
    out[x, y] = sum_ij left[x, i] left[y, j] array[i, j], as two GEMMs."""
    size, inner = left.shape
    rows_done = scratch.take("winograd.half_transformed", (size, array.size // inner), array.dtype)
    numpy.matmul(left, array.reshape(inner, -1), out=rows_done)  # (L, p*R): rows i done
    return numpy.matmul(left, rows_done.reshape(size, inner, -1), out=out)  # one GEMM per x: columns j


# ---------------------------------------------------------------- tiling


class Tiling(NamedTuple):
    """The tiles of one convolution: m x m outputs each, reading an a x a input patch."""

    kernel: int  # r
    tiles: tuple[int, int]  # (TH, TW) = ceil(OH / m), ceil(OW / m)
    out_size: tuple[int, int]  # (OH, OW)

    @property
    def patch(self) -> int:
        return TILE + self.kernel - 1  # a

    @property
    def spans(self) -> int:
        """Tile rows a patch reaches: ceil(a / m)."""
        return -(-self.patch // TILE)

    @property
    def padded_size(self) -> tuple[int, int]:
        """Rows and columns of the zero-padded input: every patch inside, a whole number of
        tile rows, (TH + spans - 1) * m >= TH * m + r - 1."""
        return tuple((count + self.spans - 1) * TILE for count in self.tiles)

    @property
    def positions(self) -> int:
        return self.tiles[0] * self.tiles[1]


def tiling(window: Window2d) -> Tiling:
    out_h, out_w = window.out_size
    return Tiling(window.kernel[0], (-(-out_h // TILE), -(-out_w // TILE)), window.out_size)


def _patch_pieces(tiles: Tiling):
    """(span_h, span_w, rows, cols): the input patches' cells in tile-row span (span_h, span_w)
    of their own; patch cell (span_h * m + i, span_w * m + j) for i < rows, j < cols."""
    sizes = [min(TILE, tiles.patch - span * TILE) for span in range(tiles.spans)]
    return [(sh, sw, rows, cols) for sh, rows in enumerate(sizes) for sw, cols in enumerate(sizes)]


def _patches(padded, tiles: Tiling):
    """padded (C, Hp, Wp, n) -> every tile's input patch, d (a, a, C, TH, TW, n)."""
    channels, batch, (th, tw), a = padded.shape[0], padded.shape[3], tiles.tiles, tiles.patch
    blocks = padded.reshape(channels, th + tiles.spans - 1, TILE, tw + tiles.spans - 1, TILE, batch)
    d = scratch.take("winograd.patches", (a, a, channels, th, tw, batch), padded.dtype)
    for sh, sw, rows, cols in _patch_pieces(tiles):
        source = blocks[:, sh : sh + th, :rows, sw : sw + tw, :cols]  # (C, TH, rows, TW, cols, n)
        d[sh * TILE : sh * TILE + rows, sw * TILE : sw * TILE + cols] = source.transpose(2, 4, 0, 1, 3, 5)
    return d


def _fold_patches(dd, tiles: Tiling, dpadded):
    """The adjoint of _patches: adds every cell of dd (a, a, C, TH, TW, n) to the cell of
    dpadded (C, Hp, Wp, n) it was read from."""
    channels, batch, (th, tw) = dd.shape[2], dd.shape[5], tiles.tiles
    blocks = dpadded.reshape(channels, th + tiles.spans - 1, TILE, tw + tiles.spans - 1, TILE, batch)
    for sh, sw, rows, cols in _patch_pieces(tiles):
        piece = dd[sh * TILE : sh * TILE + rows, sw * TILE : sw * TILE + cols]
        blocks[:, sh : sh + th, :rows, sw : sw + tw, :cols] += piece.transpose(2, 3, 0, 4, 1, 5)


def _tile_pieces(size: int) -> list[tuple[slice, int]]:
    """(tiles, cells) covering range(size): the whole tiles, then a last partial one."""
    whole, rest = divmod(size, TILE)
    return ([(slice(0, whole), TILE)] if whole else []) + ([(slice(whole, whole + 1), rest)] if rest else [])


def _output_pieces(tiles: Tiling):
    """(row tiles, rows, column tiles, cols) of the outputs' rectangles of equal tiles."""
    rows, cols = (_tile_pieces(size) for size in tiles.out_size)
    return [(row_tiles, h, col_tiles, w) for row_tiles, h in rows for col_tiles, w in cols]


def _output_blocks(out, row_tiles: slice, rows: int, col_tiles: slice, cols: int):
    """out (K, OH, OW, n) -> the (K, tiles, rows, tiles, cols, n) view of those tiles' cells."""
    top, left = row_tiles.start * TILE, col_tiles.start * TILE
    height, width = (row_tiles.stop - row_tiles.start) * rows, (col_tiles.stop - col_tiles.start) * cols
    region = out[:, top : top + height, left : left + width]
    return region.reshape(out.shape[0], -1, rows, region.shape[2] // cols, cols, out.shape[3])


def _untile(y, out, tiles: Tiling, relu: bool):
    """y (m, m, K, TH, TW, n) -> out (K, OH, OW, n), dropping the cells past the edges;
    max(y, 0) with relu."""
    zeros = numpy.zeros(out.shape[-1:], out.dtype)  # broadcast, not the scalar 0: NumPy's SIMD loop
    for row_tiles, rows, col_tiles, cols in _output_pieces(tiles):
        piece = y[:rows, :cols, :, row_tiles, col_tiles].transpose(2, 3, 0, 4, 1, 5)
        target = _output_blocks(out, row_tiles, rows, col_tiles, cols)
        if relu:
            numpy.maximum(piece, zeros, out=target)
        else:
            target[...] = piece


def _tile(dout, tiles: Tiling, gate):
    """The adjoint of _untile: dout (K, OH, OW, n) -> (m, m, K, TH, TW, n), zeros past the
    edges; times (gate > 0) where a gate (the fused ReLU's output, like dout) is given."""
    kernels, batch = dout.shape[0], dout.shape[3]
    dy = scratch.take("winograd.tiles", (TILE, TILE, kernels) + tiles.tiles + (batch,), dout.dtype)
    if any(size % TILE for size in tiles.out_size):
        dy.fill(0)
    for row_tiles, rows, col_tiles, cols in _output_pieces(tiles):
        target = dy[:rows, :cols, :, row_tiles, col_tiles].transpose(2, 3, 0, 4, 1, 5)
        source = _output_blocks(dout, row_tiles, rows, col_tiles, cols)
        if gate is None:
            target[...] = source
        else:
            numpy.multiply(source, _output_blocks(gate, row_tiles, rows, col_tiles, cols) > 0, out=target)
    return dy


class Chunk(NamedTuple):
    """A block of the work: some tile rows of some images."""

    images: slice  # of the batch
    row_tiles: slice  # of the tile rows
    tiles: Tiling  # the tiles of these rows

    @property
    def input_rows(self) -> slice:
        """The padded input rows that the chunk's patches read."""
        return slice(self.row_tiles.start * TILE, (self.row_tiles.stop + self.tiles.spans - 1) * TILE)

    @property
    def output_rows(self) -> slice:
        start = self.row_tiles.start * TILE
        return slice(start, start + self.tiles.out_size[0])


def chunks(tiles: Tiling, batch: int, channels: int, itemsize: int) -> list[Chunk]:
    """The work cut so that a chunk's largest Winograd-domain array, (a*a, channels, P),
    stays near CHUNK_BYTES: each chunk's passes run in the caches, and the scratch memory
    does not grow with the batch. Whole batches of tile rows while one row of tiles fits,
    so the batch-innermost runs stay long; else single rows of batch slices.

    Each chunk costs about 250 BLAS calls (a*a GEMMs per pass), each a fork and join of
    BLAS's threads: on a machine whose second core is sometimes busy elsewhere, small
    chunks lose more to those joins than they win in cache (the notes' conv2 at batch 128:
    4 chunks of 8 MB gave the fastest steps while both cores were free, 55 ms against 58
    for one chunk of 32 MB, and the slowest while they were not, 69 ms against 62; 2 chunks
    of 16 MB are the compromise)."""
    per_tile = tiles.patch**2 * channels * itemsize
    per_row = per_tile * tiles.tiles[1]  # one image
    if per_row * batch <= CHUNK_BYTES:
        images = [slice(0, batch)]
        rows = even_slices(tiles.tiles[0], CHUNK_BYTES // (per_row * batch))
    else:
        images = even_slices(batch, max(1, CHUNK_BYTES // per_row))
        rows = even_slices(tiles.tiles[0], 1)
    out_h = tiles.out_size[0]
    return [
        Chunk(n, r, tiles._replace(tiles=(r.stop - r.start, tiles.tiles[1]), out_size=(min(out_h, r.stop * TILE) - r.start * TILE, tiles.out_size[1])))
        for n in images
        for r in rows
    ]


# ---------------------------------------------------------------- forward and backward


@dataclass(frozen=True, eq=False)
class WinogradCache:
    chunks: list[Chunk]
    v: list[numpy.ndarray]  # per chunk (a*a, C, P): the input in the Winograd domain, P = tiles * images
    u: numpy.ndarray  # (a*a, K, C): the weights in the Winograd domain
    w: numpy.ndarray  # (K, C, r, r)
    has_bias: bool
    window: Window2d
    tiles: Tiling
    relu_out: numpy.ndarray | None  # (K, OH, OW, N) after a fused ReLU, else None

    def __post_init__(self):
        scratch.recycle_when_dropped(self, self.v)  # the next forward pass refills them

    @property
    def batch(self) -> int:
        return self.chunks[-1].images.stop


def conv2d_forward(x, w, b, window: Window2d, activation=None, need_backward=True):
    """x (N, C, H, W), w (K, C, r, r), b (K,) or None, checked by the caller ->
    (out_k (K, OH, OW, N), WinogradCache, or None when not need_backward)."""
    batch, channels, kernels = x.shape[0], x.shape[1], w.shape[0]
    tiles = tiling(window)
    a = tiles.patch
    a_t, g, b_t = transforms(tiles.kernel, x.dtype)
    u = numpy.einsum("xi,kcij,yj->xykc", g, w, g, optimize=True).reshape(a * a, kernels, channels)
    out_k = numpy.empty((kernels,) + window.out_size + (batch,), dtype=x.dtype)
    work, vs = chunks(tiles, batch, max(channels, kernels), x.itemsize), []
    for chunk in work:
        if chunk.row_tiles.start == 0:  # the chunk's images, zero-padded (C, Hp, Wp, n)
            images = chunk.images.stop - chunk.images.start
            padded = scratch.take("winograd.padded", (channels,) + tiles.padded_size + (images,), x.dtype)
            padded.fill(0)
            padded[:, window.real_rows, window.real_cols] = x[chunk.images].transpose(1, 2, 3, 0)
        ct = chunk.tiles
        v_shape = (a * a, channels, ct.positions * images)
        v = scratch.reusable(v_shape, x.dtype) if need_backward else scratch.take("winograd.domain", v_shape, x.dtype)
        _sandwich(b_t, _patches(padded[:, chunk.input_rows], ct), out=v.reshape(a, a, -1))
        m = numpy.matmul(u, v, out=scratch.take("winograd.products", (a * a, kernels, v.shape[2]), x.dtype))
        if b is not None:
            m[_all_ones_position(a)] += b[:, None]
        y = _sandwich(a_t, m.reshape(a, a, -1), out=scratch.take("winograd.tiles", (TILE, TILE, m[0].size), x.dtype))
        y = y.reshape((TILE, TILE, kernels) + ct.tiles + (images,))
        _untile(y, out_k[:, chunk.output_rows, :, chunk.images], ct, relu=activation == "relu")
        if need_backward:
            vs.append(v)
    if not need_backward:
        return out_k, None
    relu_out = out_k if activation == "relu" else None
    return out_k, WinogradCache(work, vs, u, w, b is not None, window, tiles, relu_out)


def conv2d_backward(dout_k, cache: WinogradCache, need_input_grad=True, dout_gated=False):
    """dout_k (K, OH, OW, N) -> (dx (N, C, H, W) or None, dw (K, C, r, r), db (K,) or None).
    dx is a view of batch-innermost memory, like the forward output. dout_gated: dout
    already carries the fused ReLU's gradient."""
    work, vs, u, w, has_bias = cache.chunks, cache.v, cache.u, cache.w, cache.has_bias
    window, tiles = cache.window, cache.tiles
    relu_out = None if dout_gated else cache.relu_out
    kernels, channels, a = w.shape[0], w.shape[1], tiles.patch
    a_t, g, b_t = transforms(tiles.kernel, w.dtype)
    du = numpy.zeros_like(u)  # (a*a, K, C)
    db = numpy.zeros(kernels, dtype=w.dtype) if has_bias else None
    dx_c = numpy.empty((channels,) + window.in_size + (dout_k.shape[3],), w.dtype) if need_input_grad else None
    for chunk, v in zip(work, vs):
        cells = (slice(None), chunk.output_rows, slice(None), chunk.images)
        dy = _tile(dout_k[cells], chunk.tiles, None if relu_out is None else relu_out[cells])  # (m, m, K, th, TW, n)
        dm = scratch.take("winograd.products", (a, a, dy[0, 0].size), w.dtype)
        dm = _sandwich(a_t.T, dy.reshape(TILE, TILE, -1), out=dm).reshape(a * a, kernels, -1)  # (a*a, K, P)
        if has_bias:
            db += dm[_all_ones_position(a)].sum(axis=1)
        du += numpy.matmul(dm, v.transpose(0, 2, 1), out=scratch.take("winograd.weights", du.shape, w.dtype))
        if not need_input_grad:
            continue
        if chunk.row_tiles.start == 0:  # the gradient of the chunk's images, zero-padded (C, Hp, Wp, n)
            images = chunk.images.stop - chunk.images.start
            dpadded = scratch.take("winograd.padded", (channels,) + tiles.padded_size + (images,), w.dtype)
            dpadded.fill(0)
        dv = numpy.matmul(u.transpose(0, 2, 1), dm, out=scratch.take("winograd.domain", v.shape, w.dtype))
        dd = _sandwich(b_t.T, dv.reshape(a, a, -1), out=scratch.take("winograd.patches", (a, a, v[0].size), w.dtype))
        _fold_patches(dd.reshape((a, a, channels) + chunk.tiles.tiles + (images,)), chunk.tiles, dpadded[:, chunk.input_rows])
        if chunk.row_tiles.stop == tiles.tiles[0]:  # the images' last tile row
            dx_c[..., chunk.images] = dpadded[:, window.real_rows, window.real_cols]
    dw = numpy.einsum("xi,xykc,yj->kcij", g, du.reshape(a, a, kernels, channels), g, optimize=True)
    if not need_input_grad:
        return None, dw, db
    return dx_c.transpose(3, 0, 1, 2), dw, db
