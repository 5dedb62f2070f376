"""Small random graphs of every exportable layer, exported and run in ONNX Runtime on crops of
real MNIST images (odd sizes, so 'same' padding is often asymmetric), compared with dlcore."""
import numpy as np
import pytest

pytest.importorskip("onnx", reason="onnx not installed (pip install -e '.[dev]')")

import dlcore  # noqa: E402
from dlcore.layers import (  # noqa: E402
    Add, AvgPool2D, BatchNorm1D, BatchNorm2D, Concatenate, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool2D,
    GlobalMaxPool2D, Identity, LeakyReLU, MaxPool2D, ReLU, Sigmoid, Tanh,
)
from dlcore.layers.merge import FlattenConcatenate  # noqa: E402
from dlcore.onnx import export  # noqa: E402
from dlcore.onnx.converters import CONVERTERS  # noqa: E402
from tests.model_fixtures import mnist_test_images, randomize_batch_norm  # noqa: E402
from tests.onnx_checks import compare_with_dlcore  # noqa: E402

GRAPHS = 24


def _padding(rng, kernel: int):
    pads = [int(p) for p in rng.integers(0, kernel, 2)]  # pooling needs padding < kernel
    choices = ["same", "SAME", "valid", pads[0], tuple(pads)]
    return choices[rng.integers(len(choices))]


def _conv(rng, x):
    kernel = int(rng.integers(1, 5))
    return Conv2D(x.shape[0], int(rng.integers(2, 7)), kernel, stride=int(rng.integers(1, 3)),
                  padding=_padding(rng, kernel), dilation=int(rng.integers(1, 3)),
                  activation=[None, "relu"][rng.integers(2)], use_bias=bool(rng.integers(2)), rng=rng)(x)


def _pool(rng, x):
    kernel = int(rng.integers(2, 4))
    options = dict(stride=int(rng.integers(1, kernel + 1)), padding=_padding(rng, kernel))
    if rng.integers(2):
        return MaxPool2D(kernel, **options)(x)
    return AvgPool2D(kernel, count_include_pad=bool(rng.integers(2)), **options)(x)


def _activation(rng, x):
    layers = [ReLU(), LeakyReLU(float(rng.uniform(0, 0.5))), Tanh(), Sigmoid(), Identity(), Dropout(0.4, rng=rng)]
    return layers[rng.integers(len(layers))](x)


def _residual(rng, x):
    channels = x.shape[0]
    branch = Conv2D(channels, channels, 3, padding="same", rng=rng)(x)
    terms = [x, branch] + ([Tanh()(branch)] if rng.integers(2) else [])
    return Add()(terms)


def _concatenate(rng, x):
    return Concatenate(axis=[1, -3][rng.integers(2)])([x, Conv2D(x.shape[0], int(rng.integers(1, 4)), 1, rng=rng)(x)])


BLOCKS = [_conv, _pool, lambda rng, x: BatchNorm2D(x.shape[0])(x), _activation, _residual, _concatenate]


def _head(rng, x, classes: int):
    if len(x.shape) == 3:  # (C, H, W) feature maps, not already flat
        x = [GlobalAvgPool2D(), GlobalMaxPool2D(), Flatten()][rng.integers(3)](x)
    if rng.integers(2):
        relu = [None, "relu"][rng.integers(2)]
        x = Dense(x.shape[0], 12, activation=relu, use_bias=bool(rng.integers(2)), rng=rng)(x)
        x = _activation(rng, BatchNorm1D(12)(x))
    return Dense(x.shape[0], classes, rng=rng)(x)


def random_graph(seed: int):
    """A random model and the (height, width) of each of its inputs."""
    rng = np.random.default_rng(seed)
    sizes = [tuple(int(s) for s in rng.integers(11, 29, 2)) for _ in range(1 + int(rng.integers(2)))]
    inputs = [dlcore.Input((1, *size), name=f"image{i}") for i, size in enumerate(sizes)]
    features = []
    for x in inputs:
        for _ in range(int(rng.integers(2, 7))):
            try:
                x = BLOCKS[rng.integers(len(BLOCKS))](rng, x)
            except ValueError:  # the window does not fit what is left of the image: skip the block
                continue
        features.append(x)
    x = features[0] if len(features) == 1 else FlattenConcatenate()(features)
    outputs = [_head(rng, x, 10)]
    if rng.integers(2):  # an auxiliary output from the first input's features
        outputs.append(_head(rng, features[0], 3))
    return dlcore.Model(inputs, outputs), sizes


@pytest.mark.parametrize("seed", range(GRAPHS))
def test_random_graph_matches_dlcore_in_onnxruntime(seed, mnist_path, tmp_path):
    model, sizes = random_graph(seed)
    randomize_batch_norm(model, seed)
    model.eval()
    images = mnist_test_images(mnist_path, 40)
    inputs = [images[i: i + 32, :, :h, 28 - w:] for i, (h, w) in enumerate(sizes)]
    compare_with_dlcore(model, export(model, tmp_path / "graph.onnx"), inputs)


def test_random_graphs_cover_every_exportable_layer():
    """The generator is worth running only if it reaches every layer type the exporter converts."""
    seen = {type(node.layer) for seed in range(GRAPHS) for node in random_graph(seed)[0].nodes}
    assert set(CONVERTERS) <= seen, sorted(t.__name__ for t in set(CONVERTERS) - seen)
