"""The Keras-style workflow behind Model.fit / evaluate / predict.

fit trains for a number of iterations (or epochs) of random minibatches, and every
`eval_every` iterations records the training loss, the accuracy on a random subset of
the training data and, with validation_data, the validation accuracy and loss.
"""
from __future__ import annotations

import copy
import math
import sys
import time

import numpy as np
from tqdm.auto import tqdm

from dlcore.backend import OUT_OF_MEMORY_ERRORS, get_backend, to_backend, to_numpy
from dlcore.callbacks import CallbackList, ProgressBar
from dlcore.data.batching import BatchSampler
from dlcore.grad_clipping import gradient_clipper
from dlcore.history import History
from dlcore.input_checks import NonFiniteCounter, non_finite_loss_error, warn_if_unscaled
from dlcore.losses import SoftmaxCrossEntropy
from dlcore.seeding import as_generator
from dlcore.training_run import TrainingRun


class TrainingOutOfMemoryError(MemoryError):
    """A training step ran out of (device) memory; the message has the batch size and what
    the allocator was asked for."""


def as_inputs(x) -> tuple:
    """A model takes one array or a tuple of arrays (several inputs)."""
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def check_lengths(inputs, labels=()):
    sizes = [len(a) for a in inputs] + [len(y) for y in labels]
    if len(set(sizes)) != 1:
        raise ValueError(f"inputs and labels must have the same number of samples, got {sizes}")
    if sizes[0] == 0:
        raise ValueError("got an empty data set")
    return sizes[0]


def batch(inputs, index):
    return tuple(to_backend(a[index]) for a in inputs)


def _training_batch(inputs, index, augment):
    """The inputs at `index`, the first one passed through `augment` (on NumPy) when given."""
    arrays = [a[index] for a in inputs]
    if augment is not None:
        arrays[0] = augment(arrays[0])
    return tuple(to_backend(a) for a in arrays)


def predict(model, x, batch_size: int = 1000, probabilities: bool = False):
    """Model outputs for every sample, in eval mode, as NumPy (a tuple for several outputs);
    `probabilities=True` gives the softmax of each output (class probabilities) instead of
    the logits."""
    inputs = as_inputs(x)
    n = check_lengths(inputs)
    was_training = model.training
    model.eval()
    try:
        parts = [_outputs(model(*batch(inputs, slice(i, i + batch_size)))) for i in range(0, n, batch_size)]
    finally:
        model.train(was_training)
    outputs = [np.concatenate([to_numpy(part[k]) for part in parts]) for k in range(len(parts[0]))]
    if probabilities:
        outputs = [_softmax(out) for out in outputs]
    return outputs[0] if len(outputs) == 1 else tuple(outputs)


def _outputs(result) -> tuple:
    return result if isinstance(result, tuple) else (result,)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))  # (N, K), max subtracted for range
    return shifted / shifted.sum(axis=1, keepdims=True)


def evaluate(model, x, y, batch_size: int = 1000, loss=None, loss_weights=None) -> dict[str, float]:
    """{'loss': mean loss, 'accuracy': fraction of argmax(outputs) == labels}, in eval mode.
    With several outputs, y holds one label array per output (a tuple, or a dict by output
    name), 'loss' is the weighted sum and '<output>_loss', '<output>_accuracy' are per output.
    Warns (NonFiniteDataWarning) when inputs hold NaN or Inf, which make both meaningless."""
    inputs = as_inputs(x)
    objective = Objective(model, loss, loss_weights)
    labels = objective.labels(y)
    n = check_lengths(inputs, labels)
    was_training = model.training
    model.eval()
    totals = np.zeros(len(labels))
    correct = np.zeros(len(labels), dtype=np.int64)
    non_finite = NonFiniteCounter()
    try:
        for i in range(0, n, batch_size):
            part = slice(i, i + batch_size)
            arrays = batch(inputs, part)
            non_finite.add(arrays)
            outputs = _outputs(model(*arrays))
            parts = [y_k[part] for y_k in labels]
            totals += np.array(objective.losses(outputs, parts)) * len(parts[0])
            correct += objective.correct(outputs, parts)
    finally:
        model.train(was_training)
    non_finite.warn(n)
    return objective.record(totals / n, correct / n)


