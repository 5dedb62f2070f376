"""Pooling layers over NCHW input: MaxPool2D, AvgPool2D."""
from __future__ import annotations

from dlcore.layers.base import Layer, padding_argument, pair
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

    def forward(self, x):  # (N, C, H, W) -> (N, C, H', W')
        out, self._cache = type(self).forward_op(x, self.kernel_size, self.stride, self.padding, **self.forward_options)
        return out

    def backward(self, dout):
        return type(self).backward_op(dout, self._cache)


class MaxPool2D(_Pool2D):
    """Maximum over each window; 'same' padding never picks a padded cell (as TensorFlow)."""

    forward_op = staticmethod(pool.max_pool2d_forward)
    backward_op = staticmethod(pool.max_pool2d_backward)

    def forward(self, x):
        self._out = super().forward(x)
        return self._out

    def backward(self, dout, through_relu=False):
        """through_relu: the input came from a ReLU, whose gradient is applied here, on the
        pooled dout, so the ReLU's own backward can skip it. The gradient of a window reaches
        only a cell equal to the window's maximum, and that cell's ReLU output is > 0 exactly
        when the maximum is: the same gradient, masked on an array kh*kw times smaller."""
        return type(self).backward_op(dout, self._cache, gate=self._out if through_relu else None)


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
