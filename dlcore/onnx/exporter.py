"""export(model, path): a dlcore graph in eval mode as an ONNX model, checked by onnx.checker.

The ONNX graph has the model's input names (model.input_names) and output names
(model.output_names), float32 tensors of shape (batch, *per-sample shape) with a dynamic
batch dimension named "batch", and the weights as initializers named as
model.named_parameters() and model.named_buffers() ("conv1.weight", "bn1.running_mean").
Each node becomes the ONNX nodes of its layer's converter (dlcore.onnx.converters).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

import dlcore
from dlcore.atomic_file import atomic_write
from dlcore.onnx.converters import CONVERTERS
from dlcore.onnx.graph_builder import GraphBuilder

DEFAULT_OPSET = 17
# Gemm without a bias input (Dense(use_bias=False)) needs opset 11; the tests run opsets 11 to 21.
MINIMUM_OPSET = 11
BATCH_DIMENSION = "batch"


class OnnxExportError(ValueError):
    """The model cannot be exported as asked: training mode, a layer without a converter,
    unknown input shapes, an input named as a layer, weights that are not float32, an opset
    out of range."""


def export(model, path, opset: int = DEFAULT_OPSET, input_shapes: dict | None = None) -> Path:
    """Write `model` (a dlcore Model, Sequential or MultiInput in eval mode) to `path` as ONNX.

    opset: the ONNX operator set (default 17; MINIMUM_OPSET up to onnx.defs.onnx_opset_version()).
    input_shapes: {input name: per-sample shape} for inputs whose shape the model does not know
    (a Sequential built without input_shape), e.g. {"input": (1, 28, 28)}.
    The model is built in memory, checked by onnx.checker (with ONNX's shape inference), then
    written atomically (temporary file, fsync, rename): on any error nothing is written.
    Raises OnnxExportError naming what cannot be exported. Returns the path.
    """
    proto = to_onnx(model, opset, input_shapes)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as file:
        file.write(proto.SerializeToString())
    return path


def to_onnx(model, opset: int = DEFAULT_OPSET, input_shapes: dict | None = None) -> onnx.ModelProto:
    """The checked ONNX ModelProto that export() writes."""
    _check_exportable(model, opset)
    shapes = _tensor_shapes(model, input_shapes or {})
    graph = GraphBuilder()
    onnx_names = {id(tensor): name for tensor, name in zip(model.inputs, model.input_names)}
    for node in model.nodes:
        inputs = [onnx_names[id(tensor)] for tensor in node.inputs]
        converter = CONVERTERS[type(node.layer)]
        onnx_names[id(node.output)] = converter(graph, node.layer, inputs, [shapes[id(t)] for t in node.inputs],
                                                model._node_names[id(node)])
    for tensor, name in zip(model.outputs, model.output_names):
        if onnx_names[id(tensor)] != name:  # the output of a layer exported as nothing (Dropout last)
            graph.node("Identity", [onnx_names[id(tensor)]], [name])
    proto_graph = helper.make_graph(
        graph.nodes, model.name or "dlcore",
        inputs=[_value_info(name, shapes[id(t)]) for t, name in zip(model.inputs, model.input_names)],
        outputs=[_value_info(name, shapes[id(t)]) for t, name in zip(model.outputs, model.output_names)],
        initializer=list(graph.initializers.values()))
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(proto_graph, opset_imports=opsets, producer_name="dlcore",
                              producer_version=dlcore.__version__)
    proto.ir_version = helper.find_min_ir_version_for(opsets)  # the oldest IR of the opset: readable most widely
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _check_exportable(model, opset) -> None:
    highest = onnx.defs.onnx_opset_version()
    if not isinstance(opset, int) or isinstance(opset, bool) or not MINIMUM_OPSET <= opset <= highest:
        raise OnnxExportError(f"opset must be an int from {MINIMUM_OPSET} to {highest} (this onnx package's "
                              f"newest), got {opset!r}")
    training = [layer.name for layer in model.layers if layer.training]
    if training:
        raise OnnxExportError(
            f"{model.describe()} is in training mode ({len(training)} layer(s): {_first(training)}); ONNX gets the "
            "inference form (dropout off, batch norm on running statistics): call model.eval() first")
    unsupported = [f"{model._node_names[id(node)]!r} ({type(node.layer).__name__})" for node in model.nodes
                   if type(node.layer) not in CONVERTERS]
    if unsupported:
        supported = ", ".join(sorted(layer_type.__name__ for layer_type in CONVERTERS))
        raise OnnxExportError(f"cannot export {', '.join(unsupported)}: no ONNX converter for that layer type "
                              f"(dlcore.onnx.converters.CONVERTERS has {supported})")
    shared_names = sorted(set(model.input_names) & set(model.node_names))
    if shared_names:
        raise OnnxExportError(f"ONNX names every tensor once, and inputs and layers of {model.describe()} share the "
                              f"name(s) {', '.join(shared_names)}: rename the input (Input(name=...)) or the layer")
    not_float32 = [name for name, p in model.named_parameters().items() if np.dtype(p.data.dtype) != np.float32]
    if not_float32:
        raise OnnxExportError(f"the ONNX export is float32; these parameters are not: {_first(not_float32)} "
                              "(build the model with dtype=np.float32)")


def _first(names: list[str], count: int = 5) -> str:
    return ", ".join(names[:count]) + (f", ... ({len(names) - count} more)" if len(names) > count else "")


def _tensor_shapes(model, input_shapes: dict) -> dict[int, tuple]:
    """Per-sample shape of every tensor, by id: the inputs' (known or from input_shapes), then
    each node's from its layer's output_shape (which also checks that the shapes fit)."""
    unknown = set(input_shapes) - set(model.input_names)
    if unknown:
        raise OnnxExportError(f"input_shapes names {sorted(unknown)}, not inputs of {model.describe()} "
                              f"(its inputs: {', '.join(model.input_names)})")
    shapes = {}
    for tensor, name in zip(model.inputs, model.input_names):
        known = tensor.shape
        shape = tuple(input_shapes.get(name, known or (None,)))
        if known is not None and (len(known) != len(shape) or any(k not in (None, d) for k, d in zip(known, shape))):
            raise OnnxExportError(f"input_shapes gives input {name!r} the shape {shape}; the model's is {known}")
        if None in shape:
            raise OnnxExportError(
                f"the shape of input {name!r} is not known ({known}): build the model with it (Input(shape) or "
                f"Sequential(..., input_shape=...)), or pass input_shapes={{{name!r}: (channels, height, width)}}")
        shapes[id(tensor)] = shape
    for node in model.nodes:
        in_shapes = [shapes[id(t)] for t in node.inputs]
        shapes[id(node.output)] = tuple(node.layer.output_shape(in_shapes if node.layer.multi_input else in_shapes[0]))
    return shapes


def _value_info(name: str, shape: tuple):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH_DIMENSION, *shape])
