"""Pooling layers over NCHW input: MaxPool2D, AvgPool2D."""
from __future__ import annotations

from dlcore.layers.base import Layer, padding_argument, pair, window_output_size
from dlcore.ops import pool


class _Pool2D(Layer):
    forward_op = None
    backward_op = None
    forward_options: dict = {}  # keyword arguments of forward_op beyond the window

    def __init__(self, kernel_size=2, stride=None, padding="valid", name: str | None = None):
        super().__init__(name)
        owner = type(self).__name__
        self.kernel_size = pair(kernel_size, "kernel_size", owner)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", owner)
        self.padding = padding_argument(padding, owner)

    def expected_shape(self):
        return "(N, C, H, W)"

    def input_matches(self, shape):
        return len(shape) == 4

    def output_shape(self, shape):
        c, h, w = super().output_shape(shape)
        return (c, *window_output_size(self, (h, w), self.kernel_size, self.stride, self.padding))

    def forward(self, x):  # (N, C, H, W) -> (N, C, H', W')
        return type(self).forward_op(x, self.kernel_size, self.stride, self.padding, **self.forward_options)

    def backward(self, dout, cache, needs_input_grad=True):
        return type(self).backward_op(dout, cache)


class MaxPool2D(_Pool2D):
    """Maximum over each window; 'same' padding never picks a padded cell (as TensorFlow)."""

    forward_op = staticmethod(pool.max_pool2d_forward)
    backward_op = staticmethod(pool.max_pool2d_backward)


class AvgPool2D(_Pool2D):
    """Mean over each window. Padding (an int, a pair or 'same') averages the real cells only
    (count_include_pad=False: TensorFlow's 'same', PyTorch's count_include_pad=False); with
    count_include_pad=True each window's sum is divided by kh * kw, the padding counting as
    zeros (PyTorch's default: set it when porting a PyTorch model)."""

    forward_op = staticmethod(pool.avg_pool2d_forward)
    backward_op = staticmethod(pool.avg_pool2d_backward)

    def __init__(self, kernel_size=2, stride=None, padding="valid", count_include_pad: bool = False,
                 name: str | None = None):
        super().__init__(kernel_size, stride, padding, name)
        if not isinstance(count_include_pad, bool):
            raise ValueError(f"AvgPool2D: count_include_pad must be True or False, got {count_include_pad!r}")
        self.count_include_pad = count_include_pad
        self.forward_options = {"count_include_pad": count_include_pad}
