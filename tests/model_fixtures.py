"""Helpers for tests that compare a model's output elsewhere (ONNX Runtime, PyTorch, a
reloaded copy): real MNIST test images, and batch norms with non-trivial statistics."""
import numpy as np

from dlcore.data import load_mnist
from dlcore.layers import BatchNorm1D, BatchNorm2D


def mnist_test_images(mnist_path, count: int) -> np.ndarray:
    images, _ = load_mnist("test", data_dir=mnist_path)
    return images[:count]  # (count, 1, 28, 28) float32 in [0, 1]


def randomize_batch_norm(model, seed: int = 0) -> None:
    """Give every batch norm of `model` non-trivial gamma, beta and running statistics, so that
    what is compared depends on them (the defaults 1, 0, 0, 1 make batch norm the identity)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, (BatchNorm1D, BatchNorm2D)):
            size = layer.num_features
            layer.gamma.data[...] = rng.uniform(0.5, 1.5, size)
            layer.beta.data[...] = rng.normal(0, 0.2, size)
            layer.running_mean[...] = rng.normal(0, 0.2, size)
            layer.running_var[...] = rng.uniform(0.5, 2.0, size)
