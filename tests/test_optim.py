"""Optimizers against element-by-element reference loops written from the papers' formulas."""
import math

import numpy as np
import pytest

from dlcore.optim import SGD, Adam, AdamW, RMSprop, clip_grad_norm, clip_grad_value
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


# ---------------------------------------------------------------- AdamW and RMSprop (PyTorch's update rules)


def _pytorch_adamw(start, grads_per_step, lr, b1, b2, eps, wd):
    """torch.optim.AdamW's single-tensor update, written out: decay the weights, then Adam's step
    on the plain gradient; a parameter without a gradient is skipped and its step does not advance."""
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
            params[i] = params[i] * (1 - lr * wd)  # param.mul_(1 - lr * weight_decay)
            s["exp_avg"] += (1 - b1) * (grad - s["exp_avg"])
            s["exp_avg_sq"] = s["exp_avg_sq"] * b2 + (1 - b2) * grad * grad
            step_size = lr / (1 - b1 ** s["step"])
            denom = np.sqrt(s["exp_avg_sq"]) / math.sqrt(1 - b2 ** s["step"]) + eps
            params[i] = params[i] - step_size * s["exp_avg"] / denom
    return params


def _pytorch_rmsprop(start, grads_per_step, lr, alpha, eps, wd, momentum, centered):
    """torch.optim.RMSprop's single-tensor update, written out."""
    params = [w.astype(np.float64) for w in start]
    state = [None] * len(params)
    for grads in grads_per_step:
        for i, grad in enumerate(grads):
            if grad is None:
                continue
            if state[i] is None:
                zeros = np.zeros_like(params[i])
                state[i] = {"square_avg": zeros.copy(), "grad_avg": zeros.copy(), "momentum_buffer": zeros.copy()}
            s = state[i]
            grad = grad + wd * params[i]
            s["square_avg"] = s["square_avg"] * alpha + (1 - alpha) * grad * grad
            if centered:
                s["grad_avg"] += (1 - alpha) * (grad - s["grad_avg"])  # grad_avg.lerp_(grad, 1 - alpha)
                avg = np.sqrt(s["square_avg"] - s["grad_avg"] * s["grad_avg"]) + eps
            else:
                avg = np.sqrt(s["square_avg"]) + eps
            if momentum > 0:
                s["momentum_buffer"] = s["momentum_buffer"] * momentum + grad / avg
                params[i] = params[i] - lr * s["momentum_buffer"]
            else:
                params[i] = params[i] - lr * grad / avg
    return params


def _train_with_gaps(optimizer, params, history):
    for grads in history:
        for p, g in zip(params, grads):
            p.grad = g
        optimizer.step()


@pytest.mark.parametrize("settings", [{}, {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}])
def test_adamw_matches_pytorch_formula(settings):
    """Defaults (lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 1e-2) and others, ten steps,
    the second parameter without a gradient on every other step."""
    full = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2} | settings
    params = _params()
    start = [p.data.copy() for p in params]
    history = _gradients_with_gaps(10, [w.shape for w in start])
    opt = AdamW(params, **settings)
    _train_with_gaps(opt, params, history)
    assert opt.parameter_steps == [10, 5]
    expected = _pytorch_adamw(start, history, full["lr"], *full["betas"], full["eps"], full["weight_decay"])
    for p, want in zip(params, expected):
        np.testing.assert_allclose(p.data, want, rtol=1e-12, atol=1e-14)


