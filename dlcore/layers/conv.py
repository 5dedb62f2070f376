"""Conv2D: cross-correlation over NCHW input with (out, in, kh, kw) weights."""
from __future__ import annotations

import numpy as np

from dlcore.layers.activation import check_activation
from dlcore.layers.base import Layer, padding_argument, pair, positive_int, window_output_size
from dlcore.ops import conv2d_backward, conv2d_forward


class Conv2D(Layer):
    """2-D convolution, optionally followed by a fused ReLU (Keras's `activation="relu"`).

    x (N, in_channels, H, W) -> (N, out_channels, H', W'); padding is an int, a pair,
    "same" (TensorFlow semantics) or "valid" (in any case: "SAME" too); dilation (an int or a
    pair) spaces the kernel's taps, so a k x k kernel spans (k - 1) * dilation + 1 cells ("same"
    pads for that span).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 activation: str | None = None, use_bias: bool = True,
                 weight_init="glorot_uniform", bias_init="zeros",
                 dtype=np.float32, rng=None, name: str | None = None, dilation=1):
        super().__init__(name)
        owner = type(self).__name__
        self.in_channels = positive_int(in_channels, "in_channels", owner)
        self.out_channels = positive_int(out_channels, "out_channels", owner)
        self.kernel_size = pair(kernel_size, "kernel_size", owner)
        self.stride = pair(stride, "stride", owner)
        self.dilation = pair(dilation, "dilation", owner)
        self.padding = padding_argument(padding, owner)
        self.activation = check_activation(activation, owner)
        kh, kw = self.kernel_size
        fans = (self.in_channels * kh * kw, self.out_channels * kh * kw)
        self.weight = self.add_parameter(
            "weight", (self.out_channels, self.in_channels, kh, kw), fans, weight_init, rng, dtype)
        self.bias = self.add_parameter("bias", (self.out_channels,), fans, bias_init, rng, dtype) if use_bias else None

    def expected_shape(self):
        return f"(N, {self.in_channels}, H, W)"

    def input_matches(self, shape):
        return len(shape) == 4 and shape[1] == self.in_channels

    def output_shape(self, shape):
        _, h, w = super().output_shape(shape)
        span = tuple((k - 1) * d + 1 for k, d in zip(self.kernel_size, self.dilation))  # of the dilated kernel
        return (self.out_channels, *window_output_size(self, (h, w), span, self.stride, self.padding))

    def forward(self, x):  # (N, C, H, W) -> (N, K, H', W')
        bias = None if self.bias is None else self.bias.data
        out, cache = conv2d_forward(x, self.weight.data, bias, stride=self.stride, padding=self.padding,
                                    activation=self.activation, need_backward=self.training, dilation=self.dilation)
        return out, cache if self.training else None

    def backward(self, dout, cache, needs_input_grad=True):
        """dout = dL/d(output), after the fused activation if there is one."""
        return self._backward(dout, cache, needs_input_grad, activation_applied=False)

    def backward_preactivation(self, dz, cache, needs_input_grad=True):
        """backward from dz = dL/d(convolution + bias), the gradient before the fused ReLU:
        for a fusion pass that has already applied the ReLU's gradient (dlcore.graph.fusion)."""
        return self._backward(dz, cache, needs_input_grad, activation_applied=True)

    def _backward(self, dout, cache, needs_input_grad, activation_applied):
        if cache is None:
            raise RuntimeError(f"{self.describe()}: backward needs a forward pass in training mode first")
        dx, dw, db = conv2d_backward(dout, cache, need_input_grad=needs_input_grad, dout_gated=activation_applied)
        self.add_grad(self.weight, dw)
        self.add_grad(self.bias, db)
        return dx