class Objective:
    """The loss of a model's outputs: one loss function and weight per output.

    loss          None (softmax cross-entropy), a loss, or one per output (a list, or a dict
                  by output name)
    loss_weights  None (all 1), or one per output (a list, or a dict by output name)
    """

    def __init__(self, model, loss=None, loss_weights=None):
        self.names = list(getattr(model, "output_names", ["output"]))
        count = len(self.names)
        fns = self._per_output(loss, "loss", None)
        if count > 1 and loss is not None and not isinstance(loss, (list, tuple, dict)):
            fns = [copy.deepcopy(loss) for _ in fns]  # a loss keeps its gradient: one object per output
        self.loss_fns = [SoftmaxCrossEntropy() if fn is None else fn for fn in fns]
        self.weights = [1.0 if w is None else float(w) for w in self._per_output(loss_weights, "loss_weights", None)]

    def _per_output(self, value, what: str, default) -> list:
        names = self.names
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(names))
            if unknown:
                raise ValueError(f"{what}: no output named {', '.join(map(repr, unknown))}; the outputs are "
                                 f"{', '.join(names)}")
            return [value.get(name, default) for name in names]
        if isinstance(value, (list, tuple)):
            if len(value) != len(names):
                raise ValueError(f"{what}: {len(value)} given for {len(names)} outputs ({', '.join(names)})")
            return list(value)
        return [value] * len(names)

    def labels(self, y) -> list[np.ndarray]:
        """One label array per output."""
        if len(self.names) == 1:
            return [np.asarray(y)]
        if isinstance(y, dict):
            missing = [name for name in self.names if name not in y]
            if missing:
                raise ValueError(f"labels: none given for output(s) {', '.join(missing)}")
            return [np.asarray(y[name]) for name in self.names]
        if not isinstance(y, (list, tuple)) or len(y) != len(self.names):
            raise ValueError(f"the model has {len(self.names)} outputs ({', '.join(self.names)}): give one "
                             "label array per output, as a tuple or a dict by output name")
        return [np.asarray(y_k) for y_k in y]

    def losses(self, outputs, labels) -> list[float]:
        """Each output's loss; keeps each loss function's gradient for `gradients`."""
        return [float(fn(out, to_backend(y_k))) for fn, out, y_k in zip(self.loss_fns, outputs, labels)]

    def total(self, losses: list[float]) -> float:
        return sum(w * value for w, value in zip(self.weights, losses))

    def gradients(self) -> list:
        """dL/d(output) for each output of the last `losses` call, L the weighted sum."""
        return [fn.backward() if w == 1.0 else w * fn.backward() for fn, w in zip(self.loss_fns, self.weights)]

    def correct(self, outputs, labels) -> np.ndarray:
        """Per output, the number of samples whose argmax output is the label."""
        return np.array([int((to_numpy(out).argmax(axis=1) == _class_labels(y_k)).sum())
                         for out, y_k in zip(outputs, labels)])

    def accuracy_keys(self) -> list[str]:
        return ["accuracy"] if len(self.names) == 1 else [f"{name}_accuracy" for name in self.names]

    def record(self, losses, accuracies) -> dict[str, float]:
        """{'loss', 'accuracy'} for one output; {'loss', '<name>_loss', '<name>_accuracy', ...}
        for several."""
        if len(self.names) == 1:
            return {"loss": float(losses[0]), "accuracy": float(accuracies[0])}
        values = {"loss": self.total(losses)}
        for name, loss_value, accuracy in zip(self.names, losses, accuracies):
            values[f"{name}_loss"] = float(loss_value)
            values[f"{name}_accuracy"] = float(accuracy)
        return values