def test_adamw_decay_is_decoupled_from_adam_l2():
    """The same weight_decay coupled (Adam) and decoupled (AdamW) gives different weights; with
    weight_decay=0 the two are the same optimizer."""
    history = _gradients_with_gaps(5, [w.shape for w in (p.data for p in _params())])
    finals = {}
    for name, cls, wd in [("adam", Adam, 0.1), ("adamw", AdamW, 0.1), ("adam0", Adam, 0.0), ("adamw0", AdamW, 0.0)]:
        params = _params()
        _train_with_gaps(cls(params, lr=1e-2, weight_decay=wd), params, history)
        finals[name] = [p.data for p in params]
    assert not np.allclose(finals["adam"][0], finals["adamw"][0], rtol=1e-6, atol=0)
    for a, b in zip(finals["adam0"], finals["adamw0"]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("settings", [
    {},
    {"lr": 1e-3, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.01},
    {"momentum": 0.9},
    {"centered": True},
    {"lr": 5e-3, "momentum": 0.5, "centered": True, "weight_decay": 0.02},
])
def test_rmsprop_matches_pytorch_formula(settings):
    full = {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": False} | settings
    params = _params()
    start = [p.data.copy() for p in params]
    history = _gradients_with_gaps(10, [w.shape for w in start])
    _train_with_gaps(RMSprop(params, **settings), params, history)
    expected = _pytorch_rmsprop(start, history, full["lr"], full["alpha"], full["eps"], full["weight_decay"],
                                full["momentum"], full["centered"])
    for p, want in zip(params, expected):
        np.testing.assert_allclose(p.data, want, rtol=1e-12, atol=1e-14)


def test_rmsprop_keeps_only_the_state_its_settings_need():
    opt = RMSprop([{"params": _params()[:1], "momentum": 0.9}, {"params": _params(1)[1:], "centered": True}])
    slots = opt.state_slots()
    assert [a is None for a in slots["momentum_buffer"]] == [False, True]
    assert [a is None for a in slots["grad_avg"]] == [True, False]
    assert all(a is not None for a in slots["square_avg"])


def test_parameter_groups_train_with_their_own_settings():
    """A group's weight_decay and lr apply to its parameters only: each group trains as an
    optimizer of its own would."""
    history = _gradients_with_gaps(4, [w.shape for w in (p.data for p in _params())])
    params = _params()
    _train_with_gaps(AdamW([{"params": params[:1], "weight_decay": 0.5}, {"params": params[1:], "lr": 0.1}], lr=1e-2),
                     params, history)
    alone = [_params()[0], _params()[1]]
    _train_with_gaps(AdamW([alone[0]], lr=1e-2, weight_decay=0.5), [alone[0]], [[h[0]] for h in history])
    _train_with_gaps(AdamW([alone[1]], lr=0.1), [alone[1]], [[h[1]] for h in history])
    for p, q in zip(params, alone):
        np.testing.assert_array_equal(p.data, q.data)


@pytest.mark.parametrize("make,match", [
    (lambda ps: AdamW(ps, weight_decay=-0.1), "weight_decay must be >= 0"),
    (lambda ps: AdamW(ps, eps=0), "eps must be > 0"),
    (lambda ps: RMSprop(ps, alpha=1.0), "alpha must be in"),
    (lambda ps: RMSprop(ps, momentum=1.0), "momentum must be in"),
    (lambda ps: RMSprop(ps, eps=-1e-8), "eps must be > 0"),
    (lambda ps: RMSprop(ps, centered="yes"), "centered must be True or False"),
    (lambda ps: RMSprop([{"params": ps, "alpha": -0.5}]), r"parameter group 0: alpha must be in"),
    (lambda ps: RMSprop([{"params": ps, "betas": (0.9, 0.99)}]), r"unknown hyperparameters \['betas'\]"),
])
def test_bad_adamw_and_rmsprop_settings_are_rejected(make, match):
    with rejects(ValueError, match=match):
        make(_params())


# ---------------------------------------------------------------- gradient clipping (torch.nn.utils semantics)


def _with_grads(*grads):
    params = [Parameter(np.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.copy()
    return params


def test_clip_grad_norm_scales_all_gradients_by_the_total_norm():
    params = _with_grads(np.array([3.0, 0.0]), np.array([[0.0], [4.0]]))  # total norm 5
    params.append(Parameter(np.ones(2)))  # no gradient: left out
    total = clip_grad_norm(params, max_norm=1.0)
    assert total == pytest.approx(5.0, rel=1e-15)
    scale = 1.0 / (5.0 + 1e-6)  # torch: max_norm / (total_norm + 1e-6)
    np.testing.assert_allclose(params[0].grad, [3.0 * scale, 0.0], rtol=1e-15)
    np.testing.assert_allclose(params[1].grad, [[0.0], [4.0 * scale]], rtol=1e-15)
    assert params[2].grad is None


def test_clip_grad_norm_leaves_gradients_below_the_limit_and_keeps_dtype():
    params = _with_grads(np.array([0.3, 0.4], dtype=np.float32))
    assert clip_grad_norm(params, max_norm=1.0) == pytest.approx(0.5, rel=1e-6)
    np.testing.assert_array_equal(params[0].grad, np.array([0.3, 0.4], dtype=np.float32))
    big = _with_grads(np.array([30.0, 40.0], dtype=np.float32))
    clip_grad_norm(big, max_norm=2.0)
    assert big[0].grad.dtype == np.float32
    np.testing.assert_allclose(big[0].grad, [1.2, 1.6], rtol=1e-6)


def test_clip_grad_value_clamps_each_element():
    params = _with_grads(np.array([-3.0, -0.2, 0.0, 0.7, 5.0]))
    clip_grad_value(params, 0.5)
    np.testing.assert_array_equal(params[0].grad, [-0.5, -0.2, 0.0, 0.5, 0.5])


@pytest.mark.parametrize("call,error,match", [
    (lambda ps: clip_grad_norm(ps, 0), ValueError, "max_norm must be a finite number > 0"),
    (lambda ps: clip_grad_norm(ps, float("inf")), ValueError, "max_norm must be a finite number > 0"),
    (lambda ps: clip_grad_value(ps, -1.0), ValueError, "value must be a finite number > 0"),
    (lambda ps: clip_grad_value(ps, "1"), ValueError, "value must be a finite number > 0"),
    (lambda ps: clip_grad_norm([np.ones(2)], 1.0), TypeError, "expects dlcore Parameters"),
])
def test_bad_clipping_arguments_are_rejected(call, error, match):
    with rejects(error, match=match):
        call(_with_grads(np.ones(2)))
