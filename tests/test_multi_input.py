"""MultiInput models (an image branch and a feature branch under one head), the
Concatenate layer, and optimizer parameter groups for per-branch regularization."""
import numpy as np
import pytest

from dlcore.layers import Concatenate, Conv2D, Dense, Dropout, Flatten, Tanh
from dlcore.losses import SoftmaxCrossEntropy
from dlcore.models import MultiInput, Sequential
from dlcore.optim import SGD, Adam
from dlcore.parameter import Parameter
from tests.ops.op_check import GRADIENT_TOLERANCE, numerical_gradient

F64 = dict(dtype=np.float64)


def _tiny_model(dtype=np.float32, seed=0):
    """Image (N, 1, 6, 6) -> conv 3x3x2 -> tanh -> flatten (N, 32); features (N, 3) -> dense 4 -> tanh;
    head: dense 36 -> 3."""
    common = dict(dtype=dtype, rng=seed)
    return MultiInput(
        branches=[[Conv2D(1, 2, 3, name="conv", **common), Tanh(name="conv_tanh"), Flatten(name="flatten")],
                  [Dense(3, 4, name="hint_fc", **common), Tanh(name="hint_tanh")]],
        head=[Dense(2 * 4 * 4 + 4, 3, name="out", **common)],
    )


def _task(n=300, seed=0):
    """3 classes: a faint class-dependent image pattern plus a hint that is right 70% of the time."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    images = 0.5 * rng.standard_normal((n, 1, 6, 6)).astype(np.float32)
    for k in range(3):
        images[y == k, 0, 2 * k:2 * k + 2, :] += 1.0
    hint = np.where(rng.random(n) < 0.7, y, rng.integers(0, 3, n))
    features = np.eye(3, dtype=np.float32)[hint]
    return images, features, y


def test_layers_are_named_uniquely_across_branches_and_head():
    model = MultiInput([[Dense(2, 2)], [Dense(3, 2)]], [Dense(4, 2)])
    assert [layer.name for layer in model.layers] == ["dense", "dense_1", "concatenate", "dense_2"]
    assert model.branches[1].layers[0] is model.layer("dense_1") and model.head.layers[0] is model.layer("dense_2")
    assert list(model.named_parameters())[:2] == ["dense.weight", "dense.bias"]
    with pytest.raises(ValueError, match="two layers are named 'dense'.*name the layers apart"):
        MultiInput([Sequential([Dense(2, 2)]), Sequential([Dense(2, 2)])], [Dense(4, 2)])


def test_forward_and_backward_match_central_differences_in_float64():
    rng = np.random.default_rng(1)
    model = _tiny_model(np.float64)
    model.needs_input_grad = (True, False)  # also check dL/d(image)
    images, features = rng.standard_normal((2, 1, 6, 6)), rng.standard_normal((2, 3))
    dout = rng.standard_normal((2, 3))

    model(images, features)
    dimages, dfeatures = model.backward(dout)
    assert dfeatures is None  # the feature branch computes no input gradient by default
    params = model.parameters()
    arrays = [images] + [p.data for p in params]
    numeric = numerical_gradient(lambda *_: model(images, features), arrays, dout)
    np.testing.assert_allclose(dimages, numeric[0], **GRADIENT_TOLERANCE)
    for (name, p), expected in zip(model.named_parameters().items(), numeric[1:]):
        np.testing.assert_allclose(p.grad, expected, **GRADIENT_TOLERANCE, err_msg=name)


def test_the_merge_flattens_joins_and_splits():
    a, b = np.arange(12.0).reshape(2, 2, 3), np.arange(4.0).reshape(2, 2)
    merge = _tiny_model().merge
    out, cache = merge.forward(merge.check_input([a, b]))
    np.testing.assert_array_equal(out, np.concatenate([a.reshape(2, 6), b], axis=1))
    da, db = merge.backward(out * 10, cache)
    np.testing.assert_array_equal(da, a * 10)
    np.testing.assert_array_equal(db, b * 10)
    with pytest.raises(ValueError, match=r"different batch sizes \[2, 1\]"):
        merge([a, b[:1]])


def test_fit_evaluate_predict_take_a_tuple_of_inputs():
    images, features, y = _task()
    model = _tiny_model()
    history = model.fit((images, features), y, optimizer=Adam(model.parameters(), lr=0.03), batch_size=32,
                        epochs=4, validation_data=((images[:60], features[:60]), y[:60]), rng=0,
                        progress=False, verbose=False)
    assert history["loss"][-1] < history["loss"][0]
    scores = model.evaluate((images, features), y, batch_size=64)
    assert scores["accuracy"] > 0.9
    logits = model.predict((images, features), batch_size=128)
    assert logits.shape == (300, 3)
    assert (logits.argmax(axis=1) == y).mean() == pytest.approx(scores["accuracy"])


def test_explicit_training_loop_lowers_the_loss():
    images, features, y = _task(seed=2)
    model = _tiny_model(seed=2)
    loss_fn, optimizer = SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.3, momentum=0.9)
    losses = []
    for _ in range(25):
        losses.append(float(loss_fn(model(images, features), y)))
        model.backward(loss_fn.backward())
        optimizer.step()
    assert losses[-1] < 0.5 * losses[0]


def test_mismatched_inputs_are_clear_errors():
    images, features, y = _task(n=20)
    model = _tiny_model()
    with pytest.raises(ValueError, match=r"same number of samples, got \[20, 19, 20\]"):
        model.fit((images, features[:-1]), y, optimizer=Adam(model.parameters()), iterations=1)
    with pytest.raises(ValueError, match=r"different numbers of samples \[20, 19\]"):
        model(images, features[:-1])
    with pytest.raises(ValueError, match=r"takes 2 inputs \(one per branch\), got 1"):
        model.predict(images)


def test_features_of_branch_merge_and_head_layers():
    images, features, _ = _task(n=7)
    model = _tiny_model()
    assert model.features((images, features), "conv", batch_size=3).shape == (7, 2, 4, 4)
    assert model.features((images, features), "hint_tanh").shape == (7, 4)
    merged = model.features((images, features), "concatenate", batch_size=2)
    np.testing.assert_allclose(merged[:, 32:], model.features((images, features), "hint_tanh"), rtol=1e-6)
    np.testing.assert_allclose(model.features((images, features), "out"), model.predict((images, features)),
                               rtol=1e-6)


def test_a_frozen_branch_does_no_backward_work():
    images, features, y = _task(n=16)
    model = _tiny_model().freeze("conv")
    calls = []
    for layer in model.branches[0].layers:
        layer.backward = lambda dout, cache, needs_input_grad=True, name=layer.name: calls.append(name)
    loss_fn = SoftmaxCrossEntropy()
    loss_fn(model(images, features), y)
    model.backward(loss_fn.backward())
    assert calls == [] and model.layer("hint_fc").weight.grad is not None
    model.freeze()
    for layer in model.layers:
        layer.backward = lambda dout, cache, needs_input_grad=True, name=layer.name: calls.append(name)
    loss_fn(model(images, features), y)
    assert model.backward(loss_fn.backward()) == (None, None)
    assert calls == []  # a frozen model runs no backward at all


def test_weight_decay_on_one_branch_shrinks_only_that_branch():
    images, features, y = _task()

    def trained(hint_decay):
        model = _tiny_model(seed=3)
        optimizer = Adam([{"params": model.branches[1].parameters(), "weight_decay": hint_decay},
                          {"params": model.branches[0].parameters() + model.head.parameters()}], lr=0.02)
        model.fit((images, features), y, optimizer=optimizer, iterations=60, rng=0, progress=False,
                  verbose=False)
        return model

    def norm(model, name):
        return float(np.linalg.norm(model.layer(name).weight.data))

    plain, decayed = trained(0.0), trained(1.0)
    assert norm(decayed, "hint_fc") < 0.5 * norm(plain, "hint_fc")
    assert norm(decayed, "conv") > 0.5 * norm(plain, "conv")


# ---- optimizer parameter groups

def _two_params():
    rng = np.random.default_rng(0)
    a, b = Parameter(rng.standard_normal((2, 3))), Parameter(rng.standard_normal(4))
    a.grad, b.grad = rng.standard_normal((2, 3)), rng.standard_normal(4)
    return a, b


def test_adam_groups_use_their_own_hyperparameters():
    a, b = _two_params()
    a0, b0 = a.data.copy(), b.data.copy()
    opt = Adam([{"params": [a], "weight_decay": 0.5}, {"params": [b], "lr": 0.1}], lr=0.01, eps=1e-8)
    opt.step()
    # first Adam step: m_hat = g, v_hat = g^2, so w -= lr * g / (|g| + eps), with g = grad + wd * w
    g_a = a.grad + 0.5 * a0
    np.testing.assert_allclose(a.data, a0 - 0.01 * g_a / (np.abs(g_a) + 1e-8), rtol=1e-12)
    np.testing.assert_allclose(b.data, b0 - 0.1 * b.grad / (np.abs(b.grad) + 1e-8), rtol=1e-12)
    assert opt.params == [a, b] and opt.group_hyperparameters(opt.param_groups[0])["lr"] == 0.01
    opt.lr = 0.05  # applies to every group without its own lr
    assert [opt.group_hyperparameters(g)["lr"] for g in opt.param_groups] == [0.05, 0.1]


def test_plain_parameter_lists_still_make_one_group():
    a, b = _two_params()
    opt = SGD([a, b], lr=0.1, momentum=0.9)
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["params"] == [a, b]
    no_momentum = SGD([{"params": [a]}, {"params": [b], "momentum": 0.5}], lr=0.1)
    assert no_momentum.momentum_buffers[0] is None and no_momentum.momentum_buffers[1].shape == (4,)


@pytest.mark.parametrize("groups,error,match", [
    (lambda a, b: [{"params": [a], "dropout": 0.5}], ValueError,
     r"group 0 sets unknown hyperparameters \['dropout'\]; valid: lr, betas, eps, weight_decay, l1"),
    (lambda a, b: [{"params": [a]}, {"params": [b], "weight_decay": -1}], ValueError,
     "parameter group 1: weight_decay must be >= 0"),
    (lambda a, b: [{"params": [a, b]}, {"params": [b]}], ValueError, "listed twice"),
    (lambda a, b: [{"params": [a]}, [b]], TypeError, "group 1 must be a dict with a 'params' entry"),
    (lambda a, b: [{"params": []}], ValueError, "empty parameter list"),
])
def test_bad_parameter_groups_are_clear_errors(groups, error, match):
    with pytest.raises(error, match=match):
        Adam(groups(*_two_params()))


def test_dropout_on_a_branch_is_only_active_in_training():
    model = MultiInput([[Flatten()], [Dropout(0.9, seed=0)]], [Dense(5, 2, rng=0)])
    images, features = np.ones((4, 1, 1, 1), np.float32), np.ones((4, 4), np.float32)
    np.testing.assert_array_equal(model.features((images, features), "concatenate"), 1.0)  # eval: no dropout
    assert (model.merge([images, model.branches[1](features)]) == 0).any()  # training: dropout