def fit(model, x, y, *, optimizer, loss=None, loss_weights=None, batch_size: int = 32,
        epochs: int | None = None, iterations: int | None = None, validation_data=None,
        eval_every: int | None = None, eval_samples: int | None = None, rng=None,
        progress: bool | None = None, verbose: bool = True, augment=None, callbacks=(),
        resume_from=None, clip_grad_norm: float | None = None, clip_grad_value: float | None = None) -> History:
    """Train `model` on (x, y) and return the History.

    Give exactly one of `epochs` and `iterations`. `eval_every` defaults to one epoch.
    Each evaluation records the mean training loss since the last one and the accuracy:
    with `eval_samples` (the notes use 2,048), in eval mode on random subsets of that many
    training and validation samples; without it, the running accuracy of the training
    batches (as Keras reports it) and the whole validation set. `progress` shows a tqdm bar (default: when stderr is a terminal);
    `verbose` prints one line per evaluation. `augment` (e.g. a dlcore.data.augment.Compose)
    maps the first input of every training batch, a NumPy array (B, ...), to an augmented
    array of the same shape; evaluation data is never augmented. An input may be any
    array-like with len() and NumPy indexing, such as the dlcore.data.ImageFiles of
    load_image_folder(..., stream=True), which reads each batch from disk.
    A model with several outputs takes one label array per output in y (a tuple, or a dict
    by output name), a loss per output (`loss`: one for all, a list or a dict; default
    softmax cross-entropy) and optional `loss_weights`; it minimizes the weighted sum and
    records each output's loss and accuracy ('<output>_loss', '<output>_accuracy').
    `callbacks` (dlcore.callbacks) are called around every iteration and evaluation and may
    stop training. `resume_from` is a checkpoint that ModelCheckpoint wrote during a fit
    with the same data and arguments: the model, optimizer, sampler, generator and history
    are restored and training continues after its iteration, exactly as the uninterrupted
    run would have on the NumPy backend; the History returned holds the whole run.
    `clip_grad_norm` / `clip_grad_value` clip the optimizer's gradients after every backward
    pass, before the step (dlcore.optim.clip_grad_norm / clip_grad_value; at most one of them).
    """
    inputs = as_inputs(x)
    objective = Objective(model, loss, loss_weights)
    labels = objective.labels(y)
    n = check_lengths(inputs, labels)
    if (epochs is None) == (iterations is None):
        raise ValueError("fit: give exactly one of epochs and iterations")
    if batch_size < 1:
        raise ValueError(f"fit: batch_size must be >= 1, got {batch_size}")
    if augment is not None and not callable(augment):
        raise TypeError(f"fit: augment must be callable (batch -> batch), got {type(augment).__name__}")
    clip = gradient_clipper("fit", clip_grad_norm, clip_grad_value)
    steps_per_epoch = math.ceil(n / batch_size)
    total = iterations if iterations is not None else epochs * steps_per_epoch
    if total < 1:
        raise ValueError(f"fit: nothing to train ({total} iterations)")
    eval_every = eval_every or min(steps_per_epoch, total)
    rng = as_generator(rng)
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
    started = time.perf_counter()
    try:
        hooks.on_train_begin()
        while run.iteration < total and not run.stop_training:
            iteration = run.iteration + 1
            hooks.on_iteration_begin(iteration)
            index = run.sampler.next_indices()
            batch_labels = [y_k[index] for y_k in labels]
            try:
                arrays = _training_batch(inputs, index, augment)
                if not scale_checked:  # a hint from the first batch of this fit
                    warn_if_unscaled(arrays)
                    scale_checked = True
                outputs = _outputs(model(*arrays))
                value = objective.total(objective.losses(outputs, batch_labels))
                if not math.isfinite(value):
                    raise non_finite_loss_error(value, iteration, arrays, batch_labels)
                model.backward(*objective.gradients())
                if clip is not None:  # the gradients the step will use: trainable parameters only
                    clip([p for p in optimizer.params if p.trainable])
                optimizer.step()
            except OUT_OF_MEMORY_ERRORS as error:
                raise TrainingOutOfMemoryError(
                    f"out of memory at iteration {iteration} with batch_size={batch_size} on the "
                    f"{get_backend().name!r} backend ({error}); try a smaller batch_size") from error
            run.iteration = iteration
            correct = objective.correct(outputs, batch_labels) if eval_samples is None else 0
            run.add_to_window(value, correct)
            evaluation_seconds = 0.0
            if iteration % eval_every == 0 or iteration == total:
                evaluation_started = time.perf_counter()
                record = {"iteration": iteration, "loss": run.window_loss / run.window_steps}
                if eval_samples is None:
                    accuracies = np.atleast_1d(run.window_correct) / (run.window_steps * batch_size)
                else:
                    subset = _subset(n, eval_samples, rng)
                    scores = evaluate(model, _rows(inputs, subset), _labels_of(labels, subset),
                                      loss=objective.loss_fns, loss_weights=objective.weights)
                    accuracies = [scores[key] for key in objective.accuracy_keys()]
                record |= dict(zip(objective.accuracy_keys(), map(float, accuracies)))
                if validation_data is not None:
                    vx, vy = validation_data
                    vinputs = as_inputs(vx)
                    vlabels = objective.labels(vy)
                    vsubset = _subset(check_lengths(vinputs, vlabels), eval_samples, rng)
                    scores = evaluate(model, _rows(vinputs, vsubset), _labels_of(vlabels, vsubset),
                                      loss=objective.loss_fns, loss_weights=objective.weights)
                    record |= {f"val_{key}": value for key, value in scores.items()}
                run.history.record(**record)
                run.reset_window()
                if verbose:
                    tqdm.write(_format_record(record, total, time.perf_counter() - started))
                hooks.on_evaluation(iteration, record)
                evaluation_seconds = time.perf_counter() - evaluation_started
            # evaluation_seconds: the evaluation and its callbacks, which a throughput leaves out
            hooks.on_iteration_end(iteration, {"loss": value, "evaluation_seconds": evaluation_seconds})
    finally:
        hooks.on_train_end()
    return run.history


