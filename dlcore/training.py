"""The Keras-style workflow behind Model.fit / evaluate / predict.

fit trains for a number of iterations (or epochs) of random minibatches, and every
`eval_every` iterations records the training loss, the accuracy on a random subset of
the training data and, with validation_data, the validation accuracy and loss.
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np

from dlcore.backend import to_backend, to_numpy
from dlcore.data.batching import BatchSampler
from dlcore.losses import SoftmaxCrossEntropy
from dlcore.seeding import as_generator


class History:
    """What fit recorded: `history.history` maps a metric name to one value per evaluation."""

    def __init__(self):
        self.history: dict[str, list] = {}

    def record(self, **values):
        for key, value in values.items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key):
        return self.history[key]

    def __repr__(self):
        last = {k: v[-1] for k, v in self.history.items() if v}
        return f"History({last})"


def _as_inputs(x) -> tuple:
    """A model takes one array or a tuple of arrays (multi-input models)."""
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _check_lengths(inputs, y=None):
    sizes = [len(a) for a in inputs] + ([len(y)] if y is not None else [])
    if len(set(sizes)) != 1:
        raise ValueError(f"inputs and labels must have the same number of samples, got {sizes}")
    if sizes[0] == 0:
        raise ValueError("got an empty data set")
    return sizes[0]


def _batch(inputs, index):
    return tuple(to_backend(a[index]) for a in inputs)


def predict(model, x, batch_size: int = 1000):
    """Model outputs for every sample, in eval mode, as a NumPy array."""
    inputs = _as_inputs(x)
    n = _check_lengths(inputs)
    was_training = model.training
    model.eval()
    try:
        outputs = [to_numpy(model(*_batch(inputs, slice(i, i + batch_size)))) for i in range(0, n, batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(outputs)


def evaluate(model, x, y, batch_size: int = 1000, loss=None) -> dict[str, float]:
    """{'loss': mean loss, 'accuracy': fraction of argmax(outputs) == labels}, in eval mode."""
    inputs = _as_inputs(x)
    n = _check_lengths(inputs, y)
    loss_fn = loss or SoftmaxCrossEntropy()
    y = np.asarray(y)
    labels = _class_labels(y)
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    try:
        for i in range(0, n, batch_size):
            part = slice(i, i + batch_size)
            logits = model(*_batch(inputs, part))
            total_loss += float(loss_fn(logits, to_backend(y[part]))) * len(labels[part])
            correct += int((to_numpy(logits).argmax(axis=1) == labels[part]).sum())
    finally:
        model.train(was_training)
    return {"loss": total_loss / n, "accuracy": correct / n}


def fit(model, x, y, *, optimizer, loss=None, batch_size: int = 32, epochs: int | None = None,
        iterations: int | None = None, validation_data=None, eval_every: int | None = None,
        eval_samples: int | None = None, rng=None, progress: bool | None = None,
        verbose: bool = True) -> History:
    """Train `model` on (x, y) and return the History.

    Give exactly one of `epochs` and `iterations`. `eval_every` defaults to one epoch.
    Each evaluation records the mean training loss since the last one and the accuracy:
    with `eval_samples` (the notes use 2,048), in eval mode on random subsets of that many
    training and validation samples; without it, the running accuracy of the training
    batches (as Keras reports it) and the whole validation set. `progress` shows a tqdm bar (default: when stderr is a terminal);
    `verbose` prints one line per evaluation.
    """
    inputs = _as_inputs(x)
    n = _check_lengths(inputs, y)
    if (epochs is None) == (iterations is None):
        raise ValueError("fit: give exactly one of epochs and iterations")
    if batch_size < 1:
        raise ValueError(f"fit: batch_size must be >= 1, got {batch_size}")
    steps_per_epoch = math.ceil(n / batch_size)
    total = iterations if iterations is not None else epochs * steps_per_epoch
    if total < 1:
        raise ValueError(f"fit: nothing to train ({total} iterations)")
    eval_every = eval_every or min(steps_per_epoch, total)
    rng = as_generator(rng)
    loss_fn = loss or SoftmaxCrossEntropy()
    y = np.asarray(y)
    sampler = BatchSampler(n, batch_size, rng)
    history = History()
    show = sys.stderr.isatty() if progress is None else progress

    from tqdm.auto import tqdm

    bar = tqdm(total=total, disable=not show, unit="it", dynamic_ncols=True)
    model.train()
    window_loss, window_correct, window_steps, window_start = 0.0, 0, 0, time.perf_counter()
    try:
        for iteration in range(1, total + 1):
            index = sampler.next_indices()
            logits = model(*_batch(inputs, index))
            labels = y[index]
            value = float(loss_fn(logits, to_backend(labels)))
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"loss is {value} at iteration {iteration}: training diverged "
                    "(lower the learning rate or check the data)")
            model.backward(loss_fn.backward())
            optimizer.step()
            window_loss += value
            window_steps += 1
            if eval_samples is None:
                window_correct += int((to_numpy(logits).argmax(axis=1) == _class_labels(labels)).sum())
            bar.update(1)
            if iteration % 20 == 0 or iteration == total:
                elapsed = time.perf_counter() - window_start
                bar.set_postfix(loss=f"{window_loss / window_steps:.4f}",
                                img_s=f"{window_steps * batch_size / max(elapsed, 1e-9):.0f}")
            if iteration % eval_every == 0 or iteration == total:
                record = {"iteration": iteration, "loss": window_loss / window_steps}
                if eval_samples is None:
                    record["accuracy"] = window_correct / (window_steps * batch_size)
                else:
                    subset = _subset(n, eval_samples, rng)
                    record["accuracy"] = evaluate(model, tuple(a[subset] for a in inputs), y[subset],
                                                  loss=loss_fn)["accuracy"]
                if validation_data is not None:
                    vx, vy = validation_data
                    vinputs = _as_inputs(vx)
                    vsubset = _subset(_check_lengths(vinputs, vy), eval_samples, rng)
                    scores = evaluate(model, tuple(a[vsubset] for a in vinputs), np.asarray(vy)[vsubset],
                                      loss=loss_fn)
                    record["val_loss"], record["val_accuracy"] = scores["loss"], scores["accuracy"]
                history.record(**record)
                if verbose:
                    bar.write(_format_record(record, total))
                window_loss, window_correct, window_steps, window_start = 0.0, 0, 0, time.perf_counter()
    finally:
        bar.close()
    return history


def _class_labels(y: np.ndarray) -> np.ndarray:
    """Integer labels from integer (N,) or one-hot / probability (N, K) labels."""
    return y if y.ndim == 1 else y.argmax(axis=1)


def _subset(n: int, size: int | None, rng: np.random.Generator):
    if size is None or size >= n:
        return slice(None)
    return np.sort(rng.choice(n, size=size, replace=False))


def _format_record(record: dict, total: int) -> str:
    parts = [f"iteration {record['iteration']}/{total}", f"loss {record['loss']:.4f}",
             f"accuracy {record['accuracy']:.4f}"]
    if "val_accuracy" in record:
        parts.append(f"val_accuracy {record['val_accuracy']:.4f}")
    return "  ".join(parts)
