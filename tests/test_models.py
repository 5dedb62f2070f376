"""Sequential: naming, forward/backward, fit / evaluate / predict and their errors."""
import numpy as np
import pytest

import dlcore
from dlcore.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU
from dlcore.losses import SoftmaxCrossEntropy
from dlcore.optim import SGD, Adam
from dlcore.zoo import mnist_cnn
from tests.robustness import rejects


def _blobs(n=240, seed=0):
    """Three linearly separable Gaussian blobs in 4-D."""
    rng = np.random.default_rng(seed)
    centers = np.array([[3, 0, 0, 0], [0, 3, 0, 0], [0, 0, 3, 0]], dtype=np.float32)
    y = rng.integers(0, 3, n)
    x = centers[y] + rng.standard_normal((n, 4)).astype(np.float32)
    return x, y


def _mlp(seed=0):
    return dlcore.Sequential([Dense(4, 16, activation="relu", rng=seed), Dense(16, 3, rng=seed)])


def test_layers_get_unique_keras_style_names():
    model = dlcore.Sequential([Dense(4, 4), ReLU(), Dense(4, 4), ReLU(), MaxPool2D(), Dense(4, 2, name="head")])
    assert [layer.name for layer in model.layers] == ["dense", "relu", "dense_1", "relu_1", "max_pool2d", "head"]
    assert list(model.named_parameters()) == [
        "dense.weight", "dense.bias", "dense_1.weight", "dense_1.bias", "head.weight", "head.bias"]
    assert model["head"] is model.layers[-1] and model[0] is model.layers[0]


def test_duplicate_and_unknown_layer_names_are_clear_errors():
    with rejects(ValueError, match="two layers are named 'a'"):
        dlcore.Sequential([Dense(2, 2, name="a"), Dense(2, 2, name="a")])
    model = _mlp()
    with rejects(KeyError, match="no layer 'fc9'; its layers are: dense, dense_1"):
        model.layer("fc9")
    with rejects(TypeError, match="item 1 is a int"):
        dlcore.Sequential([Dense(2, 2), 3])


def test_explicit_training_loop_lowers_the_loss():
    x, y = _blobs()
    model = _mlp()
    loss_fn, opt = SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(30):
        losses.append(float(loss_fn(model(x), y)))
        model.backward(loss_fn.backward())
        opt.step()
    assert losses[-1] < 0.3 * losses[0]


def test_fit_evaluate_predict():
    x, y = _blobs()
    model = _mlp()
    history = model.fit(x, y, optimizer=Adam(model.parameters(), lr=0.01), batch_size=16, epochs=5,
                        validation_data=(x[:50], y[:50]), rng=0, progress=False, verbose=False)
    assert history["iteration"] == [15, 30, 45, 60, 75]
    assert set(history.history) == {"iteration", "loss", "accuracy", "val_loss", "val_accuracy"}
    assert history["loss"][-1] < history["loss"][0]
    scores = model.evaluate(x, y, batch_size=64)
    assert scores["accuracy"] > 0.9
    logits = model.predict(x, batch_size=100)
    assert logits.shape == (240, 3) and isinstance(logits, np.ndarray)
    assert (logits.argmax(axis=1) == y).mean() == pytest.approx(scores["accuracy"])


def test_fit_is_reproducible_for_a_seed():
    def run():
        dlcore.manual_seed(5)
        model = dlcore.Sequential([Dense(4, 8, activation="relu"), Dropout(0.3), Dense(8, 3)])
        x, y = _blobs()
        model.fit(x, y, optimizer=Adam(model.parameters(), lr=0.01), iterations=20, rng=1,
                  progress=False, verbose=False)
        return [p.data.copy() for p in model.parameters()]

    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


def test_predict_restores_training_mode():
    model = _mlp().train()
    model.predict(_blobs()[0])
    assert model.training


def test_fit_errors():
    x, y = _blobs()
    model = _mlp()
    opt = Adam(model.parameters())
    with rejects(ValueError, match=r"same number of samples, got \[240, 239\]"):
        model.fit(x, y[:-1], optimizer=opt, iterations=1)
    with rejects(ValueError, match="exactly one of epochs and iterations"):
        model.fit(x, y, optimizer=opt)
    bad = y.copy()
    bad[3] = 7
    with rejects(ValueError, match="7"):
        model.fit(x, bad, optimizer=opt, iterations=50, progress=False, verbose=False, rng=0)


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_non_finite_loss_is_reported_with_the_iteration():
    x, y = _blobs()
    model = _mlp()
    opt = SGD(model.parameters(), lr=1e30)
    with rejects(FloatingPointError, match=r"loss is (nan|inf) at iteration \d+"):
        model.fit(x, y, optimizer=opt, iterations=50, progress=False, verbose=False, rng=0)


def test_notes_network_shapes_and_parameter_count():
    model = mnist_cnn(rng=0)
    assert [p.shape for p in model.parameters()] == [
        (32, 1, 5, 5), (32,), (64, 32, 5, 5), (64,), (3136, 1024), (1024,), (1024, 10), (10,)]
    assert sum(p.data.size for p in model.parameters()) == 3_274_634
    logits = model(np.zeros((2, 1, 28, 28), np.float32))
    assert logits.shape == (2, 10) and logits.dtype == np.float32
    assert isinstance(model.layers[0], Conv2D) and isinstance(model.layers[4], Flatten)


def test_read_only_and_non_contiguous_inputs_are_accepted_unchanged():
    x = np.random.default_rng(0).random((4, 1, 28, 56), dtype=np.float32)
    strided = x[:, :, :, ::2]  # (4, 1, 28, 28), not contiguous
    read_only = np.ascontiguousarray(strided)
    read_only.setflags(write=False)
    model = mnist_cnn(rng=0).eval()
    expected = model(np.ascontiguousarray(strided))
    np.testing.assert_array_equal(model(strided), expected)
    np.testing.assert_array_equal(model(read_only), expected)
    np.testing.assert_array_equal(read_only, np.ascontiguousarray(strided))  # never written to
