"""dlcore.safetensors_io: weights in and out as safetensors, in dlcore's names and in PyTorch's
state_dict names (checked against a hand-written state_dict of NumPy arrays, and against a
PyTorch twin where torch is installed); mismatches and bad files load nothing."""
import json
import struct

import numpy as np
import pytest

safetensors_numpy = pytest.importorskip("safetensors.numpy",
                                        reason="safetensors not installed (pip install -e '.[dev]')")

import dlcore  # noqa: E402
from dlcore import zoo  # noqa: E402
from dlcore.layers import BatchNorm1D, Dense, Flatten, Layer, ReLU  # noqa: E402
from dlcore.safetensors_io import (  # noqa: E402
    WeightsFileError, WeightsMismatchError, load_safetensors, pytorch_names, save_safetensors,
)
from tests.model_fixtures import mnist_test_images, randomize_batch_norm  # noqa: E402


def _weights(model) -> dict[str, np.ndarray]:
    return {name: np.array(array) for name, array in
            ({k: p.data for k, p in model.named_parameters().items()} | model.named_buffers()).items()}


def _assert_same_weights(a, b):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)


@pytest.mark.parametrize("layout", ["dlcore", "pytorch"])
def test_round_trip_gives_identical_predictions(layout, mnist_path, tmp_path):
    trained = zoo.mnist_cnn_batchnorm(rng=0)
    randomize_batch_norm(trained)
    fresh = zoo.mnist_cnn_batchnorm(rng=1)
    load_safetensors(fresh, save_safetensors(trained, tmp_path / "w.safetensors", layout=layout), layout=layout)
    _assert_same_weights(trained, fresh)
    images = mnist_test_images(mnist_path, 64)
    np.testing.assert_array_equal(fresh.eval()(images), trained.eval()(images))


def test_the_pytorch_name_map():
    assert pytorch_names(zoo.mnist_cnn_batchnorm()) == {
        "conv1.weight": "conv1.weight",
        "bn1.gamma": "bn1.weight", "bn1.beta": "bn1.bias",
        "bn1.running_mean": "bn1.running_mean", "bn1.running_var": "bn1.running_var",
        "conv2.weight": "conv2.weight",
        "bn2.gamma": "bn2.weight", "bn2.beta": "bn2.bias",
        "bn2.running_mean": "bn2.running_mean", "bn2.running_var": "bn2.running_var",
        "fc1.weight": "fc1.weight",
        "bn3.gamma": "bn3.weight", "bn3.beta": "bn3.bias",
        "bn3.running_mean": "bn3.running_mean", "bn3.running_var": "bn3.running_var",
        "fc2.weight": "fc2.weight", "fc2.bias": "fc2.bias",
    }
    sequential_indices = {"conv1": "0", "conv2": "3", "fc1": "7", "fc2": "10"}  # torch's nn.Sequential names
    assert pytorch_names(zoo.mnist_cnn(), modules=sequential_indices) == {
        "conv1.weight": "0.weight", "conv1.bias": "0.bias", "conv2.weight": "3.weight", "conv2.bias": "3.bias",
        "fc1.weight": "7.weight", "fc1.bias": "7.bias", "fc2.weight": "10.weight", "fc2.bias": "10.bias"}
    with pytest.raises(ValueError, match=r"modules names \['fc3'\], not layers"):
        pytorch_names(zoo.mnist_cnn(), modules={"fc3": "3"})
    with pytest.raises(ValueError, match="several layers to the same PyTorch names: 0.bias, 0.weight"):
        pytorch_names(zoo.mnist_cnn(), modules={"fc1": "0", "fc2": "0"})


def _head():
    """flatten -> nn.Linear(12, 8) -> nn.BatchNorm1d(8) -> ReLU -> nn.Linear(8, 3), dlcore side."""
    return dlcore.Sequential([Flatten(), Dense(12, 8, name="fc1"), BatchNorm1D(8, name="bn"), ReLU(),
                              Dense(8, 3, name="fc2")], input_shape=(3, 2, 2))


def _hand_written_state_dict(seed=0) -> dict[str, np.ndarray]:
    """What torch's state_dict of the _head twin holds, as NumPy arrays in PyTorch's layout."""
    rng = np.random.default_rng(seed)
    f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    return {"fc1.weight": f32(8, 12), "fc1.bias": f32(8),
            "bn.weight": f32(8), "bn.bias": f32(8), "bn.running_mean": f32(8),
            "bn.running_var": rng.uniform(0.5, 2, 8).astype(np.float32), "bn.num_batches_tracked": np.array(7),
            "fc2.weight": f32(3, 8), "fc2.bias": f32(3)}


