"""2-D max and average pooling over NCHW arrays.

  max: out[n, c, oh, ow] = max over the real cells of window (oh, ow)
  avg: out[n, c, oh, ow] = sum over the real cells of window (oh, ow) / divisor
       divisor = the number of real cells (count_include_pad=False, the default: TensorFlow's
       "same", PyTorch's count_include_pad=False) or kh * kw (count_include_pad=True:
       PyTorch's default, the padding counted as zeros)

Max pooling pads with -inf, so a padded cell is never the maximum. The max gradient goes to
one cell per window, the first maximum in row-major window order; overlapping windows
accumulate.

Two layouts give every window element (i, j) as an (N, C, OH, OW) view:
  tiled   stride == kernel, no padding: x reshaped to (N, C, OH, kh, OW, kw) (a view
          when kernel divides H and W)
  padded  anything else: x padded to (N, C, Hp, Wp), strided slices per element
The NumPy max pooling keeps x's memory order (conv hands it batch-innermost arrays), so its
elementwise passes run over unit strides. Its backward compares every window element at once
when the windows tile such an x, a cache-sized slab at a time; otherwise one element at a time.

The GPU path (kernels/pool.cu) runs one thread per output cell forward and one per input
cell backward; max pooling saves the int32 argmax (h * W + w within the plane) for backward.
"""

from __future__ import annotations

import numpy

from dlcore.backend import get_backend
from dlcore.ops import launch
from dlcore.ops.activation import relu_backward_gpu
from dlcore.ops.checks import require_float, require_rank, require_shape
from dlcore.ops.launch import KernelFile, ceil_div
from dlcore.ops.padding import Window2d, window_2d


def _pool_window(op, x, kernel_size, stride, padding) -> Window2d:
    require_float(op, "x", x)
    require_rank(op, "x", x, {4: "(N, C, H, W)"})
    window = window_2d(op, x.shape[2:], kernel_size, kernel_size if stride is None else stride, padding)
    for pads, kernel in ((window.pad_h, window.kernel[0]), (window.pad_w, window.kernel[1])):
        if max(pads) >= kernel:
            raise ValueError(f"{op}: padding {pads} must be smaller than the kernel size {kernel}")
    return window


def _tiles(window: Window2d) -> bool:
    """Windows tile the input: stride == kernel and no padding (a remainder no window covers is dropped)."""
    return window.stride == window.kernel and not window.has_padding


def _layout_shape(x_shape, window: Window2d) -> tuple[int, ...]:
    """Tiled (N, C, OH, kh, OW, kw) or padded (N, C, Hp, Wp)."""
    if _tiles(window):
        (kh, kw), (oh, ow) = window.kernel, window.out_size
        return tuple(x_shape[:2]) + (oh, kh, ow, kw)
    return tuple(x_shape[:2]) + window.padded_size


def _layout(x, window: Window2d, fill):
    """x (N, C, H, W) in `_layout_shape`, padded with `fill` (tiled: cells no window covers dropped)."""
    if _tiles(window):
        (kh, kw), (oh, ow) = window.kernel, window.out_size
        return x[:, :, : oh * kh, : ow * kw].reshape(_layout_shape(x.shape, window))
    return window.pad(x, fill)


def _element(laid_out, window: Window2d, i: int, j: int):
    """(N, C, OH, OW) view of window element (i, j) of an array in `_layout`'s layout."""
    if _tiles(window):
        return laid_out[:, :, :, i, :, j]
    return window.window_element(laid_out, i, j)


def _unlayout(grad, x_shape, window: Window2d):
    """Gradient in `_layout`'s layout -> (N, C, H, W) in grad's memory order (a view of grad
    when the windows tile x); zero where no window reaches."""
    if not _tiles(window):
        return numpy.ascontiguousarray(window.crop(grad))
    covered = grad.reshape(grad.shape[:2] + (grad.shape[2] * grad.shape[3], grad.shape[4] * grad.shape[5]))
    if covered.shape == tuple(x_shape):
        return covered
    dx = numpy.zeros(x_shape, dtype=grad.dtype)
    dx[:, :, : covered.shape[2], : covered.shape[3]] = covered
    return dx


def _check_dout(op, dout, x_shape, x_dtype, window: Window2d):
    require_shape(op, "dout", dout, tuple(x_shape[:2]) + window.out_size, "the forward output")
    if dout.dtype != x_dtype:
        raise ValueError(f"{op}: dout must have the dtype of x ({x_dtype}), got dtype {dout.dtype}")


