"""Batch normalization over the batch (and spatial) axes, per channel or feature.

x (N, C, H, W): statistics over (N, H, W) per channel;  x (N, F): over N per feature
training:  xhat = (x - mean_batch) / sqrt(var_batch + eps)   (biased variance)
           running = (1 - momentum) * running + momentum * batch_stat   (in place;
           the running variance takes the unbiased var_batch * n / (n - 1), as PyTorch)
inference: xhat = (x - running_mean) / sqrt(running_var + eps)
out = gamma * xhat + beta

The batch statistics are taken of x - shift, shift = each channel's first value, in two
passes (mean, then the mean of squared deviations): float32 rounding then scales with the
spread of the values, not with |mean| (a channel of mean 1000 and standard deviation 1
keeps ~1e-5 relative precision). The NumPy reference and the kernels do the same.

The GPU path (kernels/norm.cu) reduces per channel in two deterministic stages: partial
results per chunk of a channel's values, then one warp per channel pools the chunks.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy

from dlcore.backend import get_backend
from dlcore.ops import launch
from dlcore.ops.checks import require_float, require_rank, require_same_dtype, require_shape
from dlcore.ops.launch import KernelFile, ceil_div

_LAYOUTS = {2: "(N, F)", 4: "(N, C, H, W)"}


def _reduced_axes(x) -> tuple[int, ...]:
    return (0, 2, 3) if x.ndim == 4 else (0,)


def _per_channel(values, x):
    """(C,) -> shape that broadcasts along axis 1 of x: (1, C, 1, 1) or (1, C)."""
    return values.reshape((1, -1) + (1,) * (x.ndim - 2))


def _check_forward(x, gamma, beta, running_mean, running_var, training) -> None:
    op = "batch_norm_forward"
    require_float(op, "x", x)
    require_rank(op, "x", x, _LAYOUTS)
    channels = x.shape[1]
    for name, param in (
        ("gamma", gamma),
        ("beta", beta),
        ("running_mean", running_mean),
        ("running_var", running_var),
    ):
        require_shape(op, name, param, (channels,), f"one per channel of x {tuple(x.shape)}")
    require_same_dtype(op, "x", x, gamma=gamma, beta=beta, running_mean=running_mean, running_var=running_var)
    if training and x.size // channels < 2:
        raise ValueError(
            f"{op}: training needs more than one value per channel, got x of shape {tuple(x.shape)}"
        )


def _check_dout(dout, xhat) -> None:
    require_shape("batch_norm_backward", "dout", dout, xhat.shape, "the forward output")
    require_same_dtype("batch_norm_backward", "x", xhat, dout=dout)


def batch_norm_forward_cpu(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
    """NumPy reference of `batch_norm_forward`."""
    _check_forward(x, gamma, beta, running_mean, running_var, training)
    dtype = x.dtype.type
    axes = _reduced_axes(x)
    count = x.size // x.shape[1]  # values per channel
    if training:
        shift = x[(0, slice(None)) + (0,) * (x.ndim - 2)]  # (C,): each channel's first value
        xhat = x - _per_channel(shift, x)  # exact for values within a factor 2 of the shift
        shifted_mean = xhat.mean(axis=axes)  # (C,)
        xhat -= _per_channel(shifted_mean, x)  # x - mean
        mean = shift + shifted_mean
        var = numpy.mean(xhat * xhat, axis=axes)  # biased
        keep = dtype(1 - momentum)
        running_mean *= keep
        running_mean += dtype(momentum) * mean
        running_var *= keep
        running_var += dtype(momentum * count / (count - 1)) * var  # unbiased
    else:
        xhat = x - _per_channel(running_mean, x)
        var = running_var
    inv_std = dtype(1) / numpy.sqrt(var + dtype(eps))  # (C,)
    xhat *= _per_channel(inv_std, x)
    out = xhat * _per_channel(gamma, x) + _per_channel(beta, x)
    return out, (xhat, gamma, inv_std, training)


def batch_norm_backward_cpu(dout, cache):
    """NumPy reference of `batch_norm_backward`."""
    xhat, gamma, inv_std, training = cache
    _check_dout(dout, xhat)
    axes = _reduced_axes(dout)
    dbeta = dout.sum(axis=axes)
    dgamma = (dout * xhat).sum(axis=axes)
    scale = gamma * inv_std  # (C,)
    if not training:
        return dout * _per_channel(scale, dout), dgamma, dbeta
    count = dout.dtype.type(dout.size // dout.shape[1])
    dx = count * dout
    dx -= _per_channel(dbeta, dout)
    dx -= xhat * _per_channel(dgamma, dout)
    dx *= _per_channel(scale / count, dout)
    return dx, dgamma, dbeta


# ---------------------------------------------------------------- CUDA launchers

_kernels = KernelFile(
    "norm.cu",
    (
        "batch_norm_plane_partial_stats",
        "batch_norm_feature_partial_stats",
        "batch_norm_finalize_stats",
        "batch_norm_inverse_std",
        "batch_norm_normalize",
        "batch_norm_plane_partial_grads",
        "batch_norm_feature_partial_grads",
        "batch_norm_finalize_grads",
        "batch_norm_backward_dx",
    ),
)
_BLOCK = 256  # threads per block of every kernel (the plane kernels' block sums need a multiple of 32)
_PLANE_CHUNK = 8 * _BLOCK  # values of a channel per block of the plane kernels: 8 per thread
_FEATURE_CHUNK = 32  # rows per thread of the feature kernels
_CHANNELS_PER_FINALIZE_BLOCK = _BLOCK // 32  # one warp per channel


class _Split(NamedTuple):
    """How the per-channel reductions over x viewed as (N, C, S) are cut into chunks."""

    variant: str  # "plane" (S > 1: a block per chunk and channel), "feature" (S == 1: a thread per feature)
    grid: tuple[int, int]  # (chunks, channels) or (chunks, blocks of features)
    sizes: tuple[numpy.int32, ...]  # the partial kernels' size arguments
    chunks: int
    chunk_len: int


def _split(x) -> _Split:
    channels, plane_size = x.shape[1], math.prod(x.shape[2:])
    count = x.size // channels  # values per channel
    if plane_size == 1:
        chunks = ceil_div(count, _FEATURE_CHUNK)
        sizes = (launch.i32(channels), launch.i32(count), launch.i32(_FEATURE_CHUNK))
        return _Split("feature", (chunks, ceil_div(channels, _BLOCK)), sizes, chunks, _FEATURE_CHUNK)
    chunks = ceil_div(count, _PLANE_CHUNK)
    sizes = (launch.i32(channels), launch.i32(plane_size), launch.i32(count), launch.i32(_PLANE_CHUNK))
    return _Split("plane", (chunks, channels), sizes, chunks, _PLANE_CHUNK)


def _finalize_grid(channels: int) -> tuple[int]:
    return (ceil_div(channels, _CHANNELS_PER_FINALIZE_BLOCK),)


def _elementwise(x) -> tuple[tuple[int], tuple[numpy.int32, ...]]:
    """Grid and (total, C, S) arguments of the elementwise kernels over x viewed as (N, C, S);
    raises OverflowError before any launch when x has 2^31 or more values (int indices)."""
    sizes = (launch.i32(x.size), launch.i32(x.shape[1]), launch.i32(math.prod(x.shape[2:])))
    return (ceil_div(x.size, _BLOCK),), sizes


def _batch_statistics(x, running_mean, running_var, momentum, eps):
    """Training: (mean, inv_std) of x per channel (C,); running_mean and running_var updated in place."""
    channels, plane_size, dtype, split = x.shape[1], math.prod(x.shape[2:]), x.dtype, _split(x)
    count = x.size // channels
    partial_mean = launch.empty((split.chunks, channels), dtype)
    partial_m2 = launch.empty((split.chunks, channels), dtype)
    kernel = _kernels.get(f"batch_norm_{split.variant}_partial_stats", dtype)
    kernel(split.grid, (_BLOCK,), (x, partial_mean, partial_m2, *split.sizes))
    mean, inv_std = launch.empty((channels,), dtype), launch.empty((channels,), dtype)
    running_mean_out, running_var_out = launch.contiguous(running_mean), launch.contiguous(running_var)
    unbiased_momentum = momentum * count / (count - 1)  # the running variance takes var * n / (n - 1)
    update = tuple(launch.scalar(value, dtype) for value in (1 - momentum, momentum, unbiased_momentum, eps))
    sizes = tuple(launch.i32(value) for value in (channels, plane_size, count, split.chunks, split.chunk_len))
    _kernels.get("batch_norm_finalize_stats", dtype)(
        _finalize_grid(channels),
        (_BLOCK,),
        (x, partial_mean, partial_m2, mean, inv_std, running_mean_out, running_var_out, *sizes, *update),
    )
    for running, updated in ((running_mean, running_mean_out), (running_var, running_var_out)):
        if updated is not running:  # a non-contiguous buffer: the kernel updated a copy
            running[...] = updated
    return mean, inv_std


def _running_statistics(running_mean, running_var, eps):
    """Inference: (running_mean, 1/sqrt(running_var + eps)), both (C,) and contiguous."""
    channels, dtype = running_var.shape[0], running_var.dtype
    inv_std = launch.empty((channels,), dtype)
    _kernels.get("batch_norm_inverse_std", dtype)(
        (ceil_div(channels, _BLOCK),),
        (_BLOCK,),
        (launch.contiguous(running_var), inv_std, launch.i32(channels), launch.scalar(eps, dtype)),
    )
    return launch.contiguous(running_mean), inv_std


def batch_norm_forward_gpu(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
    """CUDA launcher of `batch_norm_forward`."""
    _check_forward(x, gamma, beta, running_mean, running_var, training)
    x, gamma, beta = launch.contiguous(x), launch.contiguous(gamma), launch.contiguous(beta)
    grid, sizes = _elementwise(x)
    if training:
        mean, inv_std = _batch_statistics(x, running_mean, running_var, momentum, eps)
    else:
        mean, inv_std = _running_statistics(running_mean, running_var, eps)
    xhat, out = launch.empty(x.shape, x.dtype), launch.empty(x.shape, x.dtype)
    kernel = _kernels.get("batch_norm_normalize", x.dtype)
    kernel(grid, (_BLOCK,), (x, mean, inv_std, gamma, beta, xhat, out, *sizes))
    return out, (xhat, gamma, inv_std, training)


def batch_norm_backward_gpu(dout, cache):
    """CUDA launcher of `batch_norm_backward`."""
    xhat, gamma, inv_std, training = cache
    _check_dout(dout, xhat)
    dout = launch.contiguous(dout)
    grid, sizes = _elementwise(dout)
    channels, dtype, split = dout.shape[1], dout.dtype, _split(dout)
    # per chunk: sum dout, sum dout * xhat, each (chunks, C)
    partials = (launch.empty((split.chunks, channels), dtype), launch.empty((split.chunks, channels), dtype))
    kernel = _kernels.get(f"batch_norm_{split.variant}_partial_grads", dtype)
    kernel(split.grid, (_BLOCK,), (dout, xhat, *partials, *split.sizes))
    dbeta, dgamma = launch.empty((channels,), dtype), launch.empty((channels,), dtype)
    kernel = _kernels.get("batch_norm_finalize_grads", dtype)
    chunk_sizes = (launch.i32(channels), launch.i32(split.chunks))
    kernel(_finalize_grid(channels), (_BLOCK,), (*partials, dbeta, dgamma, *chunk_sizes))
    dx = launch.empty(dout.shape, dtype)
    count, training_flag = launch.scalar(dout.size // channels, dtype), launch.i32(training)
    kernel = _kernels.get("batch_norm_backward_dx", dtype)
    kernel(grid, (_BLOCK,), (dout, xhat, gamma, inv_std, dbeta, dgamma, dx, *sizes, count, training_flag))
    return dx, dgamma, dbeta


# ---------------------------------------------------------------- dispatchers


def batch_norm_forward(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
    """x (N, C, H, W) or (N, F); gamma, beta, running_mean, running_var (C,) -> (out like x, cache).

    training=True normalizes with the batch statistics and updates running_mean and
    running_var in place; training=False normalizes with the running statistics."""
    if get_backend().runs_kernels:
        return batch_norm_forward_gpu(x, gamma, beta, running_mean, running_var, training, momentum, eps)
    return batch_norm_forward_cpu(x, gamma, beta, running_mean, running_var, training, momentum, eps)


def batch_norm_backward(dout, cache):
    """dout like x -> (dx like x, dgamma (C,), dbeta (C,)).

    training:  dx = gamma * inv_std / n * (n * dout - sum(dout) - xhat * sum(dout * xhat))
    inference: dx = gamma * inv_std * dout (the running statistics are constants)"""
    if get_backend().runs_kernels:
        return batch_norm_backward_gpu(dout, cache)
    return batch_norm_backward_cpu(dout, cache)
