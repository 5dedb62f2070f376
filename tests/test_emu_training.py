"""The notes' network trains on the emu backend with every op on its CUDA kernels, and its
loss curve matches the NumPy backend's from the same seed within float32 tolerance."""
import functools
import importlib
import pkgutil

import numpy as np

import dlcore
from dlcore import ops
from dlcore.backend import to_backend
from dlcore.losses import SoftmaxCrossEntropy
from dlcore.optim import Adam
from dlcore.zoo import mnist_cnn

ITERATIONS = 3
BATCH = 4


def sparse_images(rng, count):
    """MNIST-like input: (count, 1, 28, 28) float32 in [0, 1), four fifths of it zero."""
    images = rng.random((count, 1, 28, 28)) * (rng.random((count, 1, 28, 28)) < 0.2)
    return images.astype(np.float32)


def numpy_references() -> list[tuple[object, str]]:
    """(module, name) of every NumPy reference op (`*_cpu`) in the modules of dlcore.ops."""
    modules = [importlib.import_module(f"dlcore.ops.{info.name}") for info in pkgutil.iter_modules(ops.__path__)]
    return [(module, name) for module in modules for name in dir(module) if name.endswith("_cpu")]


def train(backend: str) -> list[float]:
    """Losses of ITERATIONS Adam steps of the notes' CNN on synthetic images, seed 0."""
    rng = np.random.default_rng(0)
    images, labels = sparse_images(rng, ITERATIONS * BATCH), rng.integers(0, 10, ITERATIONS * BATCH)
    with dlcore.use_backend(backend):
        model = mnist_cnn(rng=0)
        optimizer = Adam(model.parameters(), lr=1e-3)
        loss_fn = SoftmaxCrossEntropy()
        model.train()
        losses = []
        for step in range(ITERATIONS):
            batch = slice(step * BATCH, (step + 1) * BATCH)
            logits = model(to_backend(images[batch]))
            losses.append(float(loss_fn(logits, to_backend(labels[batch]))))
            model.backward(loss_fn.backward())
            optimizer.step()
    return losses


def test_emu_training_runs_on_kernels_and_matches_numpy(monkeypatch):
    expected = train("numpy")
    fallbacks = []
    for module, name in numpy_references():
        reference = getattr(module, name)

        @functools.wraps(reference)
        def recording(*args, _reference=reference, _name=name, **kwargs):
            fallbacks.append(_name)
            return _reference(*args, **kwargs)

        monkeypatch.setattr(module, name, recording)
    losses = train("emu")
    assert not fallbacks, f"ops ran their NumPy reference on the emu backend: {sorted(set(fallbacks))}"
    np.testing.assert_allclose(losses, expected, rtol=1e-4)
    assert all(np.isfinite(losses))
