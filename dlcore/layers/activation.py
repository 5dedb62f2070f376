"""Element-wise activation layers: ReLU, Tanh, Sigmoid."""
from __future__ import annotations

from dlcore.layers.base import Layer
from dlcore.ops import activation as act
from dlcore.ops.checks import ACTIVATIONS


def check_activation(activation, owner: str):
    """The fused activations a Conv2D or Dense layer accepts."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"{owner}: activation must be one of {ACTIVATIONS}, got {activation!r}")
    return activation


class _Elementwise(Layer):
    """A parameter-free layer y = f(x) whose op pair is (forward, backward)."""

    forward_op = None
    backward_op = None

    def forward(self, x):
        return type(self).forward_op(x)

    def backward(self, dout, cache, needs_input_grad=True):
        return type(self).backward_op(dout, cache)


class ReLU(_Elementwise):
    forward_op = staticmethod(act.relu_forward)
    backward_op = staticmethod(act.relu_backward)


class Tanh(_Elementwise):
    forward_op = staticmethod(act.tanh_forward)
    backward_op = staticmethod(act.tanh_backward)


class Sigmoid(_Elementwise):
    forward_op = staticmethod(act.sigmoid_forward)
    backward_op = staticmethod(act.sigmoid_backward)
