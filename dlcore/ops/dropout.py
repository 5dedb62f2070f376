"""Inverted dropout with a counter-based mask: element i (flat, C order) is kept iff
uniform(seed, x.size)[i] >= float32(rate), and kept values are multiplied by 1 / (1 - rate)
rounded to x's dtype, so the expected output equals x and inference is the identity. The
same seed gives the same mask on every backend.

The GPU path (kernels/dropout.cu) computes the same Philox stream in the kernel and keeps no
mask: its cache is the seed and rate, and backward regenerates the mask from them."""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy

from dlcore.backend import get_backend
from dlcore.ops import launch
from dlcore.ops.checks import require_float, require_same_dtype, require_shape
from dlcore.ops.launch import KernelFile, ceil_div
from dlcore.ops.random import uniform


def dropout_forward_cpu(x, rate, seed, training=True):
    """NumPy reference of `dropout_forward`."""
    require_float("dropout_forward", "x", x)
    if not 0 <= rate < 1:
        raise ValueError(f"dropout_forward: rate must be in [0, 1), got {rate}")
    if not training or rate == 0:
        return x, None
    dtype = x.dtype.type
    keep = uniform(seed, x.size).reshape(x.shape) >= numpy.float32(rate)
    multiplier = keep * dtype(1 / (1 - rate))  # 0 or 1 / (1 - rate)
    return x * multiplier, multiplier


def dropout_backward_cpu(dout, cache):
    """NumPy reference of `dropout_backward`."""
    multiplier = cache
    if multiplier is None:
        return dout
    require_shape("dropout_backward", "dout", dout, multiplier.shape, "the forward output")
    require_same_dtype("dropout_backward", "x", multiplier, dout=dout)
    return dout * multiplier


# ---------------------------------------------------------------- CUDA launchers

_kernels = KernelFile("dropout.cu", ("dropout_apply",))
_BLOCK = 256  # threads per block; each thread handles groups of 4 elements (one Philox call)
MAX_GRID_BLOCKS = 4096  # the grid-stride loop covers the groups beyond this many blocks


@dataclass(frozen=True)
class DropoutMask:
    """The GPU path's cache: what regenerates the mask, and the shape and dtype it applies to."""

    seed: int
    rate: float
    shape: tuple
    dtype: numpy.dtype


def _check_seed(op, seed) -> int:
    seed = operator.index(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"{op}: seed must be in [0, 2**64), got {seed}")
    return seed


def _apply_mask(array, mask: DropoutMask):
    """array * (u >= float32(rate)) / (1 - rate), u the uniform stream of mask.seed."""
    array = launch.contiguous(array)
    out = launch.empty(mask.shape, mask.dtype)
    blocks = max(1, min(ceil_div(ceil_div(array.size, 4), _BLOCK), MAX_GRID_BLOCKS))
    scale = launch.scalar(1 / (1 - mask.rate), mask.dtype)
    args = (array, out, launch.i32(array.size), numpy.uint64(mask.seed), numpy.float32(mask.rate), scale)
    _kernels.get("dropout_apply", mask.dtype)((blocks,), (_BLOCK,), args)
    return out


def dropout_forward_gpu(x, rate, seed, training=True):
    """CUDA launcher of `dropout_forward`; the cache is a DropoutMask (None for the identity)."""
    require_float("dropout_forward", "x", x)
    if not 0 <= rate < 1:
        raise ValueError(f"dropout_forward: rate must be in [0, 1), got {rate}")
    if not training or rate == 0:
        return x, None
    mask = DropoutMask(_check_seed("dropout_forward", seed), rate, tuple(x.shape), x.dtype)
    return _apply_mask(x, mask), mask


def dropout_backward_gpu(dout, cache):
    """CUDA launcher of `dropout_backward`."""
    mask = cache
    if mask is None:
        return dout
    require_shape("dropout_backward", "dout", dout, mask.shape, "the forward output")
    require_same_dtype("dropout_backward", "x", mask, dout=dout)
    return _apply_mask(dout, mask)


# ---------------------------------------------------------------- dispatchers


def dropout_forward(x, rate, seed, training=True):
    """x (any shape), rate in [0, 1), seed uint64 -> (out like x, cache).
    training=False or rate == 0 returns x unchanged."""
    if get_backend().runs_kernels:
        return dropout_forward_gpu(x, rate, seed, training)
    return dropout_forward_cpu(x, rate, seed, training)


def dropout_backward(dout, cache):
    """dout like x -> dx = dout * mask / (1 - rate) (dout itself where forward was the identity)."""
    if get_backend().runs_kernels:
        return dropout_backward_gpu(dout, cache)
    return dropout_backward_cpu(dout, cache)
