"""Ready-made networks from the course notes."""
from __future__ import annotations

import numpy as np

from dlcore.init import Constant, TruncatedNormal
from dlcore.layers import BatchNorm1D, BatchNorm2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU
from dlcore.models import Sequential
from dlcore.seeding import as_generator


def mnist_cnn(rng=None, dtype=np.float32, num_classes: int = 10) -> Sequential:
    """The notes' MNIST CNN (TensorFlow's "Deep MNIST for experts"):

    conv 5x5x32 'same' + ReLU -> max-pool 2x2 -> conv 5x5x64 'same' + ReLU -> max-pool 2x2
    -> dense 3136->1024 + ReLU -> dropout (keep 0.5) -> dense 1024->10 (logits).
    Weights truncated normal (stddev 0.1), biases 0.1. Input (N, 1, 28, 28);
    `num_classes` sets the logits (N, num_classes), e.g. 5 for digits 0-4.
    """
    rng = as_generator(rng)
    weights, biases = TruncatedNormal(0.1), Constant(0.1)
    common = dict(weight_init=weights, bias_init=biases, dtype=dtype, rng=rng)
    return Sequential([
        Conv2D(1, 32, 5, padding="same", activation="relu", name="conv1", **common),    # (N, 32, 28, 28)
        MaxPool2D(2, 2, padding="same", name="pool1"),                                    # (N, 32, 14, 14)
        Conv2D(32, 64, 5, padding="same", activation="relu", name="conv2", **common),   # (N, 64, 14, 14)
        MaxPool2D(2, 2, padding="same", name="pool2"),                                    # (N, 64, 7, 7)
        Flatten(name="flatten"),                                                          # (N, 3136)
        Dense(7 * 7 * 64, 1024, activation="relu", name="fc1", **common),               # (N, 1024)
        Dropout(0.5, rng=rng, name="dropout"),
        Dense(1024, num_classes, name="fc2", **common),                                   # (N, 10)
    ])


def mnist_cnn_batchnorm(rng=None, dtype=np.float32, num_classes: int = 10) -> Sequential:
    """The notes' MNIST CNN with batch normalization after each hidden conv and dense layer:

    conv 5x5x32 -> BN -> ReLU -> max-pool 2x2 -> conv 5x5x64 -> BN -> ReLU -> max-pool 2x2
    -> dense 3136->1024 -> BN -> ReLU -> dropout (keep 0.5) -> dense 1024->10 (logits).
    The normalized layers have no bias (BN's beta takes its place); weights truncated normal
    (stddev 0.1), the last layer's bias 0.1, as in `mnist_cnn`. Input (N, 1, 28, 28).
    """
    rng = as_generator(rng)
    weights = TruncatedNormal(0.1)
    plain = dict(weight_init=weights, use_bias=False, dtype=dtype, rng=rng)
    return Sequential([
        Conv2D(1, 32, 5, padding="same", name="conv1", **plain),          # (N, 32, 28, 28)
        BatchNorm2D(32, dtype=dtype, name="bn1"),
        ReLU(name="relu1"),
        MaxPool2D(2, 2, padding="same", name="pool1"),                    # (N, 32, 14, 14)
        Conv2D(32, 64, 5, padding="same", name="conv2", **plain),         # (N, 64, 14, 14)
        BatchNorm2D(64, dtype=dtype, name="bn2"),
        ReLU(name="relu2"),
        MaxPool2D(2, 2, padding="same", name="pool2"),                    # (N, 64, 7, 7)
        Flatten(name="flatten"),                                          # (N, 3136)
        Dense(7 * 7 * 64, 1024, name="fc1", **plain),                     # (N, 1024)
        BatchNorm1D(1024, dtype=dtype, name="bn3"),
        ReLU(name="relu3"),
        Dropout(0.5, rng=rng, name="dropout"),
        Dense(1024, num_classes, weight_init=weights, bias_init=Constant(0.1), dtype=dtype, rng=rng,
              name="fc2"),                                                # (N, 10)
    ])
