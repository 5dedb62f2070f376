"""Elementwise activations, and a bias add fused with ReLU.

  relu(x) = max(x, 0)          drelu = dout * (out > 0)
  tanh(x)                      dtanh = dout * (1 - out^2)
  sigmoid(x) = 1 / (1 + e^-x)  dsig  = dout * out * (1 - out)
  leaky_relu(x) = x if x > 0 else slope * x, slope >= 0
                               dleaky = dout if out > 0 else slope * dout (slope * dout at x = 0, as PyTorch)
Caches hold the output, which the next layer keeps anyway (with slope >= 0, out > 0 exactly where x > 0).

The GPU path (kernels/activation.cu) runs grid-stride elementwise kernels; bias_relu's db is a
fixed-order per-channel reduction (a block per channel for NCHW, a column of threads per feature
for (N, F)), so it is the same on every run.
"""

from __future__ import annotations

import numpy

from dlcore.backend import get_backend
from dlcore.ops import launch
from dlcore.ops.checks import require_float, require_rank, require_same_dtype, require_shape
from dlcore.ops.launch import KernelFile, ceil_div


def _check_dout(op, dout, out):
    require_shape(op, "dout", dout, out.shape, "the forward output")
    require_same_dtype(op, "out", out, dout=dout)


def relu_in_place(array):
    """array = max(array, 0) in place; the NumPy epilogue of the fused conv and dense ops.
    Against a row of zeros broadcast over the leading axes NumPy runs its SIMD loop, against
    the scalar 0 it does not (2-3x slower on long rows)."""
    return numpy.maximum(array, numpy.zeros(array.shape[-1:], array.dtype), out=array)


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


def _check_negative_slope(op, negative_slope):
    """A finite float >= 0 (a negative slope would make out > 0 no longer mean x > 0)."""
    numeric = isinstance(negative_slope, (int, float, numpy.floating)) and not isinstance(negative_slope, bool)
    if not (numeric and 0 <= negative_slope < numpy.inf):
        raise ValueError(f"{op}: negative_slope must be a finite number >= 0, got {negative_slope!r}")


def leaky_relu_forward_cpu(x, negative_slope=0.01):
    """NumPy reference of `leaky_relu_forward`."""
    op = "leaky_relu_forward"
    require_float(op, "x", x)
    _check_negative_slope(op, negative_slope)
    slope = x.dtype.type(negative_slope)
    out = numpy.where(x > 0, x, x * slope)
    return out, (out, slope)


def leaky_relu_backward_cpu(dout, cache):
    """NumPy reference of `leaky_relu_backward`."""
    out, slope = cache
    _check_dout("leaky_relu_backward", dout, out)
    return numpy.where(out > 0, dout, dout * slope)


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


# ---------------------------------------------------------------- CUDA launchers

_kernels = KernelFile(
    "activation.cu",
    (
        "relu_forward",
        "relu_backward",
        "tanh_forward",
        "tanh_backward",
        "sigmoid_forward",
        "sigmoid_backward",
        "leaky_relu_forward",
        "leaky_relu_backward",
        "bias_relu_forward",
        "bias_relu_backward_channels",
        "bias_relu_backward_features",
    ),
)
_BLOCK = 256  # threads per block of the elementwise and per-channel kernels
MAX_GRID_BLOCKS = 4096  # grid-stride launches stop here; their loops cover the rest
_FEATURE_BLOCK = (32, 8)  # bias_relu_backward_features: (FEATURE_TILE, ROW_GROUPS) of activation.cu


def _grid(n: int) -> int:
    """Blocks of a grid-stride launch over n items (one block that does nothing when n == 0)."""
    return max(1, min(ceil_div(n, _BLOCK), MAX_GRID_BLOCKS))


def _elementwise_forward_gpu(op, x):
    require_float(op, "x", x)
    x = launch.contiguous(x)
    out = launch.empty(x.shape, x.dtype)
    _kernels.get(op, x.dtype)((_grid(x.size),), (_BLOCK,), (x, out, launch.i32(x.size)))
    return out, out


def _elementwise_backward_gpu(op, dout, out):
    _check_dout(op, dout, out)
    dout, out = launch.contiguous(dout), launch.contiguous(out)
    dx = launch.empty(out.shape, out.dtype)
    _kernels.get(op, out.dtype)((_grid(out.size),), (_BLOCK,), (dout, out, dx, launch.i32(out.size)))
    return dx


def relu_forward_gpu(x):
    """CUDA launcher of `relu_forward`."""
    return _elementwise_forward_gpu("relu_forward", x)


def relu_backward_gpu(dout, cache):
    """CUDA launcher of `relu_backward`."""
    return _elementwise_backward_gpu("relu_backward", dout, cache)


def tanh_forward_gpu(x):
    """CUDA launcher of `tanh_forward`."""
    return _elementwise_forward_gpu("tanh_forward", x)


def tanh_backward_gpu(dout, cache):
    """CUDA launcher of `tanh_backward`."""
    return _elementwise_backward_gpu("tanh_backward", dout, cache)


def sigmoid_forward_gpu(x):
    """CUDA launcher of `sigmoid_forward`."""
    return _elementwise_forward_gpu("sigmoid_forward", x)


def sigmoid_backward_gpu(dout, cache):
    """CUDA launcher of `sigmoid_backward`."""
    return _elementwise_backward_gpu("sigmoid_backward", dout, cache)


def leaky_relu_forward_gpu(x, negative_slope=0.01):
    """CUDA launcher of `leaky_relu_forward`."""
    op = "leaky_relu_forward"
    require_float(op, "x", x)
    _check_negative_slope(op, negative_slope)
    x = launch.contiguous(x)
    slope = launch.scalar(negative_slope, x.dtype)
    out = launch.empty(x.shape, x.dtype)
    _kernels.get(op, x.dtype)((_grid(x.size),), (_BLOCK,), (x, out, launch.i32(x.size), slope))
    return out, (out, slope)


