"""Ops that merge several arrays of one batch: the element-wise sum and concatenation.

  add:          out = x_0 + x_1 + ... (one shape)     dx_k = dout for every k
  concatenate:  out = [x_0 | x_1 | ...] along axis    dx_k = the slice of dout that x_k filled

add's backward returns dout itself for every input (no copy: nothing in dlcore writes into a
gradient it receives), concatenate's backward returns views of dout.

The GPU path of add (kernels/merge.cu) sums the inputs in one grid-stride pass, in input order,
as the NumPy reference does; concatenation is a copy the array module (NumPy or CuPy) makes
natively, the same code on every backend.
"""

from __future__ import annotations

import itertools
import operator

import numpy

from dlcore.backend import get_backend, to_backend
from dlcore.ops import launch
from dlcore.ops.checks import require_float, require_same_dtype, require_shape
from dlcore.ops.launch import KernelFile, ceil_div
from dlcore.ops.tiled_gemm import require_int32_sizes


def _check_inputs(op, xs, least: int):
    """xs is a list or tuple of at least `least` float arrays of one dtype."""
    if not isinstance(xs, (list, tuple)) or len(xs) < least:
        got = f"{len(xs)} arrays" if isinstance(xs, (list, tuple)) else type(xs).__name__
        raise ValueError(f"{op}: expected a list of at least {least} arrays, got {got}")
    for position, x in enumerate(xs):
        require_float(op, f"input {position}", x)
    require_same_dtype(op, "input 0", xs[0], **{f"input {k}": x for k, x in enumerate(xs[1:], 1)})


def _shapes(xs) -> list[tuple[int, ...]]:
    return [tuple(x.shape) for x in xs]


# ---------------------------------------------------------------- add


def _check_add_inputs(op, xs):
    _check_inputs(op, xs, least=2)
    if len(set(_shapes(xs))) != 1:
        raise ValueError(f"{op}: the inputs must all have one shape, got shapes {_shapes(xs)}")


def add_forward_cpu(xs):
    """NumPy reference of `add_forward`."""
    _check_add_inputs("add_forward", xs)
    out = xs[0] + xs[1]
    for x in xs[2:]:
        out += x
    return out, (len(xs), tuple(out.shape), out.dtype)


def add_backward(dout, cache):
    """dout like the inputs -> [dout] * count: the sum's gradient is dout for every input."""
    count, shape, dtype = cache
    require_shape("add_backward", "dout", dout, shape, "the forward output")
    if dout.dtype != dtype:
        raise ValueError(f"add_backward: dout must have the dtype of the inputs ({dtype}), got dtype {dout.dtype}")
    return [dout] * count


_kernels = KernelFile("merge.cu", ("add_forward",))
_BLOCK = 256  # threads per block of the grid-stride loop
MAX_GRID_BLOCKS = 4096  # grid-stride launches stop here; their loops cover the rest


def add_forward_gpu(xs):
    """CUDA launcher of `add_forward`: one pass over a table of the inputs' addresses."""
    op = "add_forward"
    _check_add_inputs(op, xs)
    xs = [launch.contiguous(x) for x in xs]  # kept alive until the kernel is queued
    require_int32_sizes(op, inputs=xs[0].size)
    pointers = to_backend(numpy.array([launch.device_pointer(x) for x in xs], dtype=numpy.uint64))  # (count,)
    out = launch.empty(xs[0].shape, xs[0].dtype)
    grid = (max(1, min(ceil_div(out.size, _BLOCK), MAX_GRID_BLOCKS)),)
    _kernels.get(op, out.dtype)(grid, (_BLOCK,), (pointers, launch.i32(len(xs)), out, launch.i32(out.size)))
    return out, (len(xs), tuple(out.shape), out.dtype)


def add_forward(xs):
    """[x_0, x_1, ...] of one shape (any rank) and dtype -> (x_0 + x_1 + ..., cache), summed in order."""
    if get_backend().runs_kernels:
        return add_forward_gpu(xs)
    return add_forward_cpu(xs)


# ---------------------------------------------------------------- concatenate


def concatenate_forward(xs, axis=1):
    """[x_0, x_1, ...] -> (out, cache): joined along `axis` (not 0, the batch; negative counts
    from the end), which every other dimension must match: (N, C_i, H, W) -> (N, sum C_i, H, W)
    and (N, d_i) -> (N, sum d_i) with the default axis 1."""
    op = "concatenate_forward"
    _check_inputs(op, xs, least=1)
    ranks = {x.ndim for x in xs}
    if len(ranks) != 1 or min(ranks) < 2:
        raise ValueError(f"{op}: the inputs must all have one rank >= 2, got shapes {_shapes(xs)}")
    axis = _batchless_axis(op, axis, xs[0].ndim)
    others = {shape[:axis] + shape[axis + 1 :] for shape in _shapes(xs)}
    if len(others) != 1:
        raise ValueError(
            f"{op}: the inputs must match in every dimension but axis {axis}, got shapes {_shapes(xs)}"
        )
    out = get_backend().xp.concatenate(xs, axis=axis)
    return out, (axis, [x.shape[axis] for x in xs], tuple(out.shape), out.dtype)


def concatenate_backward(dout, cache):
    """dout like out -> [dx_0, dx_1, ...]: views of the slices of dout along the axis."""
    axis, sizes, shape, dtype = cache
    require_shape("concatenate_backward", "dout", dout, shape, "the forward output")
    if dout.dtype != dtype:
        raise ValueError(
            f"concatenate_backward: dout must have the dtype of the inputs ({dtype}), got dtype {dout.dtype}"
        )
    stops = list(itertools.accumulate(sizes))
    starts = [0] + stops[:-1]
    return [dout[(slice(None),) * axis + (slice(start, stop),)] for start, stop in zip(starts, stops)]


def _batchless_axis(op, axis, ndim: int) -> int:
    """axis in [1, ndim), from an int in [-ndim + 1, ndim); axis 0 (the batch) is refused."""
    try:
        index = operator.index(axis)
    except TypeError:
        raise ValueError(f"{op}: axis must be an int, got {axis!r}") from None
    normalized = index + ndim if index < 0 else index
    if not 1 <= normalized < ndim:
        raise ValueError(f"{op}: axis {axis} is not a non-batch axis of inputs of rank {ndim}")
    return normalized
