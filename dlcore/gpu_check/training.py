"""Step training: the notes' network trained on the checked backend (its test accuracy and
images/s), and its losses on the first batches beside the numpy backend's on the same batches.

Both runs start from the same weights (mnist_cnn(rng=seed)) and draw the same dropout masks
(counter-based, equal on every backend), so their losses differ only by float32 rounding.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlcore.backend import to_backend, use_backend
from dlcore.data import load_mnist
from dlcore.gpu_check.report import StepResult
from dlcore.losses import SoftmaxCrossEntropy
from dlcore.optim import Adam
from dlcore.zoo import mnist_cnn

LEARNING_RATE = 1e-4  # the notes' recipe


@dataclass(frozen=True)
class TrainingOptions:
    backend: str
    iterations: int
    batch_size: int
    compare_batches: int  # first batches whose losses are compared with the numpy backend's
    loss_rtol: float
    test_limit: int | None  # test images to evaluate (None: all 10,000)
    data_dir: Path | None
    seed: int


def batch_indices(samples: int, batch_size: int, iterations: int, seed: int) -> np.ndarray:
    """(iterations, batch_size) sample indices: shuffled epochs, one after another."""
    rng = np.random.default_rng(seed)
    epochs = -(-iterations * batch_size // samples)
    order = np.concatenate([rng.permutation(samples) for _ in range(epochs)])
    return order[: iterations * batch_size].reshape(iterations, batch_size)


def training_step(model, optimizer, loss_fn, images, labels) -> float:
    """One Adam step on a batch already on the backend; returns the batch's loss."""
    loss = float(loss_fn(model(images), labels))
    model.backward(loss_fn.backward())
    optimizer.step()
    return loss


def train(backend: str, images, labels, batches: np.ndarray, seed: int):
    """(model, losses per batch, seconds of every step after the first) of the notes' network
    trained on `backend` over `batches` (rows of indices into images / labels)."""
    with use_backend(backend):
        model = mnist_cnn(rng=seed)
        optimizer, loss_fn = Adam(model.parameters(), lr=LEARNING_RATE), SoftmaxCrossEntropy()
        model.train()
        losses, start = [], None
        for step, rows in enumerate(batches):
            losses.append(training_step(model, optimizer, loss_fn, to_backend(images[rows]), to_backend(labels[rows])))
            if step == 0:
                start = time.perf_counter()  # the first step compiles the kernels
        return model, losses, time.perf_counter() - start


def losses_disagree(losses, reference, rtol: float) -> list[str]:
    """'batch i: loss vs reference' for each batch whose losses differ by more than rtol."""
    return [f"batch {i}: {loss:.6g} vs numpy {expected:.6g}" for i, (loss, expected) in enumerate(zip(losses, reference))
            if not abs(loss - expected) <= rtol * abs(expected)]


def run_training(options: TrainingOptions) -> StepResult:
    start = time.perf_counter()
    images, labels = load_mnist("train", data_dir=options.data_dir)
    test_images, test_labels = load_mnist("test", data_dir=options.data_dir)
    test_images, test_labels = test_images[: options.test_limit], test_labels[: options.test_limit]
    batches = batch_indices(len(images), options.batch_size, options.iterations, options.seed)
    compared = min(options.compare_batches, options.iterations)
    model, losses, seconds = train(options.backend, images, labels, batches, options.seed)
    with use_backend(options.backend):
        test = model.evaluate(test_images, test_labels)
    _, reference, _ = train("numpy", images, labels, batches[:compared], options.seed)
    disagreements = losses_disagree(losses[:compared], reference, options.loss_rtol)
    largest = max(abs(a - b) / abs(b) for a, b in zip(losses[:compared], reference))
    images_per_second = (options.iterations - 1) * options.batch_size / seconds if options.iterations > 1 else None
    rate = "n/a (one iteration)" if images_per_second is None else f"{images_per_second:,.0f} images/s"
    summary = (f"{options.iterations} iterations of batch {options.batch_size} on {options.backend}: "
               f"test accuracy {test['accuracy']:.4f} on {len(test_labels)} images, {rate}; losses of the first "
               f"{compared} batches vs numpy: largest relative difference {largest:.2e} (rtol {options.loss_rtol:g})")
    details = {"iterations": options.iterations, "batch_size": options.batch_size, "learning_rate": LEARNING_RATE,
               "seed": options.seed, "test_images": len(test_labels), "test_accuracy": test["accuracy"],
               "test_loss": test["loss"], "images_per_second": images_per_second,
               "compared_batches": compared, "losses": losses[:compared], "numpy_losses": reference,
               "largest_relative_difference": largest, "loss_rtol": options.loss_rtol,
               "final_loss": losses[-1]}  # fmt: skip
    status = "failed" if disagreements or not np.all(np.isfinite(losses)) else "passed"
    text = "\n".join(disagreements[:20])
    return StepResult("training", status, summary, time.perf_counter() - start, details, text)
