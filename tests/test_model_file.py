"""Whole-model files: model.save(path) / dlcore.load_model(path) rebuild the architecture
from JSON and restore the weights, for Sequential, functional graphs and MultiInput."""
import io
import json
import zipfile

import numpy as np
import pytest

import dlcore
from dlcore import checkpoint, zoo
from dlcore.layers import (Add, AvgPool2D, BatchNorm1D, BatchNorm2D, Concatenate, Conv2D, Dense, Dropout, Flatten,
                           GlobalAvgPool2D, GlobalMaxPool2D, Identity, Layer, LeakyReLU, MaxPool2D, ReLU, Sigmoid,
                           Tanh)
from dlcore.layers.merge import FlattenConcatenate
from dlcore.model_file import ModelFileError, layer_types
from dlcore.models import Model, MultiInput, Sequential
from dlcore.optim import Adam
from tests.robustness import rejects


def _images(shape, n=3, seed=0):
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)


def _functional_graph():
    """A residual Add, a layer called twice (shared), a frozen layer, two outputs, and layers
    whose non-default arguments matter: dilation, count_include_pad, negative_slope, a seed."""
    x = dlcore.Input((2, 9, 9), name="image")
    stem = Conv2D(2, 4, 3, padding="same", dilation=2, rng=1, name="stem")(x)          # (4, 9, 9)
    shared = Conv2D(4, 4, 3, padding="same", activation="relu", rng=2, name="shared")
    y = shared(stem)
    y = shared(BatchNorm2D(4, name="bn")(y))                                                # called twice
    y = Add(name="residual")([stem, y])
    y = LeakyReLU(0.2, name="leaky")(y)
    pooled = AvgPool2D(3, 2, padding="same", count_include_pad=True, name="avg")(y)        # (4, 5, 5)
    features = Dropout(0.3, seed=11, name="drop")(Flatten(name="flat")(pooled))
    logits = Dense(100, 3, rng=3, name="logits")(features)
    side = Dense(4, 2, rng=4, name="side")(GlobalMaxPool2D(name="gmax")(y))
    model = Model(x, [logits, side], name="two_heads")
    model["stem"].freeze()
    return model


def _multi_input():
    return MultiInput(
        branches=[Sequential([Conv2D(1, 2, 3, rng=0, name="conv"), Tanh(name="tanh"), Flatten(name="flatten")],
                             input_shape=(1, 6, 6)),
                  [Dense(3, 4, rng=1, name="hint_fc"), Sigmoid(name="hint_act")]],
        head=[Dense(2 * 4 * 4 + 4, 3, rng=2, name="out")],
        needs_input_grad=[False, True],
    )


CASES = {
    "mnist_cnn": (lambda: zoo.mnist_cnn(rng=0), lambda: (_images((1, 28, 28)),)),
    "functional": (_functional_graph, lambda: (_images((2, 9, 9)),)),
    "resnet8": (lambda: zoo.resnet(8, input_shape=(1, 8, 8), widths=(4, 8, 8), rng=0), lambda: (_images((1, 8, 8)),)),
    "multi_input": (_multi_input, lambda: (_images((1, 6, 6)), _images((3,), seed=1))),
}


def _outputs(model, inputs):
    outputs = model(*inputs)
    return [np.array(out) for out in (outputs if isinstance(outputs, tuple) else (outputs,))]


@pytest.mark.parametrize("case", CASES)
def test_a_loaded_model_computes_what_the_saved_one_did(tmp_path, case):
    make, data = CASES[case]
    model = make()
    inputs = data()
    model.eval()
    _outputs(model, inputs)
    model.train()
    if case != "multi_input":  # moves the batch-norm statistics and dropout's call count off their start
        _outputs(model, inputs)
    path = model.save(tmp_path / "model.npz")

    loaded = dlcore.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.name == model.name and loaded.needs_input_grad == model.needs_input_grad
    assert loaded.node_names == model.node_names
    assert (loaded.input_names, loaded.output_names) == (model.input_names, model.output_names)
    assert [t.shape for t in loaded.inputs] == [t.shape for t in model.inputs]
    assert list(loaded.named_parameters()) == list(model.named_parameters())
    assert list(loaded.named_buffers()) == list(model.named_buffers())
    assert [layer.extra_state() for layer in loaded.layers] == [layer.extra_state() for layer in model.layers]
    assert [[p.trainable for p in layer.parameters().values()] for layer in loaded.layers] == \
           [[p.trainable for p in layer.parameters().values()] for layer in model.layers]
    for mode in ("eval", "train"):  # train: batch statistics and the next dropout masks
        getattr(model, mode)()
        getattr(loaded, mode)()
        for got, want in zip(_outputs(loaded, inputs), _outputs(model, inputs)):
            np.testing.assert_array_equal(got, want)
    # the file is also a weights checkpoint with the same keys: a model built in code loads it
    same = make()
    same.load_weights(path)


