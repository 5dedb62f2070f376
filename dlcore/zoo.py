"""Ready-made networks: the course notes' MNIST CNNs and the CIFAR-style ResNet."""
from __future__ import annotations

import numpy as np

from dlcore.init import Constant, TruncatedNormal
from dlcore.graph import Input
from dlcore.layers import (
    Add, BatchNorm1D, BatchNorm2D, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool2D, MaxPool2D, ReLU,
)
from dlcore.models import Model, Sequential
from dlcore.seeding import as_generator


def _pooled_twice(input_shape) -> tuple[int, int, int]:
    """(channels, H, W) and the flattened size after two 2x2 'same' max pools: ceil(H/4) x ceil(W/4)."""
    channels, height, width = _image_shape(input_shape)
    return channels, -(-height // 4), -(-width // 4)


def _image_shape(input_shape) -> tuple[int, int, int]:
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(d, (int, np.integer)) and d >= 1 for d in shape):
        raise ValueError(f"input_shape must be (channels, height, width) of positive ints, got {input_shape!r}")
    return tuple(int(d) for d in shape)


def mnist_cnn(rng=None, dtype=np.float32, num_classes: int = 10, input_shape=(1, 28, 28)) -> Sequential:
    """The notes' MNIST CNN (TensorFlow's "Deep MNIST for experts"):

    conv 5x5x32 'same' + ReLU -> max-pool 2x2 -> conv 5x5x64 'same' + ReLU -> max-pool 2x2
    -> dense 3136->1024 + ReLU -> dropout (keep 0.5) -> dense 1024->10 (logits).
    Weights truncated normal (stddev 0.1), biases 0.1. Input (N, 1, 28, 28), or
    `input_shape` (C, H, W), e.g. (3, 32, 32): fc1 then takes 64 * ceil(H/4) * ceil(W/4);
    `num_classes` sets the logits (N, num_classes), e.g. 5 for digits 0-4.
    """
    rng = as_generator(rng)
    channels, h4, w4 = _pooled_twice(input_shape)
    weights, biases = TruncatedNormal(0.1), Constant(0.1)
    common = dict(weight_init=weights, bias_init=biases, dtype=dtype, rng=rng)
    return Sequential([
        Conv2D(channels, 32, 5, padding="same", activation="relu", name="conv1", **common),  # (N, 32, 28, 28)
        MaxPool2D(2, 2, padding="same", name="pool1"),                                        # (N, 32, 14, 14)
        Conv2D(32, 64, 5, padding="same", activation="relu", name="conv2", **common),       # (N, 64, 14, 14)
        MaxPool2D(2, 2, padding="same", name="pool2"),                                        # (N, 64, 7, 7)
        Flatten(name="flatten"),                                                              # (N, 3136)
        Dense(64 * h4 * w4, 1024, activation="relu", name="fc1", **common),                 # (N, 1024)
        Dropout(0.5, rng=rng, name="dropout"),
        Dense(1024, num_classes, name="fc2", **common),                                       # (N, 10)
    ], input_shape=input_shape)


