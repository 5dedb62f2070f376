"""Functional ops: forward/backward pairs on NCHW arrays (NumPy reference implementations).

Forward ops return (out, cache); backward ops take (dout, cache) and return the
gradients in input order.
"""

from dlcore.ops.activation import (
    bias_relu_backward,
    bias_relu_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from dlcore.ops.conv import conv2d_backward, conv2d_forward
from dlcore.ops.dropout import dropout_backward, dropout_forward
from dlcore.ops.global_pool import (
    global_avg_pool2d_backward,
    global_avg_pool2d_forward,
    global_max_pool2d_backward,
    global_max_pool2d_forward,
)
from dlcore.ops.linear import dense_backward, dense_forward
from dlcore.ops.loss import softmax, softmax_cross_entropy
from dlcore.ops.merge import add_backward, add_forward, concatenate_backward, concatenate_forward
from dlcore.ops.norm import batch_norm_backward, batch_norm_forward
from dlcore.ops.padding import resolve_padding
from dlcore.ops.pool import avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward
from dlcore.ops.random import philox4x32, uniform

__all__ = [
    "add_backward",
    "add_forward",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "batch_norm_backward",
    "batch_norm_forward",
    "bias_relu_backward",
    "bias_relu_forward",
    "concatenate_backward",
    "concatenate_forward",
    "conv2d_backward",
    "conv2d_forward",
    "dense_backward",
    "dense_forward",
    "dropout_backward",
    "dropout_forward",
    "global_avg_pool2d_backward",
    "global_avg_pool2d_forward",
    "global_max_pool2d_backward",
    "global_max_pool2d_forward",
    "leaky_relu_backward",
    "leaky_relu_forward",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "philox4x32",
    "relu_backward",
    "relu_forward",
    "resolve_padding",
    "sigmoid_backward",
    "sigmoid_forward",
    "softmax",
    "softmax_cross_entropy",
    "tanh_backward",
    "tanh_forward",
    "uniform",
]