def _window_positions(window: Window2d) -> list[tuple[int, int]]:
    """Window elements (i, j) in row-major order."""
    return list(numpy.ndindex(*window.kernel))


# ---------------------------------------------------------------- max pooling


def max_pool2d_forward_cpu(x, kernel_size=2, stride=None, padding="valid"):
    """NumPy reference of `max_pool2d_forward`."""
    window = _pool_window("max_pool2d_forward", x, kernel_size, stride, padding)
    laid_out = _layout(x, window, -numpy.inf)
    first, *rest = _window_positions(window)
    out = _element(laid_out, window, *first).copy(order="K")  # (N, C, OH, OW), in x's memory order
    for i, j in rest:
        numpy.maximum(out, _element(laid_out, window, i, j), out=out)
    return out, (x, out, window)


def max_pool2d_backward_cpu(dout, cache, gate=None):
    """NumPy reference of `max_pool2d_backward`; dx is laid out in memory like x."""
    x, out, window = cache
    _check_dout("max_pool2d_backward", dout, x.shape, x.dtype, window)
    laid_out = _layout(x, window, -numpy.inf)
    in_order = _in_memory_order_of(out, dout)  # for unit-stride loops against out below
    if gate is not None:  # times (gate > 0): in place when in_order is already a copy
        target = numpy.empty_like(out) if in_order is dout else in_order
        in_order = numpy.multiply(in_order, gate > 0, out=target)
    dout = in_order
    if _tiles(window) and _window_cells_runs_apart(x):
        grad = _tiled_max_grad(laid_out, out, dout, window)
    else:
        grad = _max_grad_by_element(laid_out, out, dout, window)
    return _unlayout(grad, x.shape, window)


def _in_memory_order_of(template, array):
    """array (template's shape) laid out like template: array itself when the strides agree, else a copy."""
    if array.strides == template.strides:
        return array
    copy = numpy.empty_like(template)
    copy[...] = array
    return copy


def _window_cells_runs_apart(x) -> bool:
    """x's innermost memory axis is N or C (conv hands pooling batch-innermost arrays): neighbouring
    cells of a window lie whole runs apart, so whole-window passes keep long unit-stride loops."""
    return min(map(abs, x.strides[2:])) > min(map(abs, x.strides[:2]))


def _max_grad_by_element(laid_out, out, dout, window: Window2d):
    """Max pooling gradient in `_layout`'s layout, one window element (i, j) at a time; any window."""
    overlapping = not _tiles(window)  # tiled windows write each cell of `grad` exactly once
    grad = numpy.zeros_like(laid_out) if overlapping else numpy.empty_like(laid_out)
    unclaimed = numpy.ones_like(out, dtype=bool)  # windows whose maximum is not found yet
    is_first_max = numpy.empty_like(unclaimed)
    for i, j in _window_positions(window):
        numpy.equal(_element(laid_out, window, i, j), out, out=is_first_max)
        is_first_max &= unclaimed
        unclaimed ^= is_first_max
        cells = _element(grad, window, i, j)
        if overlapping:
            cells += dout * is_first_max
        else:
            numpy.multiply(dout, is_first_max, out=cells)
    return grad


SLAB_BYTES = 1 << 21  # x per slab of `_tiled_max_grad`: the slab's temporaries stay in cache


