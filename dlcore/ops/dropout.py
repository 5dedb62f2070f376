"""Inverted dropout with a counter-based mask: element i (flat, C order) is kept iff
uniform(seed, x.size)[i] >= float32(rate), and kept values are multiplied by 1 / (1 - rate)
rounded to x's dtype, so the expected output equals x and inference is the identity. The
same seed gives the same mask on every backend."""

from __future__ import annotations

import numpy

from dlcore.ops.checks import require_float, require_same_dtype, require_shape
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
    multiplier = numpy.where(keep, dtype(1 / (1 - rate)), dtype(0))  # 0 or 1 / (1 - rate)
    return x * multiplier, multiplier


def dropout_backward_cpu(dout, cache):
    """NumPy reference of `dropout_backward`."""
    multiplier = cache
    if multiplier is None:
        return dout
    require_shape("dropout_backward", "dout", dout, multiplier.shape, "the forward output")
    require_same_dtype("dropout_backward", "x", multiplier, dout=dout)
    return dout * multiplier


def dropout_forward(x, rate, seed, training=True):
    """x (any shape), rate in [0, 1), seed uint64 -> (out like x, cache).
    training=False or rate == 0 returns x unchanged."""
    return dropout_forward_cpu(x, rate, seed, training)


def dropout_backward(dout, cache):
    """dout like x -> dx = dout * mask / (1 - rate) (dout itself where forward was the identity)."""
    return dropout_backward_cpu(dout, cache)
