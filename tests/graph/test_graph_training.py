"""Everything that works on Sequential works on any graph: the notes' network and the hinted
model built functionally train bit-identically to Sequential and MultiInput; several outputs
train with a loss and weight each; exact resume, transfer learning by reusing nodes, feature
maps of any node; the ResNet of the zoo trains on numpy and agrees on emu."""
import numpy as np
import pytest

import dlcore
from dlcore.callbacks import ModelCheckpoint
from dlcore.layers import (
    Add, BatchNorm2D, Concatenate, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool2D, MaxPool2D, ReLU,
)
from dlcore.losses import SoftmaxCrossEntropy
from dlcore.models import MultiInput
from dlcore.optim import Adam
from dlcore.plots import plot_feature_maps
from dlcore.zoo import mnist_cnn, resnet
from tests.robustness import rejects
from tests.test_checkpoint import CrashAt, assert_same_state

QUIET = dict(progress=False, verbose=False)


def _notes_network_functional(rng):
    """The layers of zoo.mnist_cnn, created in the same order (same initial weights), wired
    with the functional API."""
    reference = mnist_cnn(rng=rng)
    x = dlcore.Input((1, 28, 28), name="input")
    h = x
    for layer in reference.layers:
        h = layer(h)
    return dlcore.Model(x, h)


def _mnist_batches(mnist_path, n=96):
    from dlcore.data import load_mnist

    images, labels = load_mnist("test", data_dir=mnist_path)
    return images[:n], labels[:n]


def _final_state(model, x, y, iterations=6):
    optimizer = Adam(model.parameters(), lr=1e-3)
    history = model.fit(x, y, optimizer=optimizer, batch_size=16, iterations=iterations, eval_every=3, rng=0, **QUIET)
    return [p.data.copy() for p in model.parameters()], history.history


def test_the_notes_network_trains_bit_identically_as_sequential_and_as_a_graph(mnist_path):
    x, y = _mnist_batches(mnist_path)
    sequential_params, sequential_history = _final_state(mnist_cnn(rng=0), x, y)
    graph_params, graph_history = _final_state(_notes_network_functional(rng=0), x, y)
    for a, b in zip(sequential_params, graph_params):
        np.testing.assert_array_equal(a, b)
    assert sequential_history == graph_history


def _hinted_layers(seed):
    common = dict(rng=seed)
    image_branch = [Conv2D(1, 4, 3, padding="same", activation="relu", name="image_conv", **common),
                    MaxPool2D(2, name="image_pool"), Flatten(name="image_flat"),
                    Dense(4 * 14 * 14, 16, activation="relu", name="image_fc", **common),
                    Dropout(0.3, rng=seed, name="image_dropout")]
    hint_branch = [Dense(12, 8, activation="relu", name="hint_fc", **common)]
    head = [Dense(24, 10, name="head", **common)]
    return image_branch, hint_branch, head


def test_the_hinted_model_trains_bit_identically_as_multi_input_and_as_a_graph(mnist_path):
    images, labels = _mnist_batches(mnist_path)
    hints = np.eye(12, dtype=np.float32)[labels]

    image_branch, hint_branch, head = _hinted_layers(seed=3)
    multi = MultiInput([image_branch, hint_branch], head)

    image_branch, hint_branch, head = _hinted_layers(seed=3)
    image, hint = dlcore.Input((1, 28, 28), name="image"), dlcore.Input((12,), name="hints")
    a, b = image, hint
    for layer in image_branch:
        a = layer(a)
    for layer in hint_branch:
        b = layer(b)
    out = Concatenate()([a, b])
    for layer in head:
        out = layer(out)
    graph = dlcore.Model([image, hint], out)

    results = [_final_state(model, (images, hints), labels) for model in (multi, graph)]
    for p, q in zip(results[0][0], results[1][0]):
        np.testing.assert_array_equal(p, q)
    assert results[0][1] == results[1][1]
    assert list(multi.named_parameters()) == list(graph.named_parameters())


