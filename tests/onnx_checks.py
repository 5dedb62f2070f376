"""Shared by the ONNX tests: run an exported model in ONNX Runtime on the CPU and compare it
with dlcore's eval-mode output."""
import numpy as np
import pytest

from dlcore.data import load_mnist
from dlcore.layers import BatchNorm1D, BatchNorm2D

ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install -e '.[dev]')")

# float32 agreement: ONNX Runtime sums in other orders (and may use other GEMM and
# convolution algorithms) than dlcore's NumPy ops; differences are float32 rounding, relative
# to the size of the outputs.
RTOL = 1e-5


def mnist_test_images(mnist_path, count: int) -> np.ndarray:
    images, _ = load_mnist("test", data_dir=mnist_path)
    return images[:count]  # (count, 1, 28, 28) float32 in [0, 1]


def randomize_batch_norm(model, seed: int = 0) -> None:
    """Give every batch norm of `model` non-trivial gamma, beta and running statistics, so the
    export's inference form is checked (the defaults 1, 0, 0, 1 make it the identity)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, (BatchNorm1D, BatchNorm2D)):
            size = layer.num_features
            layer.gamma.data[...] = rng.uniform(0.5, 1.5, size)
            layer.beta.data[...] = rng.normal(0, 0.2, size)
            layer.running_mean[...] = rng.normal(0, 0.2, size)
            layer.running_var[...] = rng.uniform(0.5, 2.0, size)


def onnxruntime_outputs(path, feeds: dict) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def compare_with_dlcore(model, path, inputs) -> float:
    """Run the exported file in ONNX Runtime and `model` in dlcore (eval mode) on `inputs` (one
    array per model input); assert every output agrees to float32 rounding and, for 2-D outputs,
    that the predicted classes are identical. Returns the largest difference relative to the
    largest output magnitude."""
    wanted = model(*inputs)
    wanted = list(wanted) if isinstance(wanted, tuple) else [wanted]
    got = onnxruntime_outputs(path, dict(zip(model.input_names, inputs)))
    assert len(got) == len(wanted)
    worst = 0.0
    for name, g, w in zip(model.output_names, got, wanted):
        assert g.shape == w.shape and g.dtype == np.float32, name
        scale = max(float(np.abs(w).max()), 1e-3)
        relative = float(np.abs(g - w).max()) / scale
        assert relative <= RTOL, f"output {name!r}: max |onnxruntime - dlcore| / max |dlcore| = {relative:.2e}"
        if w.ndim == 2:
            np.testing.assert_array_equal(g.argmax(axis=1), w.argmax(axis=1), err_msg=f"classes of {name!r}")
        worst = max(worst, relative)
    return worst
