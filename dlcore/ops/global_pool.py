"""Global average and max pooling: one value per channel of an NCHW array.

  avg: out[n, c] = mean over (h, w) of x[n, c, h, w]     dx = dout[n, c] / (H*W) in every cell
  max: out[n, c] = max over (h, w) of x[n, c, h, w]      dx = dout[n, c] in the argmax cell, 0 elsewhere

Tie rule of max: the argmax is the first maximal cell in row-major (h, w) order, and a NaN
counts as the maximum (the first NaN wins), as numpy.argmax; the cache keeps it as h*W + w.

The GPU path (kernels/global_pool.cu) reduces each (n, c) plane with one warp in a fixed order
and writes the gradients with one thread per input cell.
"""

from __future__ import annotations

import numpy

from dlcore.backend import get_backend
from dlcore.ops import launch
from dlcore.ops.checks import require_float, require_rank, require_shape
from dlcore.ops.launch import KernelFile, ceil_div
from dlcore.ops.tiled_gemm import require_int32_sizes


def _check_x(op, x):
    require_float(op, "x", x)
    require_rank(op, "x", x, {4: "(N, C, H, W)"})
    if x.shape[2] * x.shape[3] == 0:
        raise ValueError(f"{op}: x must have at least one cell per plane, got shape {tuple(x.shape)}")


def _check_dout(op, dout, x_shape, x_dtype):
    require_shape(op, "dout", dout, tuple(x_shape[:2]), "the forward output")
    if dout.dtype != x_dtype:
        raise ValueError(f"{op}: dout must have the dtype of x ({x_dtype}), got dtype {dout.dtype}")


def global_avg_pool2d_forward_cpu(x):
    """NumPy reference of `global_avg_pool2d_forward`."""
    _check_x("global_avg_pool2d_forward", x)
    return x.mean(axis=(2, 3)), (tuple(x.shape), x.dtype)


def global_avg_pool2d_backward_cpu(dout, cache):
    """NumPy reference of `global_avg_pool2d_backward`."""
    x_shape, x_dtype = cache
    _check_dout("global_avg_pool2d_backward", dout, x_shape, x_dtype)
    dx = numpy.empty(x_shape, x_dtype)
    dx[...] = (dout / x_dtype.type(x_shape[2] * x_shape[3]))[:, :, None, None]
    return dx


def global_max_pool2d_forward_cpu(x):
    """NumPy reference of `global_max_pool2d_forward`."""
    _check_x("global_max_pool2d_forward", x)
    planes = x.reshape(x.shape[0], x.shape[1], -1)  # (N, C, H*W)
    argmax = planes.argmax(axis=2)  # (N, C): the first maximum, or the first NaN
    out = numpy.take_along_axis(planes, argmax[:, :, None], axis=2)[:, :, 0]
    return out, (tuple(x.shape), x.dtype, argmax)


def global_max_pool2d_backward_cpu(dout, cache):
    """NumPy reference of `global_max_pool2d_backward`."""
    x_shape, x_dtype, argmax = cache
    _check_dout("global_max_pool2d_backward", dout, x_shape, x_dtype)
    dx = numpy.zeros(x_shape[:2] + (x_shape[2] * x_shape[3],), x_dtype)  # (N, C, H*W)
    numpy.put_along_axis(dx, argmax[:, :, None], dout[:, :, None], axis=2)
    return dx.reshape(x_shape)


# ---------------------------------------------------------------- CUDA launchers

_kernels = KernelFile(
    "global_pool.cu",
    (
        "global_avg_pool2d_forward",
        "global_max_pool2d_forward",
        "global_avg_pool2d_backward",
        "global_max_pool2d_backward",
    ),
)
_BLOCK = 256  # threads per block: 8 warps, a plane per warp forward, a cell per thread backward
_WARPS_PER_BLOCK = _BLOCK // 32
MAX_GRID_BLOCKS = 4096  # grid-stride launches stop here; their loops cover the rest


def _plane_grid(planes: int) -> tuple[int]:
    """Blocks of a warp-per-plane launch (grid-stride over planes beyond MAX_GRID_BLOCKS)."""
    return (max(1, min(ceil_div(planes, _WARPS_PER_BLOCK), MAX_GRID_BLOCKS)),)


