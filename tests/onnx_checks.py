"""Shared by the ONNX tests: run an exported model in ONNX Runtime on the CPU and compare it
with dlcore's eval-mode output."""
import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install -e '.[dev]')")

# float32 agreement: ONNX Runtime sums in other orders (and may use other GEMM and
# convolution algorithms) than dlcore's NumPy ops; differences are float32 rounding, relative
# to the size of the outputs.
RTOL = 1e-5


def onnxruntime_outputs(path, feeds: dict) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def compare_with_dlcore(model, path, inputs) -> None:
    """Run the exported file in ONNX Runtime and `model` in dlcore (eval mode) on `inputs` (one
    array per model input); assert every output agrees to float32 rounding and, for 2-D outputs,
    that the predicted classes are identical."""
    wanted = model(*inputs)
    wanted = list(wanted) if isinstance(wanted, tuple) else [wanted]
    got = onnxruntime_outputs(path, dict(zip(model.input_names, inputs)))
    assert len(got) == len(wanted)
    for name, g, w in zip(model.output_names, got, wanted):
        assert g.shape == w.shape and g.dtype == np.float32, name
        scale = max(float(np.abs(w).max()), 1e-3)
        relative = float(np.abs(g - w).max()) / scale
        assert relative <= RTOL, f"output {name!r}: max |onnxruntime - dlcore| / max |dlcore| = {relative:.2e}"
        if w.ndim == 2:
            np.testing.assert_array_equal(g.argmax(axis=1), w.argmax(axis=1), err_msg=f"classes of {name!r}")
