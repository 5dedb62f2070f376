"""Pooling layers over NCHW input: MaxPool2D, AvgPool2D."""
from __future__ import annotations

from dlcore.layers.base import Layer, pair, window_output_size
from dlcore.ops import pool


class _Pool2D(Layer):
    forward_op = None
    backward_op = None

    def __init__(self, kernel_size=2, stride=None, padding="valid", name: str | None = None):
        super().__init__(name)
        owner = type(self).__name__
        self.kernel_size = pair(kernel_size, "kernel_size", owner)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", owner)
        if not (padding in ("same", "valid") or isinstance(padding, (int, tuple, list))):
            raise ValueError(f"{owner}: padding must be 'same', 'valid', an int or a pair, got {padding!r}")
        self.padding = padding

    def expected_shape(self):
        return "(N, C, H, W)"

    def input_matches(self, shape):
        return len(shape) == 4

    def output_shape(self, shape):
        c, h, w = super().output_shape(shape)
        return (c, *window_output_size(self, (h, w), self.kernel_size, self.stride, self.padding))

    def forward(self, x):  # (N, C, H, W) -> (N, C, H', W')
        return type(self).forward_op(x, self.kernel_size, self.stride, self.padding)

    def backward(self, dout, cache, needs_input_grad=True):
        return type(self).backward_op(dout, cache)


class MaxPool2D(_Pool2D):
    """Maximum over each window; 'same' padding never picks a padded cell (as TensorFlow)."""

    forward_op = staticmethod(pool.max_pool2d_forward)
    backward_op = staticmethod(pool.max_pool2d_backward)


class AvgPool2D(_Pool2D):
    """Mean over each window; 'same' padding averages the real cells only (as TensorFlow)."""

    forward_op = staticmethod(pool.avg_pool2d_forward)
    backward_op = staticmethod(pool.avg_pool2d_backward)