def leaky_relu_backward_gpu(dout, cache):
    """CUDA launcher of `leaky_relu_backward`."""
    op = "leaky_relu_backward"
    out, slope = cache
    _check_dout(op, dout, out)
    dout = launch.contiguous(dout)
    dx = launch.empty(out.shape, out.dtype)
    _kernels.get(op, out.dtype)((_grid(out.size),), (_BLOCK,), (dout, out, dx, launch.i32(out.size), slope))
    return dx


def bias_relu_forward_gpu(x, b):
    """CUDA launcher of `bias_relu_forward`."""
    op = "bias_relu_forward"
    require_float(op, "x", x)
    require_rank(op, "x", x, {2: "(N, F)", 4: "(N, C, H, W)"})
    require_shape(op, "b", b, (x.shape[1],), f"one per channel of x {tuple(x.shape)}")
    require_same_dtype(op, "x", x, b=b)
    x, b = launch.contiguous(x), launch.contiguous(b)
    out = launch.empty(x.shape, x.dtype)  # like x: (N, C, H, W) or (N, F)
    inner = x.size // max(1, x.shape[0] * x.shape[1])  # H * W, or 1 for (N, F)
    args = (x, b, out, launch.i32(x.size), launch.i32(x.shape[1]), launch.i32(inner))
    _kernels.get(op, x.dtype)((_grid(x.size),), (_BLOCK,), args)
    return out, out


def bias_relu_backward_gpu(dout, cache):
    """CUDA launcher of `bias_relu_backward`."""
    out = cache
    _check_dout("bias_relu_backward", dout, out)
    dout, out = launch.contiguous(dout), launch.contiguous(out)
    batch, channels = out.shape[:2]
    dx = launch.empty(out.shape, out.dtype)  # like out
    db = launch.empty((channels,), out.dtype)  # (C,)
    if out.ndim == 4:  # (N, C, H, W): a block per channel
        inner = out.shape[2] * out.shape[3]
        kernel = _kernels.get("bias_relu_backward_channels", out.dtype)
        args = (dout, out, dx, db, launch.i32(batch), launch.i32(channels), launch.i32(inner))
        kernel((max(1, min(channels, MAX_GRID_BLOCKS)),), (_BLOCK,), args)
    else:  # (N, F): a column of threads per feature
        kernel = _kernels.get("bias_relu_backward_features", out.dtype)
        grid = max(1, ceil_div(channels, _FEATURE_BLOCK[0]))
        kernel((grid,), _FEATURE_BLOCK, (dout, out, dx, db, launch.i32(batch), launch.i32(channels)))
    return dx, db


# ---------------------------------------------------------------- dispatchers


def relu_forward(x):
    """x (any shape) -> (max(x, 0), cache)."""
    if get_backend().runs_kernels:
        return relu_forward_gpu(x)
    return relu_forward_cpu(x)


def relu_backward(dout, cache):
    """dout like x -> dx = dout where x > 0, else 0."""
    if get_backend().runs_kernels:
        return relu_backward_gpu(dout, cache)
    return relu_backward_cpu(dout, cache)


def tanh_forward(x):
    """x (any shape) -> (tanh(x), cache)."""
    if get_backend().runs_kernels:
        return tanh_forward_gpu(x)
    return tanh_forward_cpu(x)


def tanh_backward(dout, cache):
    """dout like x -> dx = dout * (1 - tanh(x)^2)."""
    if get_backend().runs_kernels:
        return tanh_backward_gpu(dout, cache)
    return tanh_backward_cpu(dout, cache)


def sigmoid_forward(x):
    """x (any shape) -> (1 / (1 + exp(-x)), cache), without overflow for any |x|:
    with e = exp(-|x|) in (0, 1], sigmoid = 1 / (1 + e) for x >= 0 and e / (1 + e) below."""
    if get_backend().runs_kernels:
        return sigmoid_forward_gpu(x)
    return sigmoid_forward_cpu(x)


def sigmoid_backward(dout, cache):
    """dout like x -> dx = dout * s * (1 - s), s = sigmoid(x)."""
    if get_backend().runs_kernels:
        return sigmoid_backward_gpu(dout, cache)
    return sigmoid_backward_cpu(dout, cache)


def leaky_relu_forward(x, negative_slope=0.01):
    """x (any shape) -> (x where x > 0 else negative_slope * x, cache); negative_slope >= 0
    (PyTorch's name and default; Keras calls it alpha)."""
    if get_backend().runs_kernels:
        return leaky_relu_forward_gpu(x, negative_slope)
    return leaky_relu_forward_cpu(x, negative_slope)


def leaky_relu_backward(dout, cache):
    """dout like x -> dx = dout where x > 0, else negative_slope * dout (x = 0 included)."""
    if get_backend().runs_kernels:
        return leaky_relu_backward_gpu(dout, cache)
    return leaky_relu_backward_cpu(dout, cache)


def bias_relu_forward(x, b):
    """relu(x + b), b broadcast along axis 1: x (N, C, H, W) or (N, F), b (C,) or (F,)."""
    if get_backend().runs_kernels:
        return bias_relu_forward_gpu(x, b)
    return bias_relu_forward_cpu(x, b)


def bias_relu_backward(dout, cache):
    """dout like x -> (dx like x, db (C,)): dx = dout * (out > 0), db = dx summed over all axes but 1."""
    if get_backend().runs_kernels:
        return bias_relu_backward_gpu(dout, cache)
    return bias_relu_backward_cpu(dout, cache)