def _two_headed(seed=0):
    """image (1, 8, 8) -> conv -> global average -> 'digit' logits (3) and 'parity' logits (2)."""
    x = dlcore.Input((1, 8, 8), name="image")
    h = GlobalAvgPool2D(name="gap")(Conv2D(1, 8, 3, padding="same", activation="relu", rng=seed, name="conv")(x))
    return dlcore.Model(x, [Dense(8, 3, rng=seed, name="digit")(h), Dense(8, 2, rng=seed, name="parity")(h)])


def _two_task_data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = (0.3 * rng.standard_normal((n, 1, 8, 8)) + y[:, None, None, None]).astype(np.float32)  # brightness = class
    return x, y, y % 2


def test_two_outputs_train_with_a_loss_and_a_weight_each():
    x, digit, parity = _two_task_data()
    model = _two_headed()
    history = model.fit(x, {"digit": digit, "parity": parity}, optimizer=Adam(model.parameters(), lr=0.02),
                        loss_weights={"parity": 0.5}, batch_size=20, iterations=60, eval_every=30,
                        validation_data=(x[:40], (digit[:40], parity[:40])), rng=0, **QUIET)
    assert set(history.history) == {"iteration", "loss", "digit_accuracy", "parity_accuracy", "val_loss",
                                    "val_digit_loss", "val_digit_accuracy", "val_parity_loss",
                                    "val_parity_accuracy"}
    scores = model.evaluate(x, (digit, parity), loss_weights=[1.0, 0.5])
    assert scores["digit_accuracy"] > 0.9 and scores["parity_accuracy"] > 0.9
    assert scores["loss"] == pytest.approx(scores["digit_loss"] + 0.5 * scores["parity_loss"])
    digit_logits, parity_probabilities = model.predict(x[:7], probabilities=False)[0], \
        model.predict(x[:7], probabilities=True)[1]
    assert digit_logits.shape == (7, 3) and parity_probabilities.shape == (7, 2)
    np.testing.assert_allclose(parity_probabilities.sum(axis=1), 1.0, rtol=1e-6)

    with rejects(ValueError, match=r"2 outputs \(digit, parity\): give one label array per output"):
        model.fit(x, digit, optimizer=Adam(model.parameters()), iterations=1, **QUIET)
    with rejects(ValueError, match="loss_weights: no output named 'colour'"):
        model.evaluate(x, (digit, parity), loss_weights={"colour": 1.0})


def test_loss_weights_scale_the_gradients():
    x, digit, parity = _two_task_data(n=8)
    grads = []
    for weights in ([1.0, 1.0], [1.0, 0.0]):
        model = _two_headed(seed=1)
        model.fit(x, (digit, parity), optimizer=Adam(model.parameters(), lr=1e-12), loss_weights=weights,
                  batch_size=8, iterations=1, rng=0, **QUIET)
        grads.append({name: p.grad.copy() for name, p in model.named_parameters().items()})
    np.testing.assert_array_equal(grads[0]["digit.weight"], grads[1]["digit.weight"])
    np.testing.assert_array_equal(grads[1]["parity.weight"], 0.0)
    assert not np.array_equal(grads[0]["conv.weight"], grads[1]["conv.weight"])


def _residual_cnn(seed):
    """A small graph with batchnorm, a residual sum, dropout: parameters, buffers and state."""
    dlcore.manual_seed(seed)
    x = dlcore.Input((1, 9, 9))
    h = ReLU()(BatchNorm2D(4, name="bn1")(Conv2D(1, 4, 3, padding="same", name="conv1")(x)))
    h = ReLU()(Add()([h, BatchNorm2D(4, name="bn2")(Conv2D(4, 4, 3, padding="same", name="conv2")(h))]))
    h = Dropout(0.5, name="dropout")(Flatten()(MaxPool2D(3, name="pool")(h)))
    return dlcore.Model(x, Dense(36, 3, name="fc")(h))


