"""Elementwise activations, and a bias add fused with ReLU.

  relu(x) = max(x, 0)          drelu = dout * (out > 0)
  tanh(x)                      dtanh = dout * (1 - out^2)
  sigmoid(x) = 1 / (1 + e^-x)  dsig  = dout * out * (1 - out)
Caches hold the output, which the next layer keeps anyway.
"""

from __future__ import annotations

import numpy

from dlcore.ops.checks import require_float, require_rank, require_same_dtype, require_shape


def _check_dout(op, dout, out):
    require_shape(op, "dout", dout, out.shape, "the forward output")
    require_same_dtype(op, "out", out, dout=dout)


def relu_forward_cpu(x):
    """NumPy reference of `relu_forward`."""
    require_float("relu_forward", "x", x)
    out = numpy.maximum(x, x.dtype.type(0))
    return out, out


def relu_backward_cpu(dout, cache):
    """NumPy reference of `relu_backward`."""
    out = cache
    _check_dout("relu_backward", dout, out)
    return dout * (out > 0)


def tanh_forward_cpu(x):
    """NumPy reference of `tanh_forward`."""
    require_float("tanh_forward", "x", x)
    out = numpy.tanh(x)
    return out, out


def tanh_backward_cpu(dout, cache):
    """NumPy reference of `tanh_backward`."""
    out = cache
    _check_dout("tanh_backward", dout, out)
    return dout * (out.dtype.type(1) - out * out)


def sigmoid_forward_cpu(x):
    """NumPy reference of `sigmoid_forward`."""
    require_float("sigmoid_forward", "x", x)
    e = numpy.exp(-numpy.abs(x))
    one = x.dtype.type(1)
    out = numpy.where(x >= 0, one, e) / (one + e)
    return out, out


def sigmoid_backward_cpu(dout, cache):
    """NumPy reference of `sigmoid_backward`."""
    out = cache
    _check_dout("sigmoid_backward", dout, out)
    return dout * out * (out.dtype.type(1) - out)


def bias_relu_forward_cpu(x, b):
    """NumPy reference of `bias_relu_forward`."""
    op = "bias_relu_forward"
    require_float(op, "x", x)
    require_rank(op, "x", x, {2: "(N, F)", 4: "(N, C, H, W)"})
    require_shape(op, "b", b, (x.shape[1],), f"one per channel of x {tuple(x.shape)}")
    require_same_dtype(op, "x", x, b=b)
    out = x + b.reshape((1, -1) + (1,) * (x.ndim - 2))
    numpy.maximum(out, x.dtype.type(0), out=out)
    return out, out


def bias_relu_backward_cpu(dout, cache):
    """NumPy reference of `bias_relu_backward`."""
    out = cache
    _check_dout("bias_relu_backward", dout, out)
    dx = dout * (out > 0)
    return dx, dx.sum(axis=(0,) + tuple(range(2, dx.ndim)))


def relu_forward(x):
    """x (any shape) -> (max(x, 0), cache)."""
    return relu_forward_cpu(x)


def relu_backward(dout, cache):
    """dout like x -> dx = dout where x > 0, else 0."""
    return relu_backward_cpu(dout, cache)


def tanh_forward(x):
    """x (any shape) -> (tanh(x), cache)."""
    return tanh_forward_cpu(x)


def tanh_backward(dout, cache):
    """dout like x -> dx = dout * (1 - tanh(x)^2)."""
    return tanh_backward_cpu(dout, cache)


def sigmoid_forward(x):
    """x (any shape) -> (1 / (1 + exp(-x)), cache), without overflow for any |x|:
    with e = exp(-|x|) in (0, 1], sigmoid = 1 / (1 + e) for x >= 0 and e / (1 + e) below."""
    return sigmoid_forward_cpu(x)


def sigmoid_backward(dout, cache):
    """dout like x -> dx = dout * s * (1 - s), s = sigmoid(x)."""
    return sigmoid_backward_cpu(dout, cache)


def bias_relu_forward(x, b):
    """relu(x + b), b broadcast along axis 1: x (N, C, H, W) or (N, F), b (C,) or (F,)."""
    return bias_relu_forward_cpu(x, b)


def bias_relu_backward(dout, cache):
    """dout like x -> (dx like x, db (C,)): dx = dout * (out > 0), db = dx summed over all axes but 1."""
    return bias_relu_backward_cpu(dout, cache)
