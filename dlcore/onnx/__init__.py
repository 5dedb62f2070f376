"""ONNX export of dlcore models: `dlcore.onnx.export(model.eval(), "model.onnx")`, then run
it in ONNX Runtime or any other ONNX consumer. Needs the `onnx` package: pip install "dlcore[onnx]"
(which adds onnxruntime too)."""
try:
    import onnx  # noqa: F401 (absolute: the onnx package, not this one)
except ImportError as error:
    raise ImportError(f"dlcore.onnx needs the onnx package ({error}): pip install 'dlcore[onnx]'") from error

from dlcore.onnx.exporter import DEFAULT_OPSET, MINIMUM_OPSET, OnnxExportError, export, to_onnx

__all__ = ["DEFAULT_OPSET", "MINIMUM_OPSET", "OnnxExportError", "export", "to_onnx"]