def test_a_graph_resumes_exactly_from_a_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.random((60, 1, 9, 9), dtype=np.float32), rng.integers(0, 3, 60)
    options = dict(batch_size=8, iterations=16, eval_every=4, rng=7, **QUIET)
    straight = _residual_cnn(seed=0)
    straight_opt = Adam(straight.parameters(), lr=1e-2)
    straight_history = straight.fit(x, y, optimizer=straight_opt, **options)

    crashed = _residual_cnn(seed=0)
    with pytest.raises(KeyboardInterrupt):
        crashed.fit(x, y, optimizer=Adam(crashed.parameters(), lr=1e-2),
                    callbacks=[ModelCheckpoint(tmp_path / "ckpt.npz", every=8), CrashAt(10)], **options)
    resumed = _residual_cnn(seed=5)
    resumed_opt = Adam(resumed.parameters(), lr=1e-2)
    resumed_history = resumed.fit(x, y, optimizer=resumed_opt, resume_from=tmp_path / "ckpt.npz", **options)
    assert_same_state(straight, resumed, straight_opt, resumed_opt)
    assert resumed_history.history == straight_history.history


def test_transfer_learning_reuses_a_trained_graphs_nodes(tmp_path):
    base = _residual_cnn(seed=0)
    rng = np.random.default_rng(1)
    x, y = rng.random((40, 1, 9, 9), dtype=np.float32), rng.integers(0, 2, 40)
    frozen_before = base.layer("conv2").weight.data.copy()
    new = dlcore.Model(base.inputs, Dense(36, 2, name="new_head")(base.output_of("flatten")))
    new.freeze(up_to="flatten")
    assert [layer.name for layer in new.layers if layer.frozen] == ["conv1", "bn1", "conv2", "bn2"]
    new.fit(x, y, optimizer=Adam(new.parameters(), lr=1e-2), batch_size=8, iterations=4, rng=0, **QUIET)
    np.testing.assert_array_equal(base.layer("conv2").weight.data, frozen_before)
    assert new.layer("conv1") is base.layer("conv1")

    features = new.features(x, "add")
    assert features.shape == (40, 4, 9, 9)
    np.testing.assert_array_equal(features, base.features(x, "add"))
    trunk = base.up_to("pool")
    np.testing.assert_array_equal(trunk.predict(x), base.features(x, "pool"))
    assert plot_feature_maps(base, "add", x[0], tmp_path / "maps.png").exists()


def test_the_resnet_of_the_zoo():
    model = resnet(20, input_shape=(1, 28, 28), num_classes=10, rng=0)
    assert sum(p.data.size for p in model.parameters()) == 272_186
    convs = [layer for layer in model.layers if isinstance(layer, Conv2D)]
    assert len(convs) == 1 + 2 * 9 + 2  # the stem, two per block, two projections
    assert model.output_of("stage3_block3_add").shape == (64, 7, 7)
    with rejects(ValueError, match="depth must be 6n \\+ 2"):
        resnet(21)


def test_a_small_resnet_learns_on_numpy_and_agrees_on_emu():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 48)
    x = 0.3 * rng.standard_normal((48, 1, 8, 8)).astype(np.float32)
    x[np.arange(48), 0, 2 * y, :] += 2.0
    model = resnet(8, input_shape=(1, 8, 8), num_classes=3, widths=(4, 8, 8), rng=0)
    before = model.evaluate(x, y)["loss"]
    model.fit(x, y, optimizer=Adam(model.parameters(), lr=1e-2), batch_size=16, iterations=30, rng=0, **QUIET)
    assert model.evaluate(x, y)["loss"] < 0.5 * before

    loss_fn = SoftmaxCrossEntropy()
    values = {}
    for backend in ("numpy", "emu"):
        with dlcore.use_backend(backend):
            model = resnet(8, input_shape=(1, 8, 8), num_classes=3, widths=(4, 8, 8), rng=0)
            loss = float(loss_fn(model(dlcore.backend.to_backend(x[:4])), dlcore.backend.to_backend(y[:4])))
            model.backward(loss_fn.backward())
            values[backend] = (loss, dlcore.backend.to_numpy(model.layer("stem_conv").weight.grad))
    assert values["emu"][0] == pytest.approx(values["numpy"][0], rel=1e-4)
    np.testing.assert_allclose(values["emu"][1], values["numpy"][1], rtol=1e-3, atol=1e-5)
