"""Execution of a graph: a plan of steps run forward in order and backward in reverse.

A step runs one node (NodeStep) or several that a graph pass fused (dlcore.graph.fusion);
each has the same three parts: `inputs` (tensors it reads), `output` (the tensor it makes),
forward(arrays) -> (out, cache) and backward(dout, cache, needs) -> one gradient per input.

Forward keeps each step's cache (training mode) and drops every intermediate value after its
last reader. Backward walks the steps in reverse, sums the gradients of a tensor that fans out
to several readers, and runs only the steps on a path from a trainable parameter or a
requested input gradient to an output that received a gradient: a frozen base, and the
input gradient of the first layer, cost nothing.
"""
from __future__ import annotations

from dlcore import anomaly
from dlcore.graph.tensor import Node, SymbolicTensor


class NodeStep:
    """One node: its layer's forward and backward, with dlcore.detect_anomaly's checks."""

    def __init__(self, node: Node, name: str):
        self.node, self.name = node, name
        self.inputs, self.output = node.inputs, node.output
        self.layers = [node.layer]

    def describe(self) -> str:
        return f"{type(self.node.layer).__name__} {self.name!r}"

    def forward(self, arrays):
        layer = self.node.layer
        x = layer.check_input(arrays if layer.multi_input else arrays[0])
        if anomaly.is_enabled():
            anomaly.check(x, f"the input of {self.describe()} (forward pass)")
        result = layer.forward(x)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TypeError(f"{type(layer).__name__}.forward must return (out, cache), the Layer contract "
                            f"(dlcore.layers.Layer), got {type(result).__name__}")
        out, cache = result
        if anomaly.is_enabled():
            anomaly.check(out, f"the forward output of {self.describe()}")
        return out, cache

    def backward(self, dout, cache, needs: list[bool]) -> list:
        layer = self.node.layer
        dx = layer.backward(dout, cache, needs_input_grad=any(needs))
        if anomaly.is_enabled():
            check_gradients(self.describe(), layer, dx)
        return list(dx) if layer.multi_input else [dx]

    def __repr__(self):
        return self.describe()


def check_gradients(where: str, layer, dx) -> None:
    """dlcore.detect_anomaly after a backward: the layer's parameter gradients, then dx
    (the gradients so far: a shared layer's sum over the calls that ran backward)."""
    for key, grad in layer.gradients().items():
        anomaly.check(grad, f"the gradient of {where}.{key} (backward pass)")
    anomaly.check(dx, f"the input gradient of {where} (backward pass)")


class Plan:
    """The steps that compute `outputs` from `inputs`, in an order that respects every
    dependency, and when each intermediate value can be dropped."""

    def __init__(self, inputs: list[SymbolicTensor], outputs: list[SymbolicTensor], steps: list):
        self.inputs, self.outputs, self.steps = inputs, outputs, steps
        last_reader = {}
        for i, step in enumerate(steps):
            for tensor in step.inputs:
                last_reader[id(tensor)] = i
        kept = {id(t) for t in outputs}
        self.drop_after = [[] for _ in steps]  # drop_after[i]: values no step after i reads
        for i, step in enumerate(steps):
            for tensor in step.inputs:
                if last_reader[id(tensor)] == i and id(tensor) not in kept and tensor not in self.drop_after[i]:
                    self.drop_after[i].append(tensor)
        self.parameters = list({id(p): p for step in steps for layer in step.layers
                                for p in layer.parameters().values()}.values())

    def forward(self, arrays, keep_caches: bool):
        """(output arrays, the steps' caches or None)."""
        values = {id(t): a for t, a in zip(self.inputs, arrays)}
        caches = [] if keep_caches else None
        for step, dropped in zip(self.steps, self.drop_after):
            out, cache = step.forward([values[id(t)] for t in step.inputs])
            values[id(step.output)] = out
            if keep_caches:
                caches.append(cache)
            for tensor in dropped:
                values.pop(id(tensor), None)
        return [values[id(t)] for t in self.outputs], caches

    def backward(self, caches: list, douts: list, input_grads: list[bool]) -> list:
        """The gradients of the inputs whose `input_grads` flag is set (None elsewhere), from
        one gradient (or None) per output; sets every trainable parameter's .grad (None if no
        gradient reaches it). Consumes `caches`."""
        needs = self.needs_grad(input_grads)
        for p in self.parameters:
            if p.trainable:
                p.grad = None
        grads: dict[int, object] = {}
        for tensor, dout in zip(self.outputs, douts):
            if dout is not None:
                _accumulate(grads, tensor, dout)
        for i in range(len(self.steps) - 1, -1, -1):
            step, cache = self.steps[i], caches[i]
            caches[i] = None  # free the forward's memory as backward goes
            dout = grads.pop(id(step.output), None)
            if dout is None or not needs[id(step.output)]:
                continue
            flags = [needs[id(t)] for t in step.inputs]
            for tensor, flag, dx in zip(step.inputs, flags, step.backward(dout, cache, flags)):
                if flag and dx is not None:
                    _accumulate(grads, tensor, dx)
        return [grads.get(id(t)) if wanted else None for t, wanted in zip(self.inputs, input_grads)]

    def needs_grad(self, input_grads: list[bool]) -> dict[int, bool]:
        """{id(tensor): whether its gradient is needed}: a requested input, or the output of a
        step with a trainable parameter or reading a tensor whose gradient is needed."""
        needs = {id(t): bool(flag) for t, flag in zip(self.inputs, input_grads)}
        for step in self.steps:
            needs[id(step.output)] = (any(layer.trainable for layer in step.layers)
                                      or any(needs[id(t)] for t in step.inputs))
        return needs


def _accumulate(grads: dict, tensor, grad) -> None:
    """grads[tensor] += grad (a new array: the gradients summed may be views owned elsewhere)."""
    key = id(tensor)
    grads[key] = grad if key not in grads else grads[key] + grad
