"""Global pooling layers: GlobalAvgPool2D and GlobalMaxPool2D, (N, C, H, W) -> (N, C)."""
from __future__ import annotations

from dlcore.layers.base import Layer
from dlcore.ops import global_pool


class _GlobalPool2D(Layer):
    """One value per channel from a (forward, backward) op pair of dlcore.ops.global_pool."""

    forward_op = None
    backward_op = None

    def expected_shape(self):
        return "(N, C, H, W) with H, W >= 1"

    def input_matches(self, shape):
        return len(shape) == 4 and shape[2] >= 1 and shape[3] >= 1

    def output_shape(self, input_shape):  # (C, H, W) -> (C,)
        if not self.input_matches((1, *input_shape)):
            raise ValueError(
                f"{self.describe()}: expected input of shape {self.expected_shape()}, "
                f"got per-sample shape {tuple(input_shape)}"
            )
        return (input_shape[0],)

    def forward(self, x):  # (N, C, H, W) -> (N, C)
        out, cache = type(self).forward_op(x)
        return out, cache if self.training else None

    def backward(self, dout, cache, needs_input_grad=True):  # (N, C) -> (N, C, H, W)
        if cache is None:
            raise RuntimeError(f"{self.describe()}: backward needs the cache of a forward pass in training mode")
        return type(self).backward_op(dout, cache) if needs_input_grad else None


class GlobalAvgPool2D(_GlobalPool2D):
    """The mean of each channel's H x W plane."""

    forward_op = staticmethod(global_pool.global_avg_pool2d_forward)
    backward_op = staticmethod(global_pool.global_avg_pool2d_backward)


class GlobalMaxPool2D(_GlobalPool2D):
    """The maximum of each channel's H x W plane; its gradient goes to the first maximal cell in
    row-major order (a NaN counts as the maximum)."""

    forward_op = staticmethod(global_pool.global_max_pool2d_forward)
    backward_op = staticmethod(global_pool.global_max_pool2d_backward)
