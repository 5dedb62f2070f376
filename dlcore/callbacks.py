"""Callbacks for fit: hooks into the training loop that stop early, schedule the learning
rate, write checkpoints and show a progress bar.

    model.fit(x, y, optimizer=opt, iterations=3000, validation_data=(xv, yv), eval_every=100,
              callbacks=[EarlyStopping("val_loss", patience=3), CosineDecay(3000),
                         ModelCheckpoint("runs/ckpt.npz", every=500)])

fit binds each callback to its TrainingRun (`callback.run`: model, optimizer, iteration,
history, ...), calls on_train_begin, then for each iteration i (1-based):
    on_iteration_begin(i) -> forward, backward, optimizer step
    -> [evaluation, on_evaluation(i, record)] every eval_every iterations -> on_iteration_end(i, logs)
and on_train_end when it finishes, is stopped, or raises. A callback ends training after
the current iteration with `self.run.stop_training = True`.
"""
from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from dlcore.training_run import TrainingRun


class Callback:
    """Base class: override the hooks you need; `self.run` is the TrainingRun."""

    run: TrainingRun | None = None

    def bind(self, run: TrainingRun) -> None:
        self.run = run

    def on_train_begin(self) -> None:
        """Before the first iteration of this fit call (a resumed run starts after run.iteration)."""

    def on_iteration_begin(self, iteration: int) -> None:
        """Before iteration `iteration` (1-based) runs."""

    def on_evaluation(self, iteration: int, record: dict) -> None:
        """After fit recorded an evaluation: {'iteration', 'loss', 'accuracy', and with
        validation data 'val_loss', 'val_accuracy'}."""

    def on_iteration_end(self, iteration: int, logs: dict) -> None:
        """After iteration `iteration` and its evaluation, if any; logs = {'loss': batch loss}."""

    def on_train_end(self) -> None:
        """When fit ends: all iterations done, stopped by a callback, or an exception."""


class CallbackList:
    """The callbacks of one fit call, bound to its run and called in the order given."""

    def __init__(self, callbacks: Iterable[Callback], run: TrainingRun):
        self.callbacks = list(callbacks)
        for i, callback in enumerate(self.callbacks):
            if not isinstance(callback, Callback):
                raise TypeError(f"fit: callbacks[{i}] is a {type(callback).__name__}, not a dlcore Callback")
            callback.bind(run)

    def on_train_begin(self):
        for callback in self.callbacks:
            callback.on_train_begin()

    def on_iteration_begin(self, iteration: int):
        for callback in self.callbacks:
            callback.on_iteration_begin(iteration)

    def on_evaluation(self, iteration: int, record: dict):
        for callback in self.callbacks:
            callback.on_evaluation(iteration, record)

    def on_iteration_end(self, iteration: int, logs: dict):
        for callback in self.callbacks:
            callback.on_iteration_end(iteration, logs)

    def on_train_end(self):
        for callback in self.callbacks:
            callback.on_train_end()