def test_pytorch_layout_against_a_hand_written_state_dict(tmp_path):
    state = _hand_written_state_dict()
    safetensors_numpy.save_file(state, str(tmp_path / "torch.safetensors"))
    model = _head().eval()
    load_safetensors(model, tmp_path / "torch.safetensors", layout="pytorch")
    x = np.random.default_rng(1).standard_normal((5, 3, 2, 2)).astype(np.float32)
    # PyTorch's forward on its own layout: Linear is x @ W.T + b, BatchNorm1d in eval mode
    h = x.reshape(5, -1) @ state["fc1.weight"].T + state["fc1.bias"]
    h = (h - state["bn.running_mean"]) / np.sqrt(state["bn.running_var"] + 1e-5) * state["bn.weight"] + state["bn.bias"]
    expected = np.maximum(h, 0) @ state["fc2.weight"].T + state["fc2.bias"]
    np.testing.assert_allclose(model(x), expected, rtol=1e-5, atol=1e-5)
    save_safetensors(model, tmp_path / "back.safetensors", layout="pytorch")
    back = safetensors_numpy.load_file(str(tmp_path / "back.safetensors"))
    assert back.keys() == state.keys()
    for name in state:
        if name != "bn.num_batches_tracked":  # dlcore does not count batches: written as 0
            np.testing.assert_array_equal(back[name], state[name], err_msg=name)
    assert back["bn.num_batches_tracked"].dtype == np.int64 and back["bn.num_batches_tracked"].shape == ()


def test_a_mismatch_lists_every_problem_and_loads_nothing(tmp_path):
    state = _hand_written_state_dict()
    state["fc1.weight"] = state["fc1.weight"].T.copy()                  # dlcore's (in, out), not torch's
    state["fc2.bias"] = state["fc2.bias"].astype(np.float64)
    del state["bn.running_var"]
    state["fc3.weight"] = np.zeros((2, 2), np.float32)
    safetensors_numpy.save_file(state, str(tmp_path / "bad.safetensors"))
    model = _head()
    before = _weights(model)
    with pytest.raises(WeightsMismatchError) as caught:
        load_safetensors(model, tmp_path / "bad.safetensors", layout="pytorch")
    assert caught.value.problems == [
        "fc1.weight: shape (12, 8) in the file, (8, 12) expected (dlcore's fc1.weight, transposed)",
        "bn.running_var: missing from the file; the model needs (8,) float32",
        "fc2.bias: dtype float64 in the file, float32 expected",
        "fc3.weight: in the file ((2, 2) float32) but not in the model",
    ]
    assert "4 problems); nothing was loaded" in str(caught.value)
    _assert_unchanged(model, before)


def _assert_unchanged(model, before):
    for name, array in _weights(model).items():
        np.testing.assert_array_equal(array, before[name], err_msg=name)


def _bf16_file(path):
    """A valid safetensors file (header length, JSON header, data) holding a bfloat16 tensor."""
    header = json.dumps({"fc1.weight": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)


def test_files_that_are_not_safetensors_load_nothing(tmp_path):
    model = zoo.mnist_cnn(rng=0)
    before = _weights(model)
    (tmp_path / "text.safetensors").write_text("not a safetensors file")
    model.save_weights(tmp_path / "checkpoint.npz")
    _bf16_file(tmp_path / "bf16.safetensors")
    for name, message in (("text.safetensors", "not a safetensors file"),
                          ("checkpoint.npz", "not a safetensors file"),
                          ("bf16.safetensors", "dtype 'BF16', which NumPy cannot represent")):
        with pytest.raises(WeightsFileError, match=message):
            load_safetensors(model, tmp_path / name)
    _assert_unchanged(model, before)


class Scale(Layer):
    """A layer with a weight that no PyTorch module is mapped to."""

    def __init__(self, name=None):
        super().__init__(name)
        self.weight = self.add_parameter("weight", (1,), (1, 1), "ones", None, np.float32)

    def forward(self, x):
        return x * self.weight.data, x

    def backward(self, dout, cache, needs_input_grad=True):
        return dout * self.weight.data


def test_bad_arguments_write_nothing(tmp_path):
    target = tmp_path / "w.safetensors"
    target.write_bytes(b"old")
    model = dlcore.Sequential([Flatten(), Scale(name="scale")], input_shape=(4,))
    with pytest.raises(ValueError, match=r"no PyTorch equivalent is known for Scale 'scale' \(its weights: weight\)"):
        save_safetensors(model, target, layout="pytorch")
    with pytest.raises(ValueError, match="layout must be one of"):
        save_safetensors(model, target, layout="keras")
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"] and target.read_bytes() == b"old"
    save_safetensors(model, target)  # dlcore's own names work for any layer
    assert safetensors_numpy.load_file(str(target)).keys() == {"scale.weight"}
