"""The Keras-style workflow behind Model.fit / evaluate / predict.

fit trains for a number of iterations (or epochs) of random minibatches, and every
`eval_every` iterations records the training loss, the accuracy on a random subset of
the training data and, with validation_data, the validation accuracy and loss.
"""
from __future__ import annotations

import math
import sys

import numpy as np
from tqdm.auto import tqdm

from dlcore.backend import OUT_OF_MEMORY_ERRORS, get_backend, to_backend, to_numpy
from dlcore.callbacks import CallbackList, ProgressBar
from dlcore.data.batching import BatchSampler
from dlcore.history import History
from dlcore.input_checks import NonFiniteCounter, non_finite_loss_error, warn_if_unscaled
from dlcore.losses import SoftmaxCrossEntropy
from dlcore.seeding import as_generator
from dlcore.training_run import TrainingRun


class TrainingOutOfMemoryError(MemoryError):
    """A training step ran out of (device) memory; the message has the batch size and what
    the allocator was asked for."""


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


def _training_batch(inputs, index, augment):
    """The inputs at `index`, the first one passed through `augment` (on NumPy) when given."""
    arrays = [a[index] for a in inputs]
    if augment is not None:
        arrays[0] = augment(arrays[0])
    return tuple(to_backend(a) for a in arrays)


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
    """{'loss': mean loss, 'accuracy': fraction of argmax(outputs) == labels}, in eval mode; warns
    (NonFiniteDataWarning) when inputs hold NaN or Inf, which make both meaningless."""
    inputs = _as_inputs(x)
    n = _check_lengths(inputs, y)
    loss_fn = loss or SoftmaxCrossEntropy()
    y = np.asarray(y)
    labels = _class_labels(y)
    was_training = model.training
    model.eval()
    total_loss, correct, non_finite = 0.0, 0, NonFiniteCounter()
    try:
        for i in range(0, n, batch_size):
            part = slice(i, i + batch_size)
            batch = _batch(inputs, part)
            non_finite.add(batch)
            logits = model(*batch)
            total_loss += float(loss_fn(logits, to_backend(y[part]))) * len(labels[part])
            correct += int((to_numpy(logits).argmax(axis=1) == labels[part]).sum())
    finally:
        model.train(was_training)
    non_finite.warn(n)
    return {"loss": total_loss / n, "accuracy": correct / n}


def fit(model, x, y, *, optimizer, loss=None, batch_size: int = 32, epochs: int | None = None,
        iterations: int | None = None, validation_data=None, eval_every: int | None = None,
        eval_samples: int | None = None, rng=None, progress: bool | None = None,
        verbose: bool = True, augment=None, callbacks=(), resume_from=None) -> History:
    """Train `model` on (x, y) and return the History.

    Give exactly one of `epochs` and `iterations`. `eval_every` defaults to one epoch.
    Each evaluation records the mean training loss since the last one and the accuracy:
    with `eval_samples` (the notes use 2,048), in eval mode on random subsets of that many
    training and validation samples; without it, the running accuracy of the training
    batches (as Keras reports it) and the whole validation set. `progress` shows a tqdm bar (default: when stderr is a terminal);
    `verbose` prints one line per evaluation. `augment` (e.g. a dlcore.data.augment.Compose)
    maps the first input of every training batch, a NumPy array (B, ...), to an augmented
    array of the same shape; evaluation data is never augmented.
    `callbacks` (dlcore.callbacks) are called around every iteration and evaluation and may
    stop training. `resume_from` is a checkpoint that ModelCheckpoint wrote during a fit
    with the same data and arguments: the model, optimizer, sampler, generator and history
    are restored and training continues after its iteration, exactly as the uninterrupted
    run would have on the NumPy backend; the History returned holds the whole run.
    """
    inputs = _as_inputs(x)
    n = _check_lengths(inputs, y)
    if (epochs is None) == (iterations is None):
        raise ValueError("fit: give exactly one of epochs and iterations")
    if batch_size < 1:
        raise ValueError(f"fit: batch_size must be >= 1, got {batch_size}")
    if augment is not None and not callable(augment):
        raise TypeError(f"fit: augment must be callable (batch -> batch), got {type(augment).__name__}")
    steps_per_epoch = math.ceil(n / batch_size)
    total = iterations if iterations is not None else epochs * steps_per_epoch
    if total < 1:
        raise ValueError(f"fit: nothing to train ({total} iterations)")
    eval_every = eval_every or min(steps_per_epoch, total)
    rng = as_generator(rng)
    loss_fn = loss or SoftmaxCrossEntropy()
    y = np.asarray(y)
    run = TrainingRun(model, optimizer, BatchSampler(n, batch_size, rng), rng, History(), total, augment)
    if resume_from is not None:
        run.resume(resume_from)
    callbacks = list(callbacks)
    show = sys.stderr.isatty() if progress is None else progress
    if show and not any(isinstance(c, ProgressBar) for c in callbacks):
        callbacks.insert(0, ProgressBar())
    hooks = CallbackList(callbacks, run)
    model.train()
    scale_checked = False
    try:
        hooks.on_train_begin()
        while run.iteration < total and not run.stop_training:
            iteration = run.iteration + 1
            hooks.on_iteration_begin(iteration)
            index = run.sampler.next_indices()
            labels = y[index]
            try:
                batch = _training_batch(inputs, index, augment)
                if not scale_checked:  # a hint from the first batch of this fit
                    warn_if_unscaled(batch)
                    scale_checked = True
                logits = model(*batch)
                value = float(loss_fn(logits, to_backend(labels)))
                if not math.isfinite(value):
                    raise non_finite_loss_error(value, iteration, batch, labels)
                model.backward(loss_fn.backward())
                optimizer.step()
            except OUT_OF_MEMORY_ERRORS as error:
                raise TrainingOutOfMemoryError(
                    f"out of memory at iteration {iteration} with batch_size={batch_size} on the "
                    f"{get_backend().name!r} backend ({error}); try a smaller batch_size") from error
            run.iteration = iteration
            correct = 0
            if eval_samples is None:
                correct = int((to_numpy(logits).argmax(axis=1) == _class_labels(labels)).sum())
            run.add_to_window(value, correct)
            if iteration % eval_every == 0 or iteration == total:
                record = {"iteration": iteration, "loss": run.window_loss / run.window_steps}
                if eval_samples is None:
                    record["accuracy"] = run.window_correct / (run.window_steps * batch_size)
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
                run.history.record(**record)
                run.reset_window()
                if verbose:
                    tqdm.write(_format_record(record, total))
                hooks.on_evaluation(iteration, record)
            hooks.on_iteration_end(iteration, {"loss": value})
    finally:
        hooks.on_train_end()
    return run.history


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