# ---- early stopping
class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by more than `min_delta` for `patience`
    evaluations in a row (patience=0: at the first evaluation that does not improve).

    mode: "min", "max", or "auto" (max for a name containing "acc", else min).
    restore_best_weights: when it stops the run, copy back the parameters and buffers of
    the best evaluation seen by this fit call.
    A resumed run replays the history's earlier values first, so it stops where the
    uninterrupted run would have.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = False):
        _check_int(patience, "patience", "EarlyStopping", minimum=0)
        if not isinstance(min_delta, numbers.Real) or not min_delta >= 0:
            raise ValueError(f"EarlyStopping: min_delta must be a number >= 0, got {min_delta!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'auto', 'min' or 'max', got {mode!r}")
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"EarlyStopping: monitor must be a metric name, got {monitor!r}")
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode
        self.restore_best_weights = restore_best_weights
        self.best: float | None = None
        self.best_iteration: int | None = None
        self.wait = 0
        self.stopped_iteration: int | None = None
        self._best_weights: list | None = None

    def on_train_begin(self):
        self.best, self.best_iteration, self.wait = None, None, 0
        self.stopped_iteration, self._best_weights = None, None
        history = self.run.history.history
        for iteration, value in zip(history.get("iteration", []), history.get(self.monitor, [])):
            self._update(iteration, value)

    def on_evaluation(self, iteration: int, record: dict):
        if self.monitor not in record:
            raise KeyError(f"EarlyStopping: fit records no {self.monitor!r}; it records {sorted(record)} "
                           "(val_* needs validation_data)")
        if self._update(iteration, record[self.monitor]):
            if self.restore_best_weights:
                self._best_weights = [(array, array.copy()) for array in self._model_arrays()]
        elif self.wait >= self.patience:
            self.run.stop_training = True
            self.stopped_iteration = iteration

    def on_train_end(self):
        if self.stopped_iteration is not None and self._best_weights is not None:
            for target, best in self._best_weights:
                target[...] = best

    def _update(self, iteration: int, value: float) -> bool:
        """Count one evaluation; True if it is a new best."""
        if self.best is None or self._improves(value):
            self.best, self.best_iteration, self.wait = value, iteration, 0
            return True
        self.wait += 1
        return False

    def _improves(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def _model_arrays(self) -> list:
        model = self.run.model
        return [p.data for p in model.named_parameters().values()] + list(model.named_buffers().values())


# ---- learning-rate schedules
class LearningRateScheduler(Callback):
    """Before each iteration sets optimizer.lr = schedule(step, initial_lr), where step is
    the number of iterations done (0 before the first) and initial_lr the optimizer's
    `initial_lr` (the lr it was built with). The rate depends on the step alone, so a
    resumed run gets the same rates. Parameter groups with an lr of their own keep it.
    """

    def __init__(self, schedule: Callable[[int, float], float]):
        if not callable(schedule):
            raise TypeError(f"{type(self).__name__}: schedule must be a function (step, initial_lr) -> lr, "
                            f"got {type(schedule).__name__}")
        self.schedule = schedule

    def on_iteration_begin(self, iteration: int):
        optimizer = self.run.optimizer
        lr = float(self.schedule(iteration - 1, optimizer.initial_lr))
        if not (math.isfinite(lr) and lr >= 0):
            raise ValueError(f"{type(self).__name__}: the schedule gave lr {lr} at step {iteration - 1}")
        optimizer.lr = lr


class StepDecay(LearningRateScheduler):
    """lr = initial_lr * gamma ** (step // step_size): multiplied by gamma every step_size iterations."""

    def __init__(self, step_size: int, gamma: float = 0.1):
        self.step_size = _check_int(step_size, "step_size", "StepDecay", minimum=1)
        self.gamma = _check_factor(gamma, "StepDecay")
        super().__init__(self.rate)

    def rate(self, step: int, initial_lr: float) -> float:
        return initial_lr * self.gamma ** (step // self.step_size)


class ExponentialDecay(LearningRateScheduler):
    """lr = initial_lr * gamma ** (step / decay_steps): smoothly multiplied by gamma every
    decay_steps iterations (decay_steps=1: by gamma every iteration)."""

    def __init__(self, gamma: float, decay_steps: int = 1):
        self.gamma = _check_factor(gamma, "ExponentialDecay")
        self.decay_steps = _check_int(decay_steps, "decay_steps", "ExponentialDecay", minimum=1)
        super().__init__(self.rate)

    def rate(self, step: int, initial_lr: float) -> float:
        return initial_lr * self.gamma ** (step / self.decay_steps)


class CosineDecay(LearningRateScheduler):
    """lr = min_lr + (initial_lr - min_lr) * (1 + cos(pi * step / total_iterations)) / 2,
    then min_lr after total_iterations (half a cosine from initial_lr down to min_lr)."""

    def __init__(self, total_iterations: int, min_lr: float = 0.0):
        self.total_iterations = _check_int(total_iterations, "total_iterations", "CosineDecay", minimum=1)
        if not isinstance(min_lr, numbers.Real) or not min_lr >= 0:
            raise ValueError(f"CosineDecay: min_lr must be a number >= 0, got {min_lr!r}")
        self.min_lr = float(min_lr)
        super().__init__(self.rate)

    def on_train_begin(self):
        if self.min_lr > self.run.optimizer.initial_lr:
            raise ValueError(f"CosineDecay: min_lr {self.min_lr} is above the optimizer's lr "
                             f"{self.run.optimizer.initial_lr}")

    def rate(self, step: int, initial_lr: float) -> float:
        progress = min(step, self.total_iterations) / self.total_iterations
        return self.min_lr + (initial_lr - self.min_lr) * (1 + math.cos(math.pi * progress)) / 2


class LinearWarmup(LearningRateScheduler):
    """Linear warm-up, then another schedule (or the constant initial_lr):
        lr = initial_lr * (step + 1) / steps            for step < steps
        lr = then.rate(step - steps, initial_lr)        afterwards (initial_lr without `then`)
    The first iteration trains at initial_lr / steps, iteration `steps` at initial_lr; `then`
    starts from its own step 0 when the warm-up ends, so CosineDecay(total_iterations=N) spans
    the N iterations after it:
        LinearWarmup(500, then=CosineDecay(2500))    # 3000 iterations in all
    """

    def __init__(self, steps: int, then: LearningRateScheduler | None = None):
        self.steps = _check_int(steps, "steps", "LinearWarmup", minimum=1)
        if then is not None and not isinstance(then, LearningRateScheduler):
            raise TypeError(f"LinearWarmup: then must be a learning-rate schedule (StepDecay, ExponentialDecay, "
                            f"CosineDecay, LearningRateScheduler), got {type(then).__name__}")
        self.then = then
        super().__init__(self.rate)

    def bind(self, run: TrainingRun) -> None:
        super().bind(run)
        if self.then is not None:
            self.then.bind(run)

    def on_train_begin(self):
        if self.then is not None:
            self.then.on_train_begin()

    def rate(self, step: int, initial_lr: float) -> float:
        if step < self.steps:
            return initial_lr * (step + 1) / self.steps
        if self.then is None:
            return initial_lr
        return self.then.schedule(step - self.steps, initial_lr)


class ReduceLROnPlateau(Callback):
    """Multiply optimizer.lr by `factor` (not below `min_lr`) when `monitor` has not improved by
    more than `min_delta` for `patience` evaluations in a row; the count restarts after each
    reduction (Keras' rule; patience=0 reduces at every evaluation that does not improve).

    mode: "min", "max", or "auto" (max for a name containing "acc", else min). Parameter groups
    with an lr of their own keep it. It changes optimizer.lr, which a LearningRateScheduler
    overwrites every iteration: use one of the two. A resumed run gets the reduced lr from the
    checkpoint and replays the history's earlier values, so it reduces where the uninterrupted
    run would have.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, min_lr: float = 0.0,
                 mode: str = "auto", min_delta: float = 0.0):
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"ReduceLROnPlateau: monitor must be a metric name, got {monitor!r}")
        if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor!r}")
        self.patience = _check_int(patience, "patience", "ReduceLROnPlateau", minimum=0)
        for name, value in (("min_lr", min_lr), ("min_delta", min_delta)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
                raise ValueError(f"ReduceLROnPlateau: {name} must be a number >= 0, got {value!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor = monitor
        self.factor = float(factor)
        self.min_lr = float(min_lr)
        self.min_delta = float(min_delta)
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode
        self.best: float | None = None
        self.wait = 0
        self.reductions: list[int] = []  # iterations at which this fit call reduced the lr

    def on_train_begin(self):
        self.best, self.wait, self.reductions = None, 0, []
        history = self.run.history.history
        for value in history.get(self.monitor, []):
            self._plateaued(value)  # the lr itself comes back from the checkpoint

    def on_evaluation(self, iteration: int, record: dict):
        if self.monitor not in record:
            raise KeyError(f"ReduceLROnPlateau: fit records no {self.monitor!r}; it records {sorted(record)} "
                           "(val_* needs validation_data)")
        if self._plateaued(record[self.monitor]):
            optimizer = self.run.optimizer
            lr = max(optimizer.lr * self.factor, self.min_lr)
            if lr < optimizer.lr:
                optimizer.lr = lr
                self.reductions.append(iteration)

    def _plateaued(self, value: float) -> bool:
        """Count one evaluation; True when it ends a plateau of `patience` (the count restarts)."""
        if self.best is None or self._improves(value):
            self.best, self.wait = value, 0
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.wait = 0
            return True
        return False

    def _improves(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


# ---- checkpoints
class ModelCheckpoint(Callback):
    """Every `every` iterations saves the model, the optimizer and the run's progress to
    `path` (atomically, see dlcore.checkpoint); fit(..., resume_from=path) continues from it.

    path may name the iteration, "runs/ckpt-{iteration:06d}.npz", for one file per
    checkpoint; otherwise each save replaces the previous one. `saved` lists the paths written.
    """

    def __init__(self, path, every: int):
        self.every = _check_int(every, "every", "ModelCheckpoint", minimum=1)
        self.path = str(path)
        try:
            self.path_for(0)
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(f"ModelCheckpoint: path {self.path!r} may use only the field "
                             f"{{iteration}} ({type(error).__name__}: {error})") from None
        self.saved: list[Path] = []

    def path_for(self, iteration: int) -> Path:
        return Path(self.path.format(iteration=iteration))

    def on_iteration_end(self, iteration: int, logs: dict):
        if iteration % self.every == 0:
            self.saved.append(self.run.save(self.path_for(iteration)))


# ---- progress
class ProgressBar(Callback):
    """A tqdm bar over the run's iterations, with the mean loss and the images per second
    of the last `refresh_every` iterations. The rate counts the time of the training steps
    (batch loading, forward, backward, update) only: the evaluations and their callbacks
    are left out. fit adds one when `progress` is on (by default when stderr is a terminal)."""

    def __init__(self, refresh_every: int = 20):
        self.refresh_every = _check_int(refresh_every, "refresh_every", "ProgressBar", minimum=1)
        self.bar = None

    def on_train_begin(self):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.run.total, initial=self.run.iteration, unit="it", dynamic_ncols=True)
        self._start_window()

    def on_iteration_begin(self, iteration: int):
        self._iteration_start = time.perf_counter()

    def on_iteration_end(self, iteration: int, logs: dict):
        self.bar.update(1)
        self._loss += logs["loss"]
        self._steps += 1
        self._seconds += time.perf_counter() - self._iteration_start - logs.get("evaluation_seconds", 0.0)
        if self._steps == self.refresh_every or iteration == self.run.total:
            images = self._steps * self.run.sampler.batch_size
            rate = images / max(self._seconds, 1e-9)
            self.bar.set_postfix(loss=f"{self._loss / self._steps:.4f}", img_s=f"{rate:.0f}")
            self._start_window()

    def on_train_end(self):
        if self.bar is not None:
            self.bar.close()

    def _start_window(self):
        self._loss, self._steps, self._seconds = 0.0, 0, 0.0


# ---- argument checks
def _check_int(value, what: str, owner: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{owner}: {what} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_factor(gamma, owner: str) -> float:
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not 0 < gamma <= 1:
        raise ValueError(f"{owner}: gamma must be in (0, 1], got {gamma!r}")
    return float(gamma)
