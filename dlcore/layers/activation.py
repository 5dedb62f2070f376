"""Element-wise activation layers: ReLU, Tanh, Sigmoid, LeakyReLU, and Identity."""
from __future__ import annotations

import numbers

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


# ---- layers of the graph contract: forward(x) -> (out, cache), backward(dout, cache, needs_input_grad)


class LeakyReLU(Layer):
    """y = x where x > 0, else negative_slope * x (PyTorch's name and default; Keras's alpha).

    Any shape -> the same shape; negative_slope is a finite number >= 0."""

    def __init__(self, negative_slope: float = 0.01, name: str | None = None):
        super().__init__(name)
        numeric = isinstance(negative_slope, numbers.Real) and not isinstance(negative_slope, bool)
        if not (numeric and 0 <= negative_slope < float("inf")):
            raise ValueError(f"{self.describe()}: negative_slope must be a finite number >= 0, got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        out, cache = act.leaky_relu_forward(x, self.negative_slope)
        return out, cache if self.training else None

    def backward(self, dout, cache, needs_input_grad=True):
        if cache is None:
            raise RuntimeError(f"{self.describe()}: backward needs the cache of a forward pass in training mode")
        return act.leaky_relu_backward(dout, cache) if needs_input_grad else None


class Identity(Layer):
    """y = x, as a view of x (no copy); the gradient is dout itself. Any shape."""

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        return x.view(), None  # backward needs nothing

    def backward(self, dout, cache, needs_input_grad=True):
        return dout if needs_input_grad else None
