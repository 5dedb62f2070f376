"""2-D convolution (cross-correlation, as every DL framework defines it).

  out[n, k, oh, ow] = b[k] + sum_{c, i, j} w[k, c, i, j] * xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]
with dilation (dh, dw) (1: adjacent taps); a dilated kernel spans (k - 1) * d + 1 cells, and
"same" padding pads for that span (TensorFlow's rule).

Layouts: x (N, C, H, W), w (K, C, kh, kw), b (K,), out (N, K, OH, OW). The NumPy path
keeps the batch innermost: x is copied once into a zero-padded (C, Hp, Wp, N) array, and
out and dx are (N, ...) views of (..., N) arrays, which the next layer reads without a
transpose. It has two algorithms (cpu_conv_algorithm below):

im2col + GEMM, for any geometry. The column matrix has rows (c, i, j) and columns
(oh, ow, n), so every window element is a long contiguous run and the im2col copy and
the fold are cheap. The output positions are cut into blocks of about
COLUMN_BLOCK_BYTES of columns, so no column matrix of the whole batch exists (backward
rebuilds each block's columns from the padded input), and each pass is one BLAS GEMM per
block on contiguous operands (P = positions in the block * N):
  forward          out_kp  = w_2d @ cols             (K, C*kh*kw) @ (C*kh*kw, P)
  backward weight  dw_2d  += dout_kp @ cols.T
  backward data    dcols   = w_2d.T @ dout_kp, folded back by kh*kw strided slice-adds

Winograd F(4x4, rxr) (ops/winograd.py) for stride-1 undilated square kernels up to 5x5: 4.0x (3x3)
to 6.25x (5x5) fewer multiplications, the notes' second layer 1.7x faster per step.

activation="relu" fuses out = max(out, 0) into the forward pass; backward then masks
dout with out > 0 before the products.

The GPU path (kernels/conv.cu) has two kernel versions, chosen by
set_conv_kernel_version() or the DLCORE_CONV_KERNEL environment variable:
  "direct"         one thread per output / input cell / weight, loops over the window
  "implicit_gemm"  (default) tiled implicit GEMMs that gather im2col tiles on the fly;
                   a reduction too long for the tiles to fill the GPU (always that of
                   the weight gradient) is split into slices summed in a fixed order
"""

from __future__ import annotations

from typing import NamedTuple

import numpy
from numpy.lib.stride_tricks import sliding_window_view

from dlcore.backend import get_backend
from dlcore.ops import launch, scratch, tiled_gemm, winograd
from dlcore.ops.activation import relu_in_place
from dlcore.ops.checks import (
    require_activation,
    require_float,
    require_rank,
    require_same_dtype,
    require_shape,
)
from dlcore.ops.choice import Choice
from dlcore.ops.launch import KernelFile, ceil_div
from dlcore.ops.padding import Window2d, even_slices, window_2d


COLUMN_BLOCK_BYTES = 16 << 20  # columns of one block of output positions (half the L3 cache)


class _PositionBlock(NamedTuple):
    """A rectangle of output positions: whole rows, or a piece of one row."""

    rows: slice  # output rows oh, step 1
    cols: slice  # output columns ow, step 1

    def positions(self, out_w: int) -> slice:
        """The block's range of flattened positions oh * OW + ow."""
        return slice(self.rows.start * out_w + self.cols.start, (self.rows.stop - 1) * out_w + self.cols.stop)


