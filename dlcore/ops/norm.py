"""Batch normalization over the batch (and spatial) axes, per channel or feature.

x (N, C, H, W): statistics over (N, H, W) per channel;  x (N, F): over N per feature
training:  xhat = (x - mean_batch) / sqrt(var_batch + eps)   (biased variance)
           running = (1 - momentum) * running + momentum * batch_stat   (in place;
           the running variance takes the unbiased var_batch * n / (n - 1), as PyTorch)
inference: xhat = (x - running_mean) / sqrt(running_var + eps)
out = gamma * xhat + beta
"""

from __future__ import annotations

import numpy

from dlcore.ops.checks import require_float, require_rank, require_same_dtype, require_shape

_LAYOUTS = {2: "(N, F)", 4: "(N, C, H, W)"}


def _reduced_axes(x) -> tuple[int, ...]:
    return (0, 2, 3) if x.ndim == 4 else (0,)


def _per_channel(values, x):
    """(C,) -> shape that broadcasts along axis 1 of x: (1, C, 1, 1) or (1, C)."""
    return values.reshape((1, -1) + (1,) * (x.ndim - 2))


def batch_norm_forward_cpu(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
    """NumPy reference of `batch_norm_forward`."""
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
    dtype = x.dtype.type
    axes = _reduced_axes(x)
    count = x.size // channels  # values per channel
    if training:
        if count < 2:
            raise ValueError(
                f"{op}: training needs more than one value per channel, got x of shape {tuple(x.shape)}"
            )
        mean = x.mean(axis=axes)
        xhat = x - _per_channel(mean, x)
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
    require_shape("batch_norm_backward", "dout", dout, xhat.shape, "the forward output")
    require_same_dtype("batch_norm_backward", "x", xhat, dout=dout)
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


def batch_norm_forward(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
    """x (N, C, H, W) or (N, F); gamma, beta, running_mean, running_var (C,) -> (out like x, cache).

    training=True normalizes with the batch statistics and updates running_mean and
    running_var in place; training=False normalizes with the running statistics."""
    return batch_norm_forward_cpu(x, gamma, beta, running_mean, running_var, training, momentum, eps)


def batch_norm_backward(dout, cache):
    """dout like x -> (dx like x, dgamma (C,), dbeta (C,)).

    training:  dx = gamma * inv_std / n * (n * dout - sum(dout) - xhat * sum(dout * xhat))
    inference: dx = gamma * inv_std * dout (the running statistics are constants)"""
    return batch_norm_backward_cpu(dout, cache)