def _slabs(x) -> list[tuple[slice, ...]]:
    """Indices cutting the outer of x's axes N, C into slabs of about SLAB_BYTES of x."""
    axis = 0 if abs(x.strides[0]) > abs(x.strides[1]) else 1
    step = max(1, SLAB_BYTES * x.shape[axis] // max(x.nbytes, 1))
    return [(slice(None),) * axis + (slice(start, start + step),) for start in range(0, x.shape[axis], step)]


def _tiled_max_grad(laid_out, out, dout, window: Window2d):
    """Max pooling gradient of tiling windows in `_layout`'s layout, every window element at once:
    one comparison, the ties cleared, one multiply; a slab of x at a time."""
    grad = numpy.empty_like(laid_out)  # (N, C, OH, kh, OW, kw)
    for slab in _slabs(laid_out):
        x_slab, cells = laid_out[slab], grad[slab]
        row = numpy.empty_like(x_slab[:, :, :, 0])  # (n, c, OH, OW, kw): a window row, laid out like x
        row[...] = out[slab][..., None]  # repeated along kw, so that the passes below run unbroken
        is_max = x_slab == row[:, :, :, None]  # (n, c, OH, kh, OW, kw)
        _keep_first_max(is_max, window)
        numpy.copyto(cells, is_max)
        row[...] = dout[slab][..., None]
        cells *= row[:, :, :, None]
    return grad


def _keep_first_max(is_max, window: Window2d):
    """Clear in place every True of is_max (N, C, OH, kh, OW, kw) after the first of its window."""
    first, *rest = (_element(is_max, window, i, j) for i, j in _window_positions(window))
    claimed = first  # (N, C, OH, OW): windows whose maximum is found
    for count, cells in enumerate(rest, 1):
        numpy.greater(cells, claimed, out=cells)  # cells and not claimed
        if count < len(rest):
            claimed = claimed | cells


# ---------------------------------------------------------------- average pooling


def _check_count_include_pad(op, count_include_pad) -> None:
    if not isinstance(count_include_pad, (bool, numpy.bool_)):
        raise ValueError(f"{op}: count_include_pad must be True or False, got {count_include_pad!r}")


def _divisors(window: Window2d, count_include_pad: bool, dtype):
    """(OH, OW) divisor of each window: kh*kw with count_include_pad (every window lies inside the
    padded input), else its number of real cells."""
    if count_include_pad:
        return numpy.full(window.out_size, window.kernel[0] * window.kernel[1], dtype=dtype)
    counts = []
    for size, kernel, stride, out, (pad_before, _) in zip(
        window.in_size, window.kernel, window.stride, window.out_size, (window.pad_h, window.pad_w)
    ):
        start = numpy.arange(out) * stride - pad_before  # first input index of each window
        counts.append(numpy.minimum(start + kernel, size) - numpy.maximum(start, 0))
    return numpy.outer(*counts).astype(dtype)


def avg_pool2d_forward_cpu(x, kernel_size=2, stride=None, padding="valid", count_include_pad=False):
    """NumPy reference of `avg_pool2d_forward`."""
    _check_count_include_pad("avg_pool2d_forward", count_include_pad)
    window = _pool_window("avg_pool2d_forward", x, kernel_size, stride, padding)
    laid_out = _layout(x, window, 0)
    first, *rest = _window_positions(window)
    out = _element(laid_out, window, *first).copy(order="K")  # (N, C, OH, OW), in x's memory order
    for i, j in rest:
        out += _element(laid_out, window, i, j)
    out /= _divisors(window, count_include_pad, x.dtype)
    return out, (x.shape, x.dtype, window, count_include_pad)


def avg_pool2d_backward_cpu(dout, cache):
    """NumPy reference of `avg_pool2d_backward`."""
    x_shape, x_dtype, window, count_include_pad = cache
    _check_dout("avg_pool2d_backward", dout, x_shape, x_dtype, window)
    share = dout / _divisors(window, count_include_pad, dout.dtype)  # (N, C, OH, OW)
    grad = numpy.zeros(_layout_shape(x_shape, window), dtype=dout.dtype)
    for i, j in _window_positions(window):
        _element(grad, window, i, j)[...] += share
    return _unlayout(grad, x_shape, window)


# ---------------------------------------------------------------- CUDA launchers

_kernels = KernelFile(
    "pool.cu", ("max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward")
)
_BLOCK = 256  # threads per block; one thread per output (forward) or input (backward) cell


def _grid(cells: int) -> tuple[int]:
    return (ceil_div(cells, _BLOCK),)


def _geometry(window: Window2d) -> tuple[numpy.int32, ...]:
    """The kernels' window arguments: H, W, OH, OW, kh, kw, sh, sw, pad_top, pad_left."""
    top_left = (window.pad_h[0], window.pad_w[0])
    sizes = (*window.in_size, *window.out_size, *window.kernel, *window.stride, *top_left)
    return tuple(launch.i32(value) for value in sizes)


def max_pool2d_forward_gpu(x, kernel_size=2, stride=None, padding="valid"):
    """CUDA launcher of `max_pool2d_forward`; the cache holds the argmax instead of x and out."""
    window = _pool_window("max_pool2d_forward", x, kernel_size, stride, padding)
    x = launch.contiguous(x)
    out_shape = tuple(x.shape[:2]) + window.out_size
    out = launch.empty(out_shape, x.dtype)  # (N, C, OH, OW)
    argmax = launch.empty(out_shape, numpy.int32)  # (N, C, OH, OW): h * W + w within the plane
    kernel = _kernels.get("max_pool2d_forward", x.dtype)
    kernel(_grid(out.size), (_BLOCK,), (x, out, argmax, launch.i32(out.size), *_geometry(window)))
    return out, (x.shape, x.dtype, argmax, window)


def max_pool2d_backward_gpu(dout, cache, gate=None):
    """CUDA launcher of `max_pool2d_backward`."""
    x_shape, x_dtype, argmax, window = cache
    _check_dout("max_pool2d_backward", dout, x_shape, x_dtype, window)
    dout = launch.contiguous(dout) if gate is None else relu_backward_gpu(dout, gate)
    dx = launch.empty(x_shape, x_dtype)  # (N, C, H, W)
    kernel = _kernels.get("max_pool2d_backward", x_dtype)
    kernel(_grid(dx.size), (_BLOCK,), (dout, argmax, dx, launch.i32(dx.size), *_geometry(window)))
    return dx


def avg_pool2d_forward_gpu(x, kernel_size=2, stride=None, padding="valid", count_include_pad=False):
    """CUDA launcher of `avg_pool2d_forward`."""
    _check_count_include_pad("avg_pool2d_forward", count_include_pad)
    window = _pool_window("avg_pool2d_forward", x, kernel_size, stride, padding)
    x = launch.contiguous(x)
    out = launch.empty(tuple(x.shape[:2]) + window.out_size, x.dtype)  # (N, C, OH, OW)
    kernel = _kernels.get("avg_pool2d_forward", x.dtype)
    geometry = (*_geometry(window), launch.i32(bool(count_include_pad)))
    kernel(_grid(out.size), (_BLOCK,), (x, out, launch.i32(out.size), *geometry))
    return out, (x.shape, x.dtype, window, count_include_pad)


def avg_pool2d_backward_gpu(dout, cache):
    """CUDA launcher of `avg_pool2d_backward`."""
    x_shape, x_dtype, window, count_include_pad = cache
    _check_dout("avg_pool2d_backward", dout, x_shape, x_dtype, window)
    dout = launch.contiguous(dout)
    dx = launch.empty(x_shape, x_dtype)  # (N, C, H, W)
    kernel = _kernels.get("avg_pool2d_backward", x_dtype)
    geometry = (*_geometry(window), launch.i32(bool(count_include_pad)))
    kernel(_grid(dx.size), (_BLOCK,), (dout, dx, launch.i32(dx.size), *geometry))
    return dx


# ---------------------------------------------------------------- dispatchers


def max_pool2d_forward(x, kernel_size=2, stride=None, padding="valid"):
    """x (N, C, H, W) -> (out (N, C, OH, OW), cache). kernel_size and stride (default:
    kernel_size) are ints or pairs; padding "valid", "same", an int or a pair."""
    if get_backend().runs_kernels:
        return max_pool2d_forward_gpu(x, kernel_size, stride, padding)
    return max_pool2d_forward_cpu(x, kernel_size, stride, padding)


def max_pool2d_backward(dout, cache, gate=None):
    """dout (N, C, OH, OW) -> dx (N, C, H, W): each window's gradient goes to its first maximum.

    gate (N, C, OH, OW) or None: dout is first multiplied by (gate > 0), a ReLU's gradient
    (the max pool of a ReLU's output passes its own output)."""
    if get_backend().runs_kernels:
        return max_pool2d_backward_gpu(dout, cache, gate)
    return max_pool2d_backward_cpu(dout, cache, gate)


def avg_pool2d_forward(x, kernel_size=2, stride=None, padding="valid", count_include_pad=False):
    """x (N, C, H, W) -> (out (N, C, OH, OW), cache); arguments as max_pool2d_forward.
    Each output is the sum of its window's real cells divided by their number (default, as
    TensorFlow and PyTorch's count_include_pad=False) or, with count_include_pad=True, by
    kh * kw (PyTorch's default: padding counts as zeros)."""
    if get_backend().runs_kernels:
        return avg_pool2d_forward_gpu(x, kernel_size, stride, padding, count_include_pad)
    return avg_pool2d_forward_cpu(x, kernel_size, stride, padding, count_include_pad)


def avg_pool2d_backward(dout, cache):
    """dout (N, C, OH, OW) -> dx (N, C, H, W): each window spreads dout / divisor over its real cells."""
    if get_backend().runs_kernels:
        return avg_pool2d_backward_gpu(dout, cache)
    return avg_pool2d_backward_cpu(dout, cache)
