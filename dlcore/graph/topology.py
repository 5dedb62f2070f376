"""A graph's nodes in topological order, checked, with names for its layers and nodes.

Names: unnamed layers get Keras-style names unique within the model (Dense -> "dense",
"dense_1", ...). A node is named after its layer; the k-th further call of a layer that the
graph calls several times is "<layer>:k" ("shared", "shared:1").
"""
from __future__ import annotations

import re

from dlcore.graph.tensor import Node, SymbolicTensor


def default_name(layer) -> str:
    """Keras-style snake case of the class name: MaxPool2D -> max_pool2d, ReLU -> relu."""
    return getattr(type(layer), "default_name", None) or re.sub(
        r"(?<=[a-z])(?=[A-Z][a-z])", "_", type(layer).__name__).lower()


def topological_order(outputs: list[SymbolicTensor]) -> list[Node]:
    """Every node that the outputs depend on, each after the nodes it reads (depth-first
    post-order from the outputs, inputs in call order); ValueError on a cycle."""
    order: list[Node] = []
    done: set[int] = set()
    on_path: set[int] = set()
    for output in outputs:
        if output.node is None or id(output.node) in done:
            continue
        stack = [(output.node, iter(output.node.inputs))]
        on_path.add(id(output.node))
        while stack:
            node, pending = stack[-1]
            tensor = next(pending, None)
            if tensor is None:
                stack.pop()
                on_path.discard(id(node))
                done.add(id(node))
                order.append(node)
                continue
            producer = tensor.node
            if producer is None or id(producer) in done:
                continue
            if id(producer) in on_path:
                cycle = [n.layer.describe() for n, _ in stack[[id(n) for n, _ in stack].index(id(producer)):]]
                raise ValueError(f"the graph has a cycle: {' -> '.join(cycle)} -> {producer.layer.describe()}")
            on_path.add(id(producer))
            stack.append((producer, iter(producer.inputs)))
    return order


def check_graph(owner: str, inputs: list[SymbolicTensor], outputs: list[SymbolicTensor], nodes: list[Node]):
    """ValueError unless the outputs depend on the given inputs only and every input is used."""
    for i, tensor in enumerate(inputs):
        if not isinstance(tensor, SymbolicTensor) or tensor.node is not None:
            raise ValueError(f"{owner}: input {i} must be a tensor made by dlcore.Input(...), got {tensor!r}")
    for i, tensor in enumerate(outputs):
        if not isinstance(tensor, SymbolicTensor):
            raise TypeError(f"{owner}: output {i} must be a symbolic tensor (a layer called on an Input), "
                            f"got {type(tensor).__name__}")
    if len({id(t) for t in inputs}) != len(inputs):
        raise ValueError(f"{owner}: an Input is given twice among the inputs")
    given = {id(t) for t in inputs}
    used = {id(t) for t in outputs if t.node is None}
    for node in nodes:
        for tensor in node.inputs:
            if tensor.node is None:
                if id(tensor) not in given:
                    raise ValueError(f"{owner}: {node.layer.describe()} reads an Input "
                                     f"({tensor.name or 'unnamed'}, shape {tensor.shape}) that is not among "
                                     "the model's inputs; pass it in Model(inputs=...)")
                used.add(id(tensor))
    for tensor in outputs:
        if tensor.node is None and id(tensor) not in given:
            raise ValueError(f"{owner}: an output is an Input that is not among the model's inputs "
                             "(it depends on none of them)")
    unused = [t.name or f"input {i}" for i, t in enumerate(inputs) if id(t) not in used]
    if unused:
        raise ValueError(f"{owner}: nothing uses the input(s) {', '.join(unused)}: every input must "
                         "feed some output (drop it from inputs=...)")


def name_layers(owner: str, layers: list) -> None:
    """Give unnamed layers unique Keras-style names; ValueError if two layers share a name."""
    named = [layer.name for layer in layers if layer.name]
    duplicate = next((n for n in named if named.count(n) > 1), None)
    if duplicate is not None:
        raise ValueError(f"{owner}: two layers are named {duplicate!r}")
    taken, counts = set(named), {}
    for layer in layers:
        if layer.name:
            continue
        base = default_name(layer)
        name, k = base, counts.get(base, 0)
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        counts[base] = k
        layer.name = name
        taken.add(name)


def name_inputs(inputs: list[SymbolicTensor]) -> list[str]:
    """The inputs' names ("input", "input_1", ... for unnamed ones); ValueError on duplicates."""
    names, k = [], 0
    for tensor in inputs:
        name = tensor.name
        if name is None:
            name = "input" if k == 0 else f"input_{k}"
            k += 1
        names.append(name)
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise ValueError(f"two inputs are named {duplicate!r}")
    return names


def name_nodes(nodes: list[Node]) -> dict[int, str]:
    """{id(node): name}: the layer's name, and "<layer>:k" for its k-th further call."""
    calls: dict[int, int] = {}
    names = {}
    for node in nodes:
        k = calls.get(id(node.layer), 0)
        calls[id(node.layer)] = k + 1
        names[id(node)] = node.layer.name if k == 0 else f"{node.layer.name}:{k}"
    return names