def test_sequential_and_multi_input_keep_their_structure(tmp_path):
    model = _multi_input()
    loaded = dlcore.load_model(model.save(tmp_path / "m.npz"))
    assert [[layer.name for layer in branch.sequence] for branch in loaded.branches] == [
        ["conv", "tanh", "flatten"], ["hint_fc", "hint_act"]]
    assert [layer.name for layer in loaded.head.sequence] == ["out"]
    assert loaded.branches[0].inputs[0].shape == (1, 6, 6)
    sequential = zoo.mnist_cnn(rng=0)
    loaded = dlcore.load_model(sequential.save(tmp_path / "s.npz"))
    assert [layer.name for layer in loaded.sequence] == [layer.name for layer in sequential.sequence]
    assert len(loaded) == 8 and loaded.inputs[0].shape == (1, 28, 28)


def test_a_loaded_model_trains_on_as_the_saved_one(tmp_path):
    """Frozen parameters stay frozen and the shared layer stays shared: three Adam steps from
    the file end where three steps of the original model do."""
    model = _functional_graph()
    loaded = dlcore.load_model(model.save(tmp_path / "g.npz"))
    assert loaded["shared"] is loaded.nodes[1].layer is loaded.nodes[3].layer
    x = _images((2, 9, 9), n=12)
    y = (np.arange(12) % 3, np.arange(12) % 2)
    for m in (model, loaded):
        m.fit(x, y, optimizer=Adam(m.parameters(), lr=1e-2), batch_size=4, iterations=3, rng=0,
              progress=False, verbose=False)
    for (name, p), q in zip(model.named_parameters().items(), loaded.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    np.testing.assert_array_equal(model["stem"].weight.data, dlcore.load_model(tmp_path / "g.npz")["stem"].weight.data)


def test_the_architecture_is_readable_json(tmp_path):
    path = zoo.mnist_cnn(rng=0).save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as archive:
        architecture = json.loads(str(archive["model/architecture"]))
        assert "param/conv1.weight" in archive.files
    assert architecture["class"] == "Sequential"
    assert architecture["layers"][0] == {
        "type": "Conv2D", "frozen": [],
        "config": {"in_channels": 1, "out_channels": 32, "kernel_size": 5, "stride": 1, "padding": "same",
                   "activation": "relu", "use_bias": True, "dtype": "float32", "name": "conv1", "dilation": 1}}
    assert architecture["nodes"][1] == {"layer": "pool1", "inputs": [["node", 0]]}
    assert architecture["inputs"] == [{"name": None, "shape": [1, 28, 28]}]


LAYER_EXAMPLES = [
    Conv2D(3, 5, (3, 2), stride=2, padding=(1, 0), activation="relu", use_bias=False, dtype=np.float64, dilation=(1, 2)),
    Dense(4, 6, activation="relu", use_bias=False, dtype=np.float64), Dropout(0.25, seed=7),
    MaxPool2D(3, 2, padding="SAME"), AvgPool2D(2, 1, padding=1, count_include_pad=True), BatchNorm1D(5, 0.2, 1e-3),
    BatchNorm2D(3, dtype=np.float64), ReLU(), Tanh(), Sigmoid(), LeakyReLU(0.3), Identity(), Flatten(),
    GlobalAvgPool2D(), GlobalMaxPool2D(), Add(), Concatenate(axis=-1), FlattenConcatenate(),
]


def test_every_layer_type_rebuilds_from_its_config():
    assert {type(layer).__name__ for layer in LAYER_EXAMPLES} == set(layer_types())
    for layer in LAYER_EXAMPLES:
        config = json.loads(json.dumps(layer.config()))
        rebuilt = type(layer)(**config)
        assert rebuilt.config() == layer.config()
        assert {k: (p.shape, p.data.dtype) for k, p in rebuilt.parameters().items()} == \
               {k: (p.shape, p.data.dtype) for k, p in layer.parameters().items()}
    assert LAYER_EXAMPLES[0].config()["dilation"] == [1, 2]
    assert LAYER_EXAMPLES[4].config()["count_include_pad"] is True
    assert Dropout(0.5, rng=3).config()["seed"] == Dropout(0.5, rng=3).seed  # the drawn seed, not the generator


def test_recording_arguments_keeps_pythons_own_error_for_arguments_that_do_not_fit():
    with rejects(TypeError, match=r"Dense.__init__\(\) missing 1 required positional argument: 'out_features'"):
        Dense(3)
    with rejects(TypeError, match=r"Conv2D.__init__\(\) got an unexpected keyword argument 'kernel'"):
        Conv2D(1, 2, kernel=3)


# ---- errors
def _rewrite_architecture(path, change):
    """Rewrite the file's model/architecture JSON through `change(architecture)`."""
    arrays = checkpoint.read(path).arrays
    architecture = json.loads(str(arrays["model/architecture"]))
    change(architecture)
    arrays["model/architecture"] = np.asarray(json.dumps(architecture))
    np.savez(path, **arrays)


def _set(keys, value):
    def change(architecture):
        target = architecture
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return change


@pytest.mark.parametrize("change, match", [
    (_set(["layers", 0, "type"], "Conv3D"), r"unknown layer type 'Conv3D'; a model file may use the layers of "
                                            r"dlcore.layers: Add, AvgPool2D"),
    (_set(["layers", 0, "config", "kernel_size"], -1), r"cannot rebuild the Conv2D layer 'conv1' from its config"),
    (_set(["layers", 0, "config", "colour"], "red"), r"cannot rebuild the Conv2D layer 'conv1'.*colour"),
    (_set(["format"], 7), "model architecture format 7; this dlcore reads format 1"),
    (_set(["class"], "Graph"), "unknown model class 'Graph'"),
    (lambda a: a.pop("layers"), r"malformed model architecture \(KeyError: 'layers'\)"),
    (_set(["sequence"], ["conv1", "nowhere"]), r"malformed model architecture \(KeyError: 'nowhere'\)"),
    (_set(["nodes", 1, "layer"], "conv2"), "rebuilt from the architecture differs from it"),
    (_set(["layers", 2, "config", "in_channels"], 33), r"malformed model architecture \(ValueError: Conv2D 'conv2': "
                                                      r"expected input of shape \(N, 33, H, W\)"),
])
def test_malformed_architectures_are_clear_errors(tmp_path, change, match):
    path = zoo.mnist_cnn(rng=0).save(tmp_path / "m.npz")
    _rewrite_architecture(path, change)
    with rejects(ModelFileError, match=match):
        dlcore.load_model(path)


def test_graph_references_are_checked(tmp_path):
    path = _functional_graph().save(tmp_path / "g.npz")
    _rewrite_architecture(path, _set(["nodes", 1, "inputs"], [["node", 99]]))
    with rejects(ModelFileError, match=r"malformed model architecture \(IndexError"):
        dlcore.load_model(path)
    _rewrite_architecture(path, _set(["nodes", 1, "inputs"], [["tensor", 0]]))
    with rejects(ModelFileError, match=r"bad tensor reference \['tensor', 0\]"):
        dlcore.load_model(path)


def test_files_without_an_architecture_or_not_models_are_clear_errors(tmp_path):
    model = zoo.mnist_cnn(rng=0)
    model.save_weights(tmp_path / "weights.npz")
    with rejects(ModelFileError, match="holds weights but no architecture .* call model.load_weights"):
        dlcore.load_model(tmp_path / "weights.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with rejects(checkpoint.CheckpointError, match="not a readable .npz checkpoint"):
        dlcore.load_model(tmp_path / "text.npz")
    path = model.save(tmp_path / "m.npz")
    arrays = checkpoint.read(path).arrays
    arrays["model/architecture"] = np.asarray("{not json")
    np.savez(path, **arrays)
    with rejects(ModelFileError, match="model/architecture is not valid JSON"):
        dlcore.load_model(path)
    with zipfile.ZipFile(io.BytesIO((tmp_path / "m.npz").read_bytes())) as archive:
        assert "model/architecture.npy" in archive.namelist()


class Scale(Layer):
    """A user's layer: saved by name, but only dlcore.layers can be loaded."""

    def __init__(self, factor, name=None):
        super().__init__(name)
        self.factor = factor

    def forward(self, x):
        return x * self.factor, None

    def backward(self, dout, cache, needs_input_grad=True):
        return dout * self.factor


def test_layers_outside_dlcore_are_refused_clearly(tmp_path):
    model = Sequential([Dense(3, 2, rng=0), Scale(2.0)], input_shape=(3,))
    path = model.save(tmp_path / "custom.npz")
    with rejects(ModelFileError, match="unknown layer type 'Scale'"):
        dlcore.load_model(path)
    with rejects(ModelFileError, match=r"Scale 'scale' has a constructor argument a model file cannot hold"):
        Sequential([Dense(3, 2, rng=0), Scale(object())], input_shape=(3,)).save(tmp_path / "object.npz")
    assert not (tmp_path / "object.npz").exists()


def test_a_failed_save_leaves_the_previous_file(tmp_path, monkeypatch):
    path = zoo.mnist_cnn(rng=0).save(tmp_path / "m.npz")
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(OSError, match="disk full"):
        zoo.mnist_cnn(rng=1).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]
