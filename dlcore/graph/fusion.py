"""Graph passes: rewrites of a plan's steps that keep every result and save work.

conv + ReLU -> max pool. A max pool's gradient reaches, in each window, only a cell equal
to the window's maximum, and that cell's ReLU output is > 0 exactly when the maximum is.
So the ReLU's gradient (dout * (out > 0)) can be applied on the pool's dout, an array
kh*kw times smaller than the conv's output, and the conv then skips its own mask: the same
gradients for less memory traffic. The pass applies only where it is valid: a Conv2D with
the fused ReLU whose output is read by one MaxPool2D and by nothing else (no other layer,
not a model output).
"""
from __future__ import annotations

from dlcore.graph.engine import NodeStep, check_gradients
from dlcore import anomaly
from dlcore.layers.conv import Conv2D
from dlcore.layers.pool import MaxPool2D
from dlcore.ops.pool import max_pool2d_backward


class ConvReLUMaxPool:
    """A Conv2D(activation="relu") step and the MaxPool2D step that alone reads its output,
    run as one: forward is the two layers' forwards; backward applies the ReLU's gradient on
    the pooled gradient (max_pool2d_backward's gate) and runs the conv's backward from the
    pre-activation gradient (Conv2D.backward_preactivation)."""

    def __init__(self, conv: NodeStep, pool: NodeStep):
        self.conv, self.pool = conv, pool
        self.inputs, self.output = conv.inputs, pool.output
        self.layers = conv.layers + pool.layers
        self.name = f"{conv.name}+{pool.name}"

    def describe(self) -> str:
        return f"{self.conv.describe()} + {self.pool.describe()}"

    def forward(self, arrays):
        conv_out, conv_cache = self.conv.forward(arrays)
        out, pool_cache = self.pool.forward([conv_out])
        return out, (conv_cache, pool_cache, out)

    def backward(self, dout, cache, needs: list[bool]) -> list:
        conv_cache, pool_cache, out = cache
        dz = max_pool2d_backward(dout, pool_cache, gate=out)  # dL/d(conv + bias): ReLU gradient applied
        if anomaly.is_enabled():
            check_gradients(self.pool.describe(), self.pool.node.layer, dz)
        conv = self.conv.node.layer
        dx = conv.backward_preactivation(dz, conv_cache, needs_input_grad=needs[0])
        if anomaly.is_enabled():
            check_gradients(self.conv.describe(), conv, dx)
        return [dx]

    def __repr__(self):
        return self.describe()


def fuse_conv_relu_max_pool(steps: list, outputs: list) -> list:
    """The steps with each valid (conv + ReLU, max pool) pair replaced by a ConvReLUMaxPool
    at the conv's place (the pool reads nothing else, so nothing between them needs it)."""
    readers: dict[int, list] = {}
    for step in steps:
        for tensor in step.inputs:
            readers.setdefault(id(tensor), []).append(step)
    model_outputs = {id(t) for t in outputs}
    fused_pool_of = {}
    for step in steps:
        if not (isinstance(step, NodeStep) and isinstance(step.node.layer, Conv2D)
                and step.node.layer.activation == "relu"):
            continue
        after = readers.get(id(step.output), [])
        if (len(after) == 1 and isinstance(after[0], NodeStep) and isinstance(after[0].node.layer, MaxPool2D)
                and id(step.output) not in model_outputs):
            fused_pool_of[id(step)] = after[0]
    pools = {id(pool) for pool in fused_pool_of.values()}
    return [ConvReLUMaxPool(step, fused_pool_of[id(step)]) if id(step) in fused_pool_of else step
            for step in steps if id(step) not in pools]


PASSES = (fuse_conv_relu_max_pool,)