def _rows(inputs: tuple, subset) -> tuple:
    """The inputs at `subset`; for slice(None) the inputs themselves, so that a streamed
    input (dlcore.data.ImageFiles) is read batch by batch, not all at once."""
    return inputs if isinstance(subset, slice) else tuple(a[subset] for a in inputs)


def _labels_of(labels: list[np.ndarray], subset):
    """The labels at `subset`, in the form evaluate takes (one array, or a tuple per output)."""
    parts = [y_k[subset] for y_k in labels]
    return parts[0] if len(parts) == 1 else tuple(parts)


def _class_labels(y: np.ndarray) -> np.ndarray:
    """Integer labels from integer (N,) or one-hot / probability (N, K) labels."""
    return y if y.ndim == 1 else y.argmax(axis=1)


def _subset(n: int, size: int | None, rng: np.random.Generator):
    if size is None or size >= n:
        return slice(None)
    return np.sort(rng.choice(n, size=size, replace=False))


def _format_record(record: dict, total: int, elapsed: float) -> str:
    """'iteration 100/2000  loss 0.4123  accuracy 0.8750  val_loss 0.3912  val_accuracy 0.8800
    elapsed 12.3s' (every accuracy of a model with several outputs)."""
    parts = [f"iteration {record['iteration']}/{total}", f"loss {record['loss']:.4f}"]
    parts += [f"{key} {value:.4f}" for key, value in record.items()
              if key.endswith("accuracy") or key == "val_loss"]
    return "  ".join([*parts, f"elapsed {elapsed:.1f}s"])
