"""Gradient clipping, applied between backward and the optimizer step (PyTorch's semantics).

    model.backward(dlogits)
    clip_grad_norm(model.parameters(), max_norm=1.0)   # or clip_grad_value(..., value=0.5)
    optimizer.step()

Parameters without a gradient (grad None) are left out. Each clipped gradient is replaced by a
new array, so no array another object still holds is changed.
"""
from __future__ import annotations

import math
import numbers

from dlcore.backend import xp
from dlcore.parameter import Parameter, parameter_list

NORM_EPS = 1e-6  # PyTorch's: scale = max_norm / (total_norm + 1e-6)


def clip_grad_norm(params, max_norm: float) -> float:
    """Scale all gradients by max_norm / (total_norm + 1e-6) when total_norm, the 2-norm of all
    of them together (sqrt of the sum of every element squared), exceeds max_norm; returns
    total_norm before clipping (inf or nan when a gradient holds one, and then nothing is scaled)."""
    max_norm = _check_positive("clip_grad_norm", "max_norm", max_norm)
    grads = _gradients("clip_grad_norm", params)
    total_norm = math.sqrt(sum(float(xp().linalg.norm(p.grad.ravel())) ** 2 for p in grads))
    if total_norm > max_norm:
        scale = max_norm / (total_norm + NORM_EPS)
        for p in grads:
            p.grad = p.grad * p.grad.dtype.type(scale)
    return total_norm


def clip_grad_value(params, value: float) -> None:
    """Clamp every gradient element into [-value, value]."""
    value = _check_positive("clip_grad_value", "value", value)
    for p in _gradients("clip_grad_value", params):
        p.grad = xp().clip(p.grad, -value, value)


def gradient_clipper(owner: str, max_norm: float | None, max_value: float | None):
    """None when both are None, else a function params -> None that clips by norm or by value;
    the value is checked now, so a bad one fails before training starts."""
    if max_norm is not None and max_value is not None:
        raise ValueError(f"{owner}: give clip_grad_norm or clip_grad_value, not both")
    if max_norm is not None:
        max_norm = _check_positive(owner, "clip_grad_norm", max_norm)
        return lambda params: clip_grad_norm(params, max_norm)
    if max_value is not None:
        max_value = _check_positive(owner, "clip_grad_value", max_value)
        return lambda params: clip_grad_value(params, max_value)
    return None


def _gradients(owner: str, params) -> list[Parameter]:
    """The Parameters of `params` (a Parameter, a list, or a {name: Parameter} dict) that have a gradient."""
    return [p for p in parameter_list(params, f"{owner}:") if p.grad is not None]


def _check_positive(owner: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{owner}: {name} must be a finite number > 0, got {value!r}")
    return float(value)
