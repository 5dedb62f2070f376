"""Flatten: (N, d1, d2, ...) -> (N, d1*d2*...)."""
from __future__ import annotations

from dlcore.layers.base import Layer


class Flatten(Layer):
    def expected_shape(self):
        return "(N, ...) with at least 2 dimensions"

    def input_matches(self, shape):
        return len(shape) >= 2

    def forward(self, x):
        self._cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self._cache)
