"""Symbolic tensors and nodes: what calling a layer on `dlcore.Input(...)` builds.

    x = Input((1, 28, 28), name="image")   # a SymbolicTensor with no producer
    h = Conv2D(1, 8, 3)(x)                 # a Node (one call of the layer) and its output tensor

Shapes are per sample, without the batch dimension; None marks a size that is not known
until data arrives (Sequential without an input shape). Nodes only point backwards, to the
tensors they read, so a graph is acyclic by construction; dlcore.graph.topology orders it.
"""
from __future__ import annotations

import numbers


class SymbolicTensor:
    """A value in a graph under construction: a model input (`node` None) or a node's output.
    `shape` is the shape of one sample (None if unknown)."""

    def __init__(self, shape: tuple | None, node: Node | None = None, name: str | None = None):
        self.shape = shape
        self.node = node
        self.name = name

    def __repr__(self):
        where = f"output of {self.node.layer.describe()}" if self.node else f"Input {self.name!r}"
        return f"SymbolicTensor({where}, shape={self.shape})"


class Node:
    """One call of a layer on symbolic tensors. It owns that call (its forward cache lives in
    the engine under this node), so a layer called twice is two nodes sharing parameters."""

    def __init__(self, layer, inputs: list[SymbolicTensor], shape: tuple | None):
        self.layer = layer
        self.inputs = inputs
        self.output = SymbolicTensor(shape, node=self)

    def __repr__(self):
        return f"Node({self.layer.describe()})"


def Input(shape=None, name: str | None = None) -> SymbolicTensor:  # noqa: N802 (Keras' name)
    """A model input of per-sample `shape` (e.g. (1, 28, 28) for MNIST; None entries and
    shape=None leave sizes open). Layers called on it build a graph for dlcore.Model."""
    if shape is not None:
        shape = tuple(shape)
        if not all(d is None or (isinstance(d, numbers.Integral) and d >= 1) for d in shape):
            raise ValueError(f"Input: shape must hold positive ints (or None), got {shape}")
        shape = tuple(None if d is None else int(d) for d in shape)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"Input: name must be a string, got {type(name).__name__}")
    return SymbolicTensor(shape, name=name)


def call_symbolic(layer, x) -> SymbolicTensor:
    """A new node calling `layer` on symbolic tensor(s) x; the output shape is inferred when
    the input shapes are known (ValueError naming the layer and shapes if they do not fit)."""
    inputs = list(x) if layer.multi_input else [x]
    if layer.multi_input and not isinstance(x, (list, tuple)):
        raise TypeError(f"{layer.describe()} takes a list of tensors, got {type(x).__name__}")
    for item in inputs:
        if not isinstance(item, SymbolicTensor):
            raise TypeError(f"{layer.describe()}: cannot mix symbolic tensors (dlcore.Input) and "
                            f"{type(item).__name__} in one call")
    shapes = [t.shape for t in inputs]
    known = all(s is not None for s in shapes)
    shape = (layer.output_shape(shapes if layer.multi_input else shapes[0]) if known else None)
    return Node(layer, inputs, shape).output
