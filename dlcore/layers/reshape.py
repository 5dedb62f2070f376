"""Flatten: (N, d1, d2, ...) -> (N, d1*d2*...)."""
from __future__ import annotations

import math

from dlcore.layers.base import Layer


class Flatten(Layer):
    def expected_shape(self):
        return "(N, ...) with at least 2 dimensions"

    def input_matches(self, shape):
        return len(shape) >= 2

    def output_shape(self, shape):
        super().output_shape(shape)
        return (None if None in shape else math.prod(shape),)

    def forward(self, x):  # (N, d1, d2, ...) -> (N, d1*d2*...)
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, dout, cache, needs_input_grad=True):
        return dout.reshape(cache)
