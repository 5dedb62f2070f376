"""Batch normalization: BatchNorm2D over (N, H, W) per channel, BatchNorm1D over N per feature."""
from __future__ import annotations

import numpy as np

from dlcore.backend import xp
from dlcore.layers.base import Layer, positive_int
from dlcore.ops import batch_norm_backward, batch_norm_forward


class _BatchNorm(Layer):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta.

    Training uses the batch statistics and updates the running ones in place,
    running = (1 - momentum) * running + momentum * batch (PyTorch's convention);
    eval uses the running statistics.
    """

    rank = None

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5,
                 dtype=np.float32, name: str | None = None):
        super().__init__(name)
        owner = type(self).__name__
        self.num_features = positive_int(num_features, "num_features", owner)
        if not 0 <= momentum <= 1:
            raise ValueError(f"{owner}: momentum must be in [0, 1], got {momentum}")
        if not eps > 0:
            raise ValueError(f"{owner}: eps must be > 0, got {eps}")
        self.momentum = momentum
        self.eps = eps
        shape, fans = (self.num_features,), (self.num_features, self.num_features)
        self.gamma = self.add_parameter("gamma", shape, fans, "ones", None, dtype)
        self.beta = self.add_parameter("beta", shape, fans, "zeros", None, dtype)
        self.running_mean = self.add_buffer("running_mean", xp().zeros(shape, dtype=dtype))
        self.running_var = self.add_buffer("running_var", xp().ones(shape, dtype=dtype))

    def input_matches(self, shape):
        return len(shape) == self.rank and shape[1] == self.num_features

    def forward(self, x):
        return batch_norm_forward(
            x, self.gamma.data, self.beta.data, self.running_mean, self.running_var,
            training=self.training, momentum=self.momentum, eps=self.eps)

    def backward(self, dout, cache, needs_input_grad=True):
        dx, dgamma, dbeta = batch_norm_backward(dout, cache)
        self.add_grad(self.gamma, dgamma)
        self.add_grad(self.beta, dbeta)
        return dx


class BatchNorm2D(_BatchNorm):
    rank = 4

    def expected_shape(self):
        return f"(N, {self.num_features}, H, W)"


class BatchNorm1D(_BatchNorm):
    rank = 2

    def expected_shape(self):
        return f"(N, {self.num_features})"
