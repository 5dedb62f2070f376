"""Concatenate: join several inputs of one batch into one feature matrix."""
from __future__ import annotations

import math

from dlcore.backend import xp
from dlcore.layers.base import Layer


class Concatenate(Layer):
    """Flattens each input and joins them along axis 1:
    [(N, ...), (N, ...), ...] -> (N, d_1 + d_2 + ...), d_i the size of one sample of input i.

    Called with a list (or tuple) of arrays; backward splits dL/dout back into one
    gradient per input, in the input's shape.
    """

    multi_input = True

    def check_input(self, xs):
        if not isinstance(xs, (list, tuple)) or not xs:
            raise TypeError(f"{self.describe()}: expected a non-empty list of arrays, got {type(xs).__name__}")
        xs = [Layer.check_input(self, x) for x in xs]  # each: a non-empty float array
        sizes = [int(x.shape[0]) for x in xs]
        if len(set(sizes)) != 1:
            raise ValueError(f"{self.describe()}: inputs have different batch sizes {sizes}")
        return xs

    def output_shape(self, shapes):
        sizes = [None if None in shape else math.prod(shape) for shape in shapes]
        return (None if None in sizes else sum(sizes),)

    def forward(self, xs):  # [(N, ...), ...] -> (N, sum d_i)
        n = xs[0].shape[0]
        return xp().concatenate([x.reshape(n, -1) for x in xs], axis=1), [x.shape for x in xs]

    def backward(self, dout, cache, needs_input_grad=True):  # (N, sum d_i) -> [(N, ...), ...]
        grads, start = [], 0
        for shape in cache:
            width = math.prod(shape[1:])
            grads.append(xp().ascontiguousarray(dout[:, start:start + width]).reshape(shape))
            start += width
        return grads
