"""One converter per layer type: how a node of a dlcore graph becomes ONNX nodes.

A converter is `convert(graph, layer, inputs, shapes, name) -> str`: `inputs` are the names
of the ONNX tensors the node reads, `shapes` their per-sample shapes (no batch dimension),
`name` the tensor its output should be; it adds nodes and initializers to `graph` (a
dlcore.onnx.graph_builder.GraphBuilder) and returns the name of the tensor that holds the
output (`name`, or an input's name for a layer that exports as nothing, such as Dropout).
CONVERTERS maps each exportable layer class to its converter: adding a layer is one entry.

Padding: dlcore resolves every padding ('same' the TensorFlow way, possibly one cell more
after than before; 'valid'; ints; pairs) to explicit (before, after) cells per dimension, and
the converters write exactly those as ONNX `pads`, [top, left, bottom, right], never `auto_pad`.
"""
from __future__ import annotations

from dlcore.layers import (
    Add, AvgPool2D, BatchNorm1D, BatchNorm2D, Concatenate, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool2D,
    GlobalMaxPool2D, Identity, LeakyReLU, MaxPool2D, ReLU, Sigmoid, Tanh,
)
from dlcore.layers.merge import FlattenConcatenate
from dlcore.ops.padding import Window2d, window_2d


def _window(layer, shape, dilation=1) -> Window2d:
    """The window geometry dlcore itself uses for `layer` on per-sample input `shape` (C, H, W)."""
    return window_2d(layer.describe(), shape[1:], layer.kernel_size, layer.stride, layer.padding, dilation)


def _window_attributes(window: Window2d) -> dict:
    return {"kernel_shape": list(window.kernel), "strides": list(window.stride),
            "pads": [window.pad_h[0], window.pad_w[0], window.pad_h[1], window.pad_w[1]]}


def _fused_activation(graph, activation, before: str, name: str) -> str:
    """Relu on `before` into `name` for activation='relu' (Conv2D, Dense); None: nothing to add."""
    if activation == "relu":
        graph.node("Relu", [before], [name])
    return name


def _parameter_inputs(graph, layer, keys) -> list[str]:
    """Initializers for the layer's parameters and buffers named in `keys` that it has."""
    arrays = {key: parameter.data for key, parameter in layer.parameters().items()} | layer.buffers()
    return [graph.initializer(f"{layer.name}.{key}", arrays[key]) for key in keys if key in arrays]


def conv2d(graph, layer, inputs, shapes, name):
    window = _window(layer, shapes[0], layer.dilation)
    convolved = name if layer.activation is None else f"{name}/conv"
    graph.node("Conv", [inputs[0], *_parameter_inputs(graph, layer, ("weight", "bias"))], [convolved],
               dilations=list(layer.dilation), **_window_attributes(window))
    return _fused_activation(graph, layer.activation, convolved, name)


def max_pool2d(graph, layer, inputs, shapes, name):
    # MaxPool never picks a padded cell (ONNX pads it with -inf), as dlcore.
    graph.node("MaxPool", inputs, [name], **_window_attributes(_window(layer, shapes[0])))
    return name


def avg_pool2d(graph, layer, inputs, shapes, name):
    # AveragePool's count_include_pad: 0 divides each window by its real (non-padded) cells,
    # dlcore's default; 1 divides by kh * kw, the padding counted as zeros.
    graph.node("AveragePool", inputs, [name], count_include_pad=int(layer.count_include_pad),
               **_window_attributes(_window(layer, shapes[0])))
    return name


def batch_norm(graph, layer, inputs, shapes, name):
    # Inference form: y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta.
    keys = ("gamma", "beta", "running_mean", "running_var")
    graph.node("BatchNormalization", [inputs[0], *_parameter_inputs(graph, layer, keys)], [name], epsilon=layer.eps)
    return name


def dense(graph, layer, inputs, shapes, name):
    # dlcore's weight is (in, out), so y = x @ W + b is Gemm without transposing B (PyTorch's
    # (out, in) weight would need transB=1).
    multiplied = name if layer.activation is None else f"{name}/gemm"
    graph.node("Gemm", [inputs[0], *_parameter_inputs(graph, layer, ("weight", "bias"))], [multiplied])
    return _fused_activation(graph, layer.activation, multiplied, name)


def removed(graph, layer, inputs, shapes, name):
    """Dropout (identity in eval mode) and Identity export as nothing: the input is the output."""
    return inputs[0]


def flatten(graph, layer, inputs, shapes, name):
    graph.node("Flatten", inputs, [name], axis=1)  # (N, d1, d2, ...) -> (N, d1*d2*...) in NCHW order
    return name


def elementwise(op_type: str):
    def convert(graph, layer, inputs, shapes, name):
        graph.node(op_type, inputs, [name])
        return name
    return convert


def leaky_relu(graph, layer, inputs, shapes, name):
    graph.node("LeakyRelu", inputs, [name], alpha=layer.negative_slope)
    return name


def add(graph, layer, inputs, shapes, name):
    graph.node("Add" if len(inputs) == 2 else "Sum", inputs, [name])
    return name


def concatenate(graph, layer, inputs, shapes, name):
    rank = len(shapes[0]) + 1  # with the batch dimension
    graph.node("Concat", inputs, [name], axis=layer.axis % rank)
    return name


def flatten_concatenate(graph, layer, inputs, shapes, name):
    flat = [f"{name}/flatten{i}" for i in range(len(inputs))]
    for tensor, flattened in zip(inputs, flat):
        graph.node("Flatten", [tensor], [flattened], axis=1)
    graph.node("Concat", flat, [name], axis=1)
    return name


def global_pool(op_type: str):
    """GlobalAveragePool / GlobalMaxPool give (N, C, 1, 1); dlcore's global pools give (N, C)."""
    def convert(graph, layer, inputs, shapes, name):
        pooled = f"{name}/pooled"
        graph.node(op_type, inputs, [pooled])
        graph.node("Flatten", [pooled], [name], axis=1)
        return name
    return convert


CONVERTERS = {
    Conv2D: conv2d,
    MaxPool2D: max_pool2d,
    AvgPool2D: avg_pool2d,
    BatchNorm1D: batch_norm,
    BatchNorm2D: batch_norm,
    Dense: dense,
    Dropout: removed,
    Identity: removed,
    Flatten: flatten,
    ReLU: elementwise("Relu"),
    Tanh: elementwise("Tanh"),
    Sigmoid: elementwise("Sigmoid"),
    LeakyReLU: leaky_relu,
    Add: add,
    Concatenate: concatenate,
    FlattenConcatenate: flatten_concatenate,
    GlobalAvgPool2D: global_pool("GlobalAveragePool"),
    GlobalMaxPool2D: global_pool("GlobalMaxPool"),
}