def _cell_grid(cells: int) -> tuple[int]:
    """Blocks of a grid-stride launch over cells."""
    return (max(1, min(ceil_div(cells, _BLOCK), MAX_GRID_BLOCKS)),)


def _contiguous_x(op, x):
    _check_x(op, x)
    require_int32_sizes(op, x=x.size)
    return launch.contiguous(x)


def global_avg_pool2d_forward_gpu(x):
    """CUDA launcher of `global_avg_pool2d_forward`."""
    op = "global_avg_pool2d_forward"
    x = _contiguous_x(op, x)
    planes, cells = x.shape[0] * x.shape[1], x.shape[2] * x.shape[3]
    out = launch.empty(tuple(x.shape[:2]), x.dtype)  # (N, C)
    _kernels.get(op, x.dtype)(_plane_grid(planes), (_BLOCK,), (x, out, launch.i32(planes), launch.i32(cells)))
    return out, (tuple(x.shape), x.dtype)


def global_avg_pool2d_backward_gpu(dout, cache):
    """CUDA launcher of `global_avg_pool2d_backward`."""
    op = "global_avg_pool2d_backward"
    x_shape, x_dtype = cache
    _check_dout(op, dout, x_shape, x_dtype)
    dout = launch.contiguous(dout)
    dx = launch.empty(x_shape, x_dtype)  # (N, C, H, W)
    cells = x_shape[2] * x_shape[3]
    _kernels.get(op, x_dtype)(_cell_grid(dx.size), (_BLOCK,), (dout, dx, launch.i32(dx.size), launch.i32(cells)))
    return dx


def global_max_pool2d_forward_gpu(x):
    """CUDA launcher of `global_max_pool2d_forward`; the cache holds the int32 argmax."""
    op = "global_max_pool2d_forward"
    x = _contiguous_x(op, x)
    planes, cells = x.shape[0] * x.shape[1], x.shape[2] * x.shape[3]
    out = launch.empty(tuple(x.shape[:2]), x.dtype)  # (N, C)
    argmax = launch.empty(tuple(x.shape[:2]), numpy.int32)  # (N, C): h*W + w within the plane
    args = (x, out, argmax, launch.i32(planes), launch.i32(cells))
    _kernels.get(op, x.dtype)(_plane_grid(planes), (_BLOCK,), args)
    return out, (tuple(x.shape), x.dtype, argmax)


def global_max_pool2d_backward_gpu(dout, cache):
    """CUDA launcher of `global_max_pool2d_backward`."""
    op = "global_max_pool2d_backward"
    x_shape, x_dtype, argmax = cache
    _check_dout(op, dout, x_shape, x_dtype)
    dout = launch.contiguous(dout)
    dx = launch.empty(x_shape, x_dtype)  # (N, C, H, W)
    cells = x_shape[2] * x_shape[3]
    args = (dout, argmax, dx, launch.i32(dx.size), launch.i32(cells))
    _kernels.get(op, x_dtype)(_cell_grid(dx.size), (_BLOCK,), args)
    return dx


# ---------------------------------------------------------------- dispatchers


def global_avg_pool2d_forward(x):
    """x (N, C, H, W) -> (out (N, C), cache): the mean of each (n, c) plane."""
    if get_backend().runs_kernels:
        return global_avg_pool2d_forward_gpu(x)
    return global_avg_pool2d_forward_cpu(x)


def global_avg_pool2d_backward(dout, cache):
    """dout (N, C) -> dx (N, C, H, W) = dout / (H*W) in every cell of the plane."""
    if get_backend().runs_kernels:
        return global_avg_pool2d_backward_gpu(dout, cache)
    return global_avg_pool2d_backward_cpu(dout, cache)


def global_max_pool2d_forward(x):
    """x (N, C, H, W) -> (out (N, C), cache): the maximum of each (n, c) plane (NaN if it holds one)."""
    if get_backend().runs_kernels:
        return global_max_pool2d_forward_gpu(x)
    return global_max_pool2d_forward_cpu(x)


def global_max_pool2d_backward(dout, cache):
    """dout (N, C) -> dx (N, C, H, W): dout at each plane's first maximal cell, zero elsewhere."""
    if get_backend().runs_kernels:
        return global_max_pool2d_backward_gpu(dout, cache)
    return global_max_pool2d_backward_cpu(dout, cache)
