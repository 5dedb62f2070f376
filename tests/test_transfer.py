"""Transfer learning: freezing layers, skipping their backward work, replacing the head,
sharing layers between models, and extracting the features of any named layer."""
import numpy as np
import pytest

from dlcore.data import load_mnist
from dlcore.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU
from dlcore.losses import SoftmaxCrossEntropy
from dlcore.models import Sequential
from dlcore.optim import Adam
from dlcore.zoo import mnist_cnn


def _small_cnn(seed=0):
    """(N, 1, 8, 8) -> conv 3x3x4 'same' + ReLU -> pool -> flatten (N, 64) -> fc 16 + ReLU -> fc 3."""
    return Sequential([
        Conv2D(1, 4, 3, padding="same", activation="relu", rng=seed, name="conv"),
        MaxPool2D(2, name="pool"),
        Flatten(name="flatten"),
        Dense(64, 16, activation="relu", rng=seed, name="fc1"),
        Dense(16, 3, rng=seed, name="fc2"),
    ])


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 1, 8, 8)).astype(np.float32)
    x[np.arange(n), 0, 2 * y, 2 * y] += 3.0
    return x, y


def _spy_backward(model):
    """Record (name, needs_input_grad) of the layers whose backward runs."""
    calls = []
    for layer in model.layers:
        layer.backward = (lambda original, name: lambda dout, cache, needs_input_grad=True: calls.append(
            (name, needs_input_grad)) or original(dout, cache, needs_input_grad))(layer.backward, layer.name)
    return calls


def _train_step(model, x, y):
    loss_fn = SoftmaxCrossEntropy()
    loss_fn(model(x), y)
    return model.backward(loss_fn.backward())


def test_frozen_parameters_do_not_change_during_fit():
    x, y = _data()
    model = _small_cnn().freeze("conv", "fc2")
    before = {name: p.data.copy() for name, p in model.named_parameters().items()}
    model.fit(x, y, optimizer=Adam(model.parameters(), lr=0.01), iterations=10, batch_size=16, rng=0,
              progress=False, verbose=False)
    after = model.named_parameters()
    for name in ("conv.weight", "conv.bias", "fc2.weight", "fc2.bias"):
        np.testing.assert_array_equal(after[name].data, before[name], err_msg=name)
    assert not np.array_equal(after["fc1.weight"].data, before["fc1.weight"])
    assert [layer.name for layer in model.layers if layer.frozen] == ["conv", "fc2"]
    model.unfreeze("fc2")
    assert model.layer("fc2").weight.trainable and not model.layer("conv").weight.trainable


def test_backward_skips_the_frozen_bottom_of_the_model():
    x, y = _data(8)
    model = _small_cnn().freeze(up_to="pool")
    calls = _spy_backward(model)
    assert _train_step(model, x, y) is None
    # nothing below the lowest trainable layer runs, and that one computes no input gradient
    assert calls == [("fc2", True), ("fc1", False)]
    assert model.layer("conv").weight.grad is None

    model.unfreeze()
    calls.clear()
    model.fuse = False  # each layer's own backward (the conv + ReLU -> pool pass would join two)
    _train_step(model, x, y)
    assert calls == [("fc2", True), ("fc1", True), ("flatten", True), ("pool", True), ("conv", False)]


def test_a_frozen_middle_layer_still_passes_the_gradient_down():
    x, y = _data(8)
    model = _small_cnn().freeze("fc1")
    _train_step(model, x, y)
    assert model.layer("fc1").weight.grad is None and model.layer("conv").weight.grad is not None


def test_unknown_layer_names_list_the_valid_ones():
    model = _small_cnn()
    valid = "its layers are: conv, pool, flatten, fc1, fc2"
    with pytest.raises(KeyError, match=f"no layer 'conv9'; {valid}"):
        model.freeze("conv9")
    with pytest.raises(KeyError, match=f"no layer 'pool3'; {valid}"):
        model.unfreeze(up_to="pool3")
    with pytest.raises(KeyError, match=f"no layer 'fc3'; {valid}"):
        model.features(np.zeros((1, 1, 8, 8), np.float32), "fc3")


def test_replacing_the_head_shares_the_base_layers():
    base = _small_cnn()
    base_conv = base.layer("conv").weight.data.copy()
    new = Sequential(base.up_to("flatten").freeze().layers + [Dense(64, 8, activation="relu"), Dense(8, 2)])
    assert [layer.name for layer in new.layers] == ["conv", "pool", "flatten", "dense", "dense_1"]
    assert new.layer("conv") is base.layer("conv")
    x, y = _data()
    new.fit(x, y % 2, optimizer=Adam(new.parameters(), lr=0.01), iterations=5, rng=0, progress=False,
            verbose=False)
    np.testing.assert_array_equal(base.layer("conv").weight.data, base_conv)
    assert new.predict(x).shape == (96, 2) and base.predict(x).shape == (96, 3)

    new.unfreeze()  # fine-tuning trains the shared layer, so the base model sees the change
    new.fit(x, y % 2, optimizer=Adam(new.parameters(), lr=0.01), iterations=5, rng=0, progress=False,
            verbose=False)
    assert not np.array_equal(base.layer("conv").weight.data, base_conv)


def test_slicing_gives_a_sequential_and_names_stay_unique():
    base = _small_cnn()
    trunk = base[:3]
    assert isinstance(trunk, Sequential) and trunk.layers == base.layers[:3]
    assert base[0] is base.layer("conv") and base["fc2"] is base.layers[-1]
    with pytest.raises(ValueError, match="two layers are named 'fc2'"):
        Sequential(base.layers + [Dense(3, 3, name="fc2")])
    extended = Sequential(trunk.layers + [ReLU(), Dropout(0.5), Dense(64, 2)])
    assert [layer.name for layer in extended.layers][3:] == ["relu", "dropout", "dense"]


def test_summary_marks_frozen_layers():
    text = _small_cnn().freeze(up_to="pool").summary()
    rows = {line.split()[0]: line.split() for line in text.splitlines()}
    assert rows["conv"] == ["conv", "Conv2D", "?", "40", "input", "frozen"]
    assert rows["fc1"] == ["fc1", "Dense", "?", "1,040", "flatten"]
    assert text.splitlines()[-1].split() == ["trainable", f"{64 * 16 + 16 + 16 * 3 + 3:,}"]


def test_features_of_the_notes_network(mnist_path):
    images, _ = load_mnist("test", data_dir=mnist_path)
    x = images[:5]
    model = mnist_cnn(rng=0)
    shapes = {"conv1": (5, 32, 28, 28), "pool2": (5, 64, 7, 7), "flatten": (5, 3136), "fc1": (5, 1024)}
    for name, shape in shapes.items():
        features = model.features(x, name, batch_size=2)
        assert features.shape == shape and isinstance(features, np.ndarray)
    np.testing.assert_array_equal(model.features(x, "dropout"), model.features(x, "fc1"))  # eval: no dropout
    np.testing.assert_allclose(model.features(x, "fc2", batch_size=3), model.predict(x), rtol=1e-5, atol=1e-5)
    assert model.training  # restored
