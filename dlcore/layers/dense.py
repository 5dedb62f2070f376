"""Dense (fully connected) layer: y = x @ W + b with W of shape (in_features, out_features)."""
from __future__ import annotations

import numpy as np

from dlcore.layers.activation import check_activation
from dlcore.layers.base import Layer, positive_int
from dlcore.ops import dense_backward, dense_forward


class Dense(Layer):
    """x (N, in_features) -> (N, out_features), optionally followed by a fused ReLU."""

    def __init__(self, in_features: int, out_features: int, activation: str | None = None,
                 use_bias: bool = True, weight_init="glorot_uniform", bias_init="zeros",
                 dtype=np.float32, rng=None, name: str | None = None):
        super().__init__(name)
        owner = type(self).__name__
        self.in_features = positive_int(in_features, "in_features", owner)
        self.out_features = positive_int(out_features, "out_features", owner)
        self.activation = check_activation(activation, owner)
        fans = (self.in_features, self.out_features)
        self.weight = self.add_parameter("weight", fans, fans, weight_init, rng, dtype)
        self.bias = self.add_parameter("bias", (self.out_features,), fans, bias_init, rng, dtype) if use_bias else None

    def expected_shape(self):
        return f"(N, {self.in_features})"

    def input_matches(self, shape):
        return len(shape) == 2 and shape[1] == self.in_features

    def output_shape(self, shape):
        super().output_shape(shape)
        return (self.out_features,)

    def forward(self, x):  # (N, in) -> (N, out)
        bias = None if self.bias is None else self.bias.data
        return dense_forward(x, self.weight.data, bias, activation=self.activation)

    def backward(self, dout, cache, needs_input_grad=True):
        dx, dw, db = dense_backward(dout, cache, need_input_grad=needs_input_grad)
        self.add_grad(self.weight, dw)
        self.add_grad(self.bias, db)
        return dx
