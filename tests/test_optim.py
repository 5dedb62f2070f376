"""Optimizers against element-by-element reference loops written from the papers' formulas."""
import math

import numpy as np
import pytest

from dlcore.optim import SGD, Adam
from dlcore.parameter import Parameter
from tests.robustness import rejects


def _params(seed=0):
    rng = np.random.default_rng(seed)
    return [Parameter(rng.standard_normal((3, 4))), Parameter(rng.standard_normal(5))]


def _grads(step, shapes):
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal(s) for s in shapes]


def _reference_adam(w, grads_per_step, lr, b1, b2, eps, wd, l1):
    w = list(w)
    m = [0.0] * len(w)
    v = [0.0] * len(w)
    for t, grads in enumerate(grads_per_step, start=1):
        for i, g in enumerate(grads):
            g = g + wd * w[i] + l1 * (0.0 if w[i] == 0 else math.copysign(1.0, w[i]))
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            m_hat = m[i] / (1 - b1**t)
            v_hat = v[i] / (1 - b2**t)
            w[i] -= lr * m_hat / (math.sqrt(v_hat) + eps)
    return w


def _reference_sgd(w, grads_per_step, lr, mu, nesterov, wd):
    w = list(w)
    buf = [0.0] * len(w)
    for grads in grads_per_step:
        for i, g in enumerate(grads):
            g = g + wd * w[i]
            if mu:
                buf[i] = mu * buf[i] + g
                g = g + mu * buf[i] if nesterov else buf[i]
            w[i] -= lr * g
    return w


def _run(optimizer_cls, steps=4, **kwargs):
    params = _params()
    initial = [p.data.copy() for p in params]
    opt = optimizer_cls(params, **kwargs)
    history = []
    for t in range(steps):
        grads = _grads(t, [p.shape for p in params])
        history.append(grads)
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
    return params, initial, history


@pytest.mark.parametrize("wd,l1", [(0.0, 0.0), (0.01, 0.0), (0.0, 0.003)])
def test_adam_matches_reference(wd, l1):
    params, initial, history = _run(Adam, lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=wd, l1=l1)
    for k, p in enumerate(params):
        flat0 = initial[k].ravel().tolist()
        flat_grads = [h[k].ravel().tolist() for h in history]
        expected = _reference_adam(flat0, flat_grads, 1e-2, 0.9, 0.99, 1e-8, wd, l1)
        np.testing.assert_allclose(p.data.ravel(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_matches_reference(momentum, nesterov):
    params, initial, history = _run(SGD, lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=0.001)
    for k, p in enumerate(params):
        expected = _reference_sgd(initial[k].ravel().tolist(), [h[k].ravel().tolist() for h in history],
                                  0.1, momentum, nesterov, 0.001)
        np.testing.assert_allclose(p.data.ravel(), expected, rtol=1e-12, atol=1e-12)


def test_frozen_and_gradless_parameters_are_not_updated():
    frozen, gradless, live = Parameter(np.ones(3)), Parameter(np.ones(3)), Parameter(np.ones(3))
    frozen.trainable = False
    frozen.grad = np.ones(3)
    live.grad = np.ones(3)
    Adam([frozen, gradless, live], lr=0.1).step()
    np.testing.assert_array_equal(frozen.data, 1.0)
    np.testing.assert_array_equal(gradless.data, 1.0)
    assert (live.data < 1.0).all()


def test_adam_keeps_float32():
    p = Parameter(np.ones(4, dtype=np.float32))
    p.grad = np.full(4, 0.5, dtype=np.float32)
    opt = Adam([p], lr=1e-3, weight_decay=0.1, l1=0.1)
    opt.step()
    assert p.data.dtype == np.float32 and opt.exp_avgs[0].dtype == np.float32


@pytest.mark.parametrize("make,match", [
    (lambda ps: Adam(ps, lr=0), "lr must be > 0"),
    (lambda ps: Adam(ps, betas=(0.9, 1.0)), "betas must be in"),
    (lambda ps: SGD(ps, momentum=-0.1), "momentum must be in"),
    (lambda ps: SGD(ps, nesterov=True), "nesterov=True needs momentum"),
    (lambda ps: SGD(ps, weight_decay=-1), "weight_decay must be >= 0"),
    (lambda ps: Adam([], lr=1e-3), "empty parameter list"),
])
def test_bad_hyperparameters_are_rejected(make, match):
    with rejects(ValueError, match=match):
        make(_params())


def test_non_parameters_are_rejected():
    with rejects(TypeError, match="expects dlcore Parameters"):
        Adam([np.ones(3)])
