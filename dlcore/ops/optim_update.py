"""Optimizer updates over a list of parameters, in place.

One call updates every parameter of a group (on a GPU: one launch for all of them), so
the signatures take lists. Penalties enter the gradient first (coupled, as in PyTorch):
    g = grad + weight_decay * w + l1 * sign(w)
"""
from __future__ import annotations

import numpy as np


def _penalized(param, grad, weight_decay, l1):
    if weight_decay == 0 and l1 == 0:
        return grad
    g = grad.copy()
    if weight_decay:
        g += weight_decay * param
    if l1:
        g += l1 * np.sign(param)
    return g


def adam_update_cpu(params, grads, exp_avgs, exp_avg_sqs, *, step, lr, beta1, beta2, eps,
                    weight_decay=0.0, l1=0.0):
    """Bias-corrected Adam (Kingma & Ba), step counted from 1:
        m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2
        w -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
    """
    bias1 = 1.0 - beta1**step
    bias2 = 1.0 - beta2**step
    for w, grad, m, v in zip(params, grads, exp_avgs, exp_avg_sqs):
        g = _penalized(w, grad, weight_decay, l1)
        m *= beta1
        m += (1.0 - beta1) * g
        v *= beta2
        v += (1.0 - beta2) * (g * g)
        denom = np.sqrt(v / bias2)
        denom += eps
        w -= (lr / bias1) * (m / denom)


def sgd_update_cpu(params, grads, momentum_buffers, *, lr, momentum=0.0, nesterov=False,
                   weight_decay=0.0, l1=0.0):
    """SGD with optional (Nesterov) momentum, PyTorch's formulation:
        b = mu*b + g;  step = g + mu*b if nesterov else b;  w -= lr * step
    `momentum_buffers` is ignored (may hold None) when momentum == 0.
    """
    for w, grad, buf in zip(params, grads, momentum_buffers):
        g = _penalized(w, grad, weight_decay, l1)
        if momentum:
            buf *= momentum
            buf += g
            g = g + momentum * buf if nesterov else buf
        w -= lr * g


def adam_update(params, grads, exp_avgs, exp_avg_sqs, **hyper):
    return adam_update_cpu(params, grads, exp_avgs, exp_avg_sqs, **hyper)


def sgd_update(params, grads, momentum_buffers, **hyper):
    return sgd_update_cpu(params, grads, momentum_buffers, **hyper)