def mnist_cnn_batchnorm(rng=None, dtype=np.float32, num_classes: int = 10, input_shape=(1, 28, 28)) -> Sequential:
    """The notes' MNIST CNN with batch normalization after each hidden conv and dense layer:

    conv 5x5x32 -> BN -> ReLU -> max-pool 2x2 -> conv 5x5x64 -> BN -> ReLU -> max-pool 2x2
    -> dense 3136->1024 -> BN -> ReLU -> dropout (keep 0.5) -> dense 1024->10 (logits).
    The normalized layers have no bias (BN's beta takes its place); weights truncated normal
    (stddev 0.1), the last layer's bias 0.1, as in `mnist_cnn`. Input (N, 1, 28, 28) or
    `input_shape`, as in `mnist_cnn`.
    """
    rng = as_generator(rng)
    channels, h4, w4 = _pooled_twice(input_shape)
    weights = TruncatedNormal(0.1)
    plain = dict(weight_init=weights, use_bias=False, dtype=dtype, rng=rng)
    return Sequential([
        Conv2D(channels, 32, 5, padding="same", name="conv1", **plain),   # (N, 32, 28, 28)
        BatchNorm2D(32, dtype=dtype, name="bn1"),
        ReLU(name="relu1"),
        MaxPool2D(2, 2, padding="same", name="pool1"),                    # (N, 32, 14, 14)
        Conv2D(32, 64, 5, padding="same", name="conv2", **plain),         # (N, 64, 14, 14)
        BatchNorm2D(64, dtype=dtype, name="bn2"),
        ReLU(name="relu2"),
        MaxPool2D(2, 2, padding="same", name="pool2"),                    # (N, 64, 7, 7)
        Flatten(name="flatten"),                                          # (N, 3136)
        Dense(64 * h4 * w4, 1024, name="fc1", **plain),                   # (N, 1024)
        BatchNorm1D(1024, dtype=dtype, name="bn3"),
        ReLU(name="relu3"),
        Dropout(0.5, rng=rng, name="dropout"),
        Dense(1024, num_classes, weight_init=weights, bias_init=Constant(0.1), dtype=dtype, rng=rng,
              name="fc2"),                                                # (N, 10)
    ], input_shape=input_shape)


def resnet(depth: int = 20, input_shape=(3, 32, 32), num_classes: int = 10, widths=(16, 32, 64),
           rng=None, dtype=np.float32, name: str | None = None) -> Model:
    """The CIFAR ResNet of He et al. (2015), section 4.2, as a graph:

    conv 3x3x16 -> BN -> ReLU                                                 (N, 16, H, W)
    -> 3 stages of n basic blocks, widths 16/32/64, the first block of stages 2 and 3 with
       stride 2:  x -> conv 3x3 -> BN -> ReLU -> conv 3x3 -> BN -> (+ shortcut(x)) -> ReLU
       shortcut: x itself, or conv 1x1 stride 2 + BN where the shape changes (a projection)
    -> global average pooling (N, 64) -> dense 64 -> num_classes (logits).

    depth = 6n + 2 (20, 32, 44, 56, 110; 8 for a quick one-block-per-stage net). Convs have
    no bias (BN's beta takes its place) and He-normal weights; BN gamma 1, beta 0.
    Layers are named stem_conv, stage1_block1_conv1, ..., pool, fc.
    """
    if not isinstance(depth, (int, np.integer)) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"resnet: depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, ...), got {depth!r}")
    blocks = (depth - 2) // 6
    channels, height, width = _image_shape(input_shape)
    rng = as_generator(rng)
    conv = dict(use_bias=False, weight_init="he_normal", dtype=dtype, rng=rng)

    def conv_bn(x, c_in, c_out, kernel, stride, label, relu):
        x = Conv2D(c_in, c_out, kernel, stride=stride, padding="same", name=f"{label}conv", **conv)(x)
        x = BatchNorm2D(c_out, dtype=dtype, name=f"{label}bn")(x)
        return ReLU(name=f"{label}relu")(x) if relu else x

    def basic_block(x, c_in, c_out, stride, label):
        y = conv_bn(x, c_in, c_out, 3, stride, f"{label}_a_", relu=True)
        y = conv_bn(y, c_out, c_out, 3, 1, f"{label}_b_", relu=False)
        shortcut = x if (stride == 1 and c_in == c_out) else conv_bn(x, c_in, c_out, 1, stride, f"{label}_shortcut_",
                                                                     relu=False)
        return ReLU(name=f"{label}_relu")(Add(name=f"{label}_add")([y, shortcut]))

    image = Input((channels, height, width), name="image")
    x = conv_bn(image, channels, widths[0], 3, 1, "stem_", relu=True)
    c_in = widths[0]
    for stage, c_out in enumerate(widths, start=1):
        for block in range(1, blocks + 1):
            stride = 2 if stage > 1 and block == 1 else 1
            x = basic_block(x, c_in, c_out, stride, f"stage{stage}_block{block}")
            c_in = c_out
    x = GlobalAvgPool2D(name="pool")(x)
    logits = Dense(c_in, num_classes, weight_init="he_normal", dtype=dtype, rng=rng, name="fc")(x)
    return Model(image, logits, name=name or f"resnet{depth}")
