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


# ---------------------------------------------------------------- per-parameter step counts (PyTorch's rule)


def _pytorch_adam(start, grads_per_step, lr, b1, b2, eps, wd):
    """torch.optim.Adam's update rule (single-tensor path), written out: a parameter whose grad is
    None is skipped and its state["step"] does not advance; the bias corrections use that step."""
    params = [w.astype(np.float64) for w in start]
    state = [None] * len(params)
    for grads in grads_per_step:
        for i, grad in enumerate(grads):
            if grad is None:
                continue
            if state[i] is None:
                state[i] = {"step": 0, "exp_avg": np.zeros_like(params[i]), "exp_avg_sq": np.zeros_like(params[i])}
            s = state[i]
            s["step"] += 1
            grad = grad + wd * params[i]
            s["exp_avg"] += (1 - b1) * (grad - s["exp_avg"])  # exp_avg.lerp_(grad, 1 - beta1)
            s["exp_avg_sq"] = s["exp_avg_sq"] * b2 + (1 - b2) * grad * grad
            step_size = lr / (1 - b1 ** s["step"])
            denom = np.sqrt(s["exp_avg_sq"]) / math.sqrt(1 - b2 ** s["step"]) + eps
            params[i] = params[i] - step_size * s["exp_avg"] / denom
    return params


def _gradients_with_gaps(steps, shapes):
    """Per step, one gradient per shape; the second parameter has none on every other step."""
    return [[None if (k == 1 and t % 2 == 1) else g for k, g in enumerate(_grads(t, shapes))] for t in range(steps)]


ADAM_SETTINGS = {"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01}


def _dlcore_adam(history, steps_to_take=None):
    params = _params()
    opt = Adam(params, **ADAM_SETTINGS)
    for grads in history[:steps_to_take]:
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
    return params, opt


def test_adam_counts_steps_per_parameter_as_pytorch():
    """A parameter without a gradient on every other step is bias-corrected with its own count:
    with the optimizer's count it would end ~5e-3 (relative) away from PyTorch's update."""
    start = [p.data.copy() for p in _params()]
    history = _gradients_with_gaps(10, [w.shape for w in start])
    params, opt = _dlcore_adam(history)
    assert opt.steps == 10 and opt.parameter_steps == [10, 5]
    lr, (b1, b2), eps, wd = ADAM_SETTINGS["lr"], ADAM_SETTINGS["betas"], ADAM_SETTINGS["eps"], ADAM_SETTINGS["weight_decay"]
    expected = _pytorch_adam(start, history, lr, b1, b2, eps, wd)
    for p, want in zip(params, expected):
        np.testing.assert_allclose(p.data, want, rtol=1e-12, atol=1e-14)
    # the optimizer-wide count (the old rule) is far from it: the test tells the two apart
    gradients = [[] if grads[1] is None else grads[1].tolist() for grads in history]  # [] leaves it alone
    global_count = _reference_adam(start[1].tolist(), gradients, lr, b1, b2, eps, wd, 0.0)
    assert np.max(np.abs(np.subtract(global_count, expected[1]) / expected[1])) > 1e-4


def test_adam_matches_torch_when_installed():
    torch = pytest.importorskip("torch")
    start = [p.data.copy() for p in _params()]
    history = _gradients_with_gaps(10, [w.shape for w in start])
    params, _ = _dlcore_adam(history)
    tensors = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in start]
    opt = torch.optim.Adam(tensors, **ADAM_SETTINGS)
    for grads in history:
        for tensor, g in zip(tensors, grads):
            tensor.grad = None if g is None else torch.tensor(g, dtype=torch.float64)
        opt.step()
    for p, tensor in zip(params, tensors):
        np.testing.assert_allclose(p.data, tensor.detach().numpy(), rtol=1e-12, atol=1e-14)