def _position_blocks(window: Window2d, column_bytes: int) -> list[_PositionBlock]:
    """Blocks of output positions of about COLUMN_BLOCK_BYTES of columns (`column_bytes` per
    position): whole rows while a row fits, else even pieces of every row."""
    out_h, out_w = window.out_size
    per_block = COLUMN_BLOCK_BYTES // column_bytes  # positions
    if per_block >= out_w:
        return [_PositionBlock(rows, slice(0, out_w)) for rows in even_slices(out_h, per_block // out_w)]
    return [_PositionBlock(slice(oh, oh + 1), cols) for oh in range(out_h) for cols in even_slices(out_w, per_block)]


def _tap_slices(window: Window2d, block: _PositionBlock, i: int = 0, j: int = 0) -> tuple[slice, slice]:
    """The padded rows and columns that window element (i, j) of the block's windows reads,
    one per output position."""
    (sh, sw), rows, cols = window.stride, block.rows, block.cols
    i, j = i * window.dilation[0], j * window.dilation[1]  # the tap's offset in the window
    return (
        slice(rows.start * sh + i, (rows.stop - 1) * sh + i + 1, sh),
        slice(cols.start * sw + j, (cols.stop - 1) * sw + j + 1, sw),
    )


def _pad_batch_last(x, window: Window2d):
    """x (N, C, H, W), any strides -> zero-padded (C, Hp, Wp, N)."""
    padded = numpy.zeros((x.shape[1],) + window.padded_size + (x.shape[0],), dtype=x.dtype)
    padded[:, window.real_rows, window.real_cols, :] = x.transpose(1, 2, 3, 0)
    return padded


def _windows(padded, window: Window2d):
    """Every window of padded (C, Hp, Wp, N) as a view (C, Hp-eh+1, Wp-ew+1, N, kh, kw): its
    (eh, ew) = window.extent span, every dilation-th cell of it."""
    (dh, dw) = window.dilation
    return sliding_window_view(padded, window.extent, axis=(1, 2))[..., ::dh, ::dw]


def im2col(windows, window: Window2d, block: _PositionBlock, ones_row: bool = False):
    """Contiguous columns (C*kh*kw, positions*N) of the block, from `_windows(padded, window)`.
    ones_row appends a row of ones: the bias's column of the GEMMs [w | b] @ cols and
    dout @ cols.T = [dw | db]."""
    rows, cols = _tap_slices(window, block)
    view = windows[:, rows, cols].transpose(0, 4, 5, 1, 2, 3)  # (C, kh, kw, rows, cols, N)
    taps = view.shape[0] * view.shape[1] * view.shape[2]
    columns = scratch.take("im2col.columns", (taps + ones_row, view[0, 0, 0].size), windows.dtype)
    columns[:taps].reshape(view.shape)[...] = view
    if ones_row:
        columns[taps] = 1
    return columns


def col2im_add(dpadded, dcols, window: Window2d, block: _PositionBlock):
    """Adds the block's column gradients dcols (C*kh*kw, positions*N) into dpadded (C, Hp, Wp, N):
    each entry goes back to the cell im2col copied it from; overlapping windows accumulate."""
    (kh, kw), rows, cols = window.kernel, block.rows, block.cols
    channels, batch = dpadded.shape[0], dpadded.shape[3]
    dcols = dcols.reshape(channels, kh, kw, rows.stop - rows.start, cols.stop - cols.start, batch)
    for i in range(kh):
        for j in range(kw):
            tap_rows, tap_cols = _tap_slices(window, block, i, j)
            dpadded[:, tap_rows, tap_cols, :] += dcols[:, i, j]


def _check_conv_args(op, x, w, b):
    require_float(op, "x", x)
    require_rank(op, "x", x, {4: "(N, C, H, W)"})
    require_rank(op, "w", w, {4: f"(K, {x.shape[1]}, kh, kw)"})
    if w.shape[1] != x.shape[1]:
        raise ValueError(
            f"{op}: expected w of shape (K, {x.shape[1]}, kh, kw) for x of shape {tuple(x.shape)}, "
            f"got shape {tuple(w.shape)}"
        )
    if b is not None:
        require_shape(op, "b", b, (w.shape[0],), "one bias per output channel")
    require_same_dtype(op, "x", x, w=w, b=b)


class _Im2colCache(NamedTuple):
    padded: numpy.ndarray  # (C, Hp, Wp, N)
    w: numpy.ndarray  # (K, C, kh, kw)
    has_bias: bool
    window: Window2d
    relu_out: numpy.ndarray | None  # (K, OH*OW, N) after a fused ReLU, else None

    @property
    def batch(self) -> int:
        return self.padded.shape[3]


CPU_CONV_ALGORITHMS = ("auto", "im2col", "winograd")
# The NumPy path's algorithm: set_cpu_conv_algorithm(), else DLCORE_CPU_CONV, else auto.
#   im2col    every convolution by im2col + GEMM
#   winograd  Winograd F(4x4, rxr) wherever it applies (stride 1, square 2x2..5x5 kernels), else im2col
#   auto      Winograd where it applies and both channel counts reach WINOGRAD_MIN_CHANNELS
cpu_algorithm = Choice("the CPU convolution algorithm", CPU_CONV_ALGORITHMS, "DLCORE_CPU_CONV", "auto")
cpu_conv_algorithm = cpu_algorithm.get
set_cpu_conv_algorithm = cpu_algorithm.set  # returns the previous algorithm
use_cpu_conv_algorithm = cpu_algorithm.use  # with use_cpu_conv_algorithm("im2col"): ...
# Below this many input or output channels the GEMMs over channels are too thin to repay
# Winograd's transforms (at 14x14, 5x5: Winograd's forward pass loses at 8 channels, its
# backward wins from 4; the notes' first layer has 1 input channel).
WINOGRAD_MIN_CHANNELS = 16


def _uses_winograd(window: Window2d, channels: int, kernels: int) -> bool:
    algorithm = cpu_conv_algorithm()
    if algorithm == "im2col" or not winograd.applies(window):
        return False
    return algorithm == "winograd" or min(channels, kernels) >= WINOGRAD_MIN_CHANNELS


def conv2d_forward_cpu(x, w, b, stride=1, padding=0, activation=None, need_backward=True, dilation=1):
    """NumPy reference of `conv2d_forward`; out is a view of batch-innermost memory."""
    op = "conv2d_forward"
    _check_conv_args(op, x, w, b)
    require_activation(op, activation)
    window = window_2d(op, x.shape[2:], w.shape[2:], stride, padding, dilation)
    if _uses_winograd(window, x.shape[1], w.shape[0]):
        out_k, cache = winograd.conv2d_forward(x, w, b, window, activation, need_backward)  # (K, OH, OW, N)
        return out_k.transpose(3, 0, 1, 2), cache
    batch, kernels, (out_h, out_w) = x.shape[0], w.shape[0], window.out_size
    padded = _pad_batch_last(x, window)  # (C, Hp, Wp, N)
    windows = _windows(padded, window)
    w_2d = w.reshape(kernels, -1)  # (K, C*kh*kw)
    if b is not None:
        w_2d = numpy.concatenate([w_2d, b[:, None]], axis=1)  # (K, C*kh*kw + 1): [w | b]
    out_kp = numpy.empty((kernels, out_h * out_w, batch), dtype=x.dtype)  # (K, OH*OW, N)
    for block in _position_blocks(window, w_2d.shape[1] * batch * x.itemsize):
        out_block = out_kp[:, block.positions(out_w)].reshape(kernels, -1)  # (K, positions*N) view
        numpy.matmul(w_2d, im2col(windows, window, block, ones_row=b is not None), out=out_block)
        if activation == "relu":
            relu_in_place(out_block)
    out = out_kp.reshape(kernels, out_h, out_w, batch).transpose(3, 0, 1, 2)  # (N, K, OH, OW)
    return out, _Im2colCache(padded, w, b is not None, window, out_kp if activation == "relu" else None)


def conv2d_backward_cpu(dout, cache, need_input_grad=True, dout_gated=False):
    """NumPy reference of `conv2d_backward`; dx is a view of batch-innermost memory."""
    w, window = cache.w, cache.window
    batch, kernels = cache.batch, w.shape[0]
    require_shape("conv2d_backward", "dout", dout, (batch, kernels) + window.out_size, "the forward output")
    require_same_dtype("conv2d_backward", "w", w, dout=dout)
    dout_k = dout.transpose(1, 2, 3, 0)  # (K, OH, OW, N); a view of contiguous memory when batch-innermost
    if isinstance(cache, winograd.WinogradCache):
        return winograd.conv2d_backward(dout_k, cache, need_input_grad, dout_gated)
    padded, w, has_bias, window, relu_out = cache  # relu_out (K, OH*OW, N) or None
    relu_out = None if dout_gated else relu_out
    dout_kp = dout_k.reshape(kernels, -1, batch)  # (K, OH*OW, N)
    w_2d = w.reshape(kernels, -1)  # (K, C*kh*kw)
    taps = w_2d.shape[1]
    grads = numpy.zeros((kernels, taps + has_bias), dtype=w.dtype)  # [dw | db]
    dpadded = numpy.zeros_like(padded) if need_input_grad else None  # (C, Hp, Wp, N)
    windows = _windows(padded, window)
    for block in _position_blocks(window, (taps + has_bias) * batch * padded.itemsize):
        positions = block.positions(window.out_size[1])
        dout_block = scratch.take("im2col.dout", (kernels, positions.stop - positions.start, batch), w.dtype)
        if relu_out is None:
            dout_block[...] = dout_kp[:, positions]
        else:
            numpy.multiply(dout_kp[:, positions], relu_out[:, positions] > 0, out=dout_block)
        dout_block = dout_block.reshape(kernels, -1)  # (K, positions*N)
        grads += dout_block @ im2col(windows, window, block, ones_row=has_bias).T
        if need_input_grad:
            dcols = scratch.take("im2col.column_grads", (taps, dout_block.shape[1]), w.dtype)
            col2im_add(dpadded, numpy.matmul(w_2d.T, dout_block, out=dcols), window, block)
    dw = numpy.ascontiguousarray(grads[:, :taps]).reshape(w.shape)
    db = numpy.ascontiguousarray(grads[:, taps]) if has_bias else None
    dx = None if dpadded is None else dpadded[:, window.real_rows, window.real_cols, :].transpose(3, 0, 1, 2)
    return dx, dw, db


# ---------------------------------------------------------------- CUDA launchers

CONV_KERNEL_VERSIONS = ("direct", "implicit_gemm")
# The version the GPU path launches: set_conv_kernel_version(), else DLCORE_CONV_KERNEL, else implicit_gemm.
kernel_version = Choice("the conv kernel version", CONV_KERNEL_VERSIONS, "DLCORE_CONV_KERNEL", "implicit_gemm")
conv_kernel_version = kernel_version.get
set_conv_kernel_version = kernel_version.set  # returns the previous version
use_conv_kernel_version = kernel_version.use  # with use_conv_kernel_version("direct"): ...


_kernels = KernelFile(
    "conv.cu",
    (
        "conv2d_forward_direct",
        "conv2d_backward_data_direct",
        "conv2d_backward_weight_direct",
        "conv2d_backward_bias_direct",
        "conv2d_forward_igemm",
        "conv2d_backward_data_igemm",
        "conv2d_backward_weight_igemm",
        "conv2d_transpose_weights",
        "sum_splits",
        "sum_splits_bias_relu",
    ),
)
_BLOCK = 256  # threads per block of the one-thread-per-element kernels


class _GpuCache(NamedTuple):
    """What conv2d_backward_gpu needs from the forward pass."""

    x: object  # (N, C, H, W), C-contiguous
    w: object  # (K, C, kh, kw), C-contiguous
    has_bias: bool
    window: Window2d
    relu_out: object  # (N, K, OH, OW) forward output after a fused ReLU, else None


def _geometry(x_shape, w_shape, window: Window2d) -> tuple[numpy.int32, ...]:
    """The kernels' CONV_GEOMETRY_PARAMS: N, C, H, W, K, kh, kw, sh, sw, pad_top, pad_left, OH, OW, dh, dw."""
    first_pads = (window.pad_h[0], window.pad_w[0])
    values = (*x_shape, w_shape[0], *window.kernel, *window.stride, *first_pads, *window.out_size, *window.dilation)
    return tuple(launch.i32(value) for value in values)


def conv2d_forward_gpu(x, w, b, stride=1, padding=0, activation=None, need_backward=True, dilation=1):
    """CUDA launcher of `conv2d_forward`; the cache keeps x and w instead of the column matrix
    (references only, so it is returned whatever `need_backward` says)."""
    op = "conv2d_forward"
    _check_conv_args(op, x, w, b)
    require_activation(op, activation)
    window = window_2d(op, x.shape[2:], w.shape[2:], stride, padding, dilation)
    x, w = launch.contiguous(x), launch.contiguous(w)
    kernels = w.shape[0]
    out_shape = (x.shape[0], kernels) + window.out_size  # (N, K, OH, OW)
    tiled_gemm.require_int32_sizes(op, x=x.size, w=w.size, out=int(numpy.prod(out_shape)))
    bias = get_backend().xp.zeros(kernels, x.dtype) if b is None else launch.contiguous(b)  # (K,)
    out = launch.empty(out_shape, x.dtype)
    geometry, relu = _geometry(x.shape, w.shape, window), activation == "relu"
    if conv_kernel_version() == "direct":
        kernel = _kernels.get("conv2d_forward_direct", x.dtype)
        kernel((ceil_div(out.size, _BLOCK),), (_BLOCK,), (x, w, bias, out, *geometry, launch.i32(relu)))
    else:
        # out (K, N*P) = w (K, C*kh*kw) @ cols (C*kh*kw, N*P), P = OH*OW
        plan = tiled_gemm.plan_tiles(kernels, out.size // kernels, w.size // kernels)
        target = tiled_gemm.partial_buffer(plan, out)
        kernel = _kernels.get("conv2d_forward_igemm", x.dtype)
        kernel(plan.grid, plan.block, (x, w, bias, target, *geometry, launch.i32(plan.k_chunk), launch.i32(relu)))
        if plan.splits > 1:
            pixels = window.out_size[0] * window.out_size[1]
            tiled_gemm.sum_splits_bias_relu(_kernels, target, bias, out, plan.splits, pixels, relu)
    return out, _GpuCache(x, w, b is not None, window, out if relu else None)


def conv2d_backward_gpu(dout, cache, need_input_grad=True, dout_gated=False):
    """CUDA launcher of `conv2d_backward`."""
    if dout_gated:
        cache = cache._replace(relu_out=None)
    dw, db = conv2d_backward_weight_gpu(dout, cache)
    dx = conv2d_backward_data_gpu(dout, cache) if need_input_grad else None
    return dx, dw, db


def _backward_operands(dout, cache):
    """The checked, contiguous dout, the array the kernels mask it with (the ReLU output;
    dout itself, unread, without a fused ReLU), whether to mask, and the geometry."""
    x, w, _, window, relu_out = cache
    require_shape("conv2d_backward", "dout", dout, (x.shape[0], w.shape[0]) + window.out_size, "the forward output")
    require_same_dtype("conv2d_backward", "w", w, dout=dout)
    dout = launch.contiguous(dout)
    mask_relu = relu_out is not None
    return dout, relu_out if mask_relu else dout, mask_relu, _geometry(x.shape, w.shape, window)


def conv2d_backward_weight_gpu(dout, cache):
    """The weight pass of `conv2d_backward_gpu`: (dw (K, C, kh, kw), db (K,) or None)."""
    x, w, has_bias, _, _ = cache
    dout, gate, mask_relu, geometry = _backward_operands(dout, cache)
    if conv_kernel_version() == "direct":
        return _backward_weight_direct(dout, gate, mask_relu, x, w.shape, geometry, has_bias)
    dw, db = _backward_weight_igemm(dout, gate, mask_relu, x, w.shape, geometry)
    return dw, db if has_bias else None


def conv2d_backward_data_gpu(dout, cache):
    """The input pass of `conv2d_backward_gpu`: dx (N, C, H, W)."""
    x, w, _, _, _ = cache
    dout, gate, mask_relu, geometry = _backward_operands(dout, cache)
    if conv_kernel_version() == "direct":
        return _backward_data_direct(dout, gate, mask_relu, w, x.shape, geometry)
    return _backward_data_igemm(dout, gate, mask_relu, w, x.shape, geometry)


def _backward_weight_direct(dout, gate, mask_relu, x, w_shape, geometry, has_bias):
    """(dw (K, C, kh, kw), db (K,) or None) by the direct kernels."""
    batch, kernels = dout.shape[:2]
    dw = launch.empty(w_shape, dout.dtype)
    kernel = _kernels.get("conv2d_backward_weight_direct", dout.dtype)
    kernel((ceil_div(dw.size, _BLOCK),), (_BLOCK,), (dout, gate, x, dw, *geometry, launch.i32(mask_relu)))
    if not has_bias:
        return dw, None
    db = launch.empty((kernels,), dout.dtype)
    pixels = dout.size // (batch * kernels)
    kernel = _kernels.get("conv2d_backward_bias_direct", dout.dtype)
    kernel((kernels,), (_BLOCK,), (dout, gate, db, *(launch.i32(v) for v in (batch, kernels, pixels, mask_relu))))
    return dw, db


def _backward_data_direct(dout, gate, mask_relu, w, x_shape, geometry):
    """dx (N, C, H, W) by the direct kernel."""
    dx = launch.empty(x_shape, dout.dtype)
    kernel = _kernels.get("conv2d_backward_data_direct", dout.dtype)
    kernel((ceil_div(dx.size, _BLOCK),), (_BLOCK,), (dout, gate, w, dx, *geometry, launch.i32(mask_relu)))
    return dx


def _backward_weight_igemm(dout, gate, mask_relu, x, w_shape, geometry):
    """(dw (K, C, kh, kw), db (K,)) as views of one [dw | db] buffer, by the implicit GEMM
    dw (K, C*kh*kw) = dout (K, N*P) @ cols (N*P, C*kh*kw) split over N*P."""
    kernels = w_shape[0]
    taps = int(numpy.prod(w_shape[1:]))
    grads = launch.empty((kernels * taps + kernels,), dout.dtype)  # [dw | db]
    plan = tiled_gemm.plan_tiles(kernels, taps, dout.size // kernels)
    partial = tiled_gemm.partial_buffer(plan, grads)
    kernel = _kernels.get("conv2d_backward_weight_igemm", dout.dtype)
    kernel(plan.grid, plan.block, (dout, gate, x, partial, *geometry, launch.i32(plan.k_chunk), launch.i32(mask_relu)))
    if plan.splits > 1:
        tiled_gemm.sum_splits(_kernels, partial, grads, plan.splits)
    return grads[: kernels * taps].reshape(w_shape), grads[kernels * taps :]


def _backward_data_igemm(dout, gate, mask_relu, w, x_shape, geometry):
    """dx (N, C, H, W) by the implicit GEMM dx (C, N*H*W) = wt (C, K*kh*kw) @ gathered dout."""
    kernels, channels = w.shape[:2]
    kernel_size = w.shape[2] * w.shape[3]
    wt = launch.empty((channels, kernels) + tuple(w.shape[2:]), w.dtype)  # (C, K, kh, kw)
    transpose = _kernels.get("conv2d_transpose_weights", w.dtype)
    sizes = (launch.i32(v) for v in (kernels, channels, kernel_size))
    transpose((ceil_div(w.size, _BLOCK),), (_BLOCK,), (w, wt, *sizes))
    dx = launch.empty(x_shape, dout.dtype)
    plan = tiled_gemm.plan_tiles(channels, dx.size // channels, kernels * kernel_size)
    target = tiled_gemm.partial_buffer(plan, dx)
    kernel = _kernels.get("conv2d_backward_data_igemm", dout.dtype)
    kernel(plan.grid, plan.block, (wt, dout, gate, target, *geometry, launch.i32(plan.k_chunk), launch.i32(mask_relu)))
    if plan.splits > 1:
        tiled_gemm.sum_splits(_kernels, target, dx, plan.splits)
    return dx


# ---------------------------------------------------------------- dispatchers


def conv2d_forward(x, w, b, stride=1, padding=0, activation=None, need_backward=True, dilation=1):
    """x (N, C, H, W), w (K, C, kh, kw), b (K,) or None; stride int or pair; padding int,
    pair, "same" or "valid"; activation None or "relu" (fused) -> (out (N, K, OH, OW), cache).
    dilation int or pair: taps dilation cells apart ("same" pads for the span (k - 1) * d + 1).

    need_backward=False (inference) lets the op keep nothing for a backward pass: the cache
    may then be None."""
    if get_backend().runs_kernels:
        return conv2d_forward_gpu(x, w, b, stride, padding, activation, need_backward, dilation)
    return conv2d_forward_cpu(x, w, b, stride, padding, activation, need_backward, dilation)


def conv2d_backward(dout, cache, need_input_grad=True, dout_gated=False):
    """dout (N, K, OH, OW) -> (dx (N, C, H, W) or None, dw (K, C, kh, kw), db (K,) or None).

    need_input_grad=False skips dx (the first layer of a network needs none).
    dout_gated=True: dout already carries the fused ReLU's gradient (it is zero wherever the
    ReLU's output is), so the op does not mask it again."""
    if get_backend().runs_kernels:
        return conv2d_backward_gpu(dout, cache, need_input_grad, dout_gated)
    return conv2d_backward_cpu(dout, cache, need_input_grad, dout_gated)
