"""TrainingRun: the state of one fit call, which callbacks see and checkpoints save."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlcore import checkpoint
from dlcore.data.batching import BatchSampler
from dlcore.history import History


@dataclass
class TrainingRun:
    """Everything fit needs to continue a run exactly where it stopped.

    model, optimizer   what is trained
    sampler            hands out the minibatch indices (its state: seed, epoch, position)
    rng                fit's generator, which draws the evaluation subsets
    augment            fit's augmentation pipeline or None; its generator state is saved
                       when it has state_dict() / load_state_dict() (dlcore.data.augment.Compose)
    history            the evaluations so far
    total              iterations of the whole run; `iteration` of them are done
    window_*           sums since the last evaluation: loss, correct predictions, iterations
    stop_training      a callback sets it to end fit after the current iteration
    """

    model: object
    optimizer: object
    sampler: BatchSampler
    rng: np.random.Generator
    history: History
    total: int
    augment: object = None
    iteration: int = 0
    window_loss: float = 0.0
    window_correct: int | np.ndarray = 0  # one count per output of a model with several
    window_steps: int = 0
    stop_training: bool = False

    def add_to_window(self, loss: float, correct) -> None:
        self.window_loss += loss
        self.window_correct += correct
        self.window_steps += 1

    def reset_window(self) -> None:
        self.window_loss, self.window_correct, self.window_steps = 0.0, 0, 0

    def state_dict(self) -> dict:
        """Plain ints, floats, lists and dicts (the generator's state is a dict of ints)."""
        return {
            "iteration": self.iteration,
            "total": self.total,
            "sampler": self.sampler.state_dict(),
            "rng": self.rng.bit_generator.state,
            "history": self.history.history,
            "window_loss": self.window_loss,
            "window_correct": np.asarray(self.window_correct).tolist(),
            "window_steps": self.window_steps,
            "augment": self.augment.state_dict() if hasattr(self.augment, "state_dict") else None,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from a state_dict() of a run over the same data and batch size; this run
        may be longer than the saved one, not shorter."""
        self.check_state(state)
        self.sampler.load_state_dict(state["sampler"])
        self.rng.bit_generator.state = state["rng"]
        self.history.history = {key: list(values) for key, values in state["history"].items()}
        self.iteration = int(state["iteration"])
        self.window_loss = float(state["window_loss"])
        correct = state["window_correct"]
        self.window_correct = np.asarray(correct, dtype=np.int64) if isinstance(correct, list) else int(correct)
        self.window_steps = int(state["window_steps"])
        if state.get("augment") is not None:
            self.augment.load_state_dict(state["augment"])

    def check_state(self, state: dict) -> None:
        """Raise ValueError if this run cannot continue from `state`."""
        saved, ours = state["sampler"], self.sampler
        if (saved["n_samples"], saved["batch_size"]) != (ours.n_samples, ours.batch_size):
            raise ValueError(f"the checkpoint comes from training on {saved['n_samples']} samples in batches "
                             f"of {saved['batch_size']}; this fit has {ours.n_samples} in batches of {ours.batch_size}")
        if state["iteration"] > self.total:
            raise ValueError(f"the checkpoint is at iteration {state['iteration']}, beyond this run's "
                             f"{self.total} iterations")
        if (state.get("augment") is not None) != hasattr(self.augment, "load_state_dict"):
            raise ValueError("the checkpoint and this fit disagree on whether training is augmented "
                             "(pass the same augment= pipeline as the saved run)")
        if state["rng"]["bit_generator"] != self.rng.bit_generator.state["bit_generator"]:
            raise ValueError(f"the checkpoint's generator is a {state['rng']['bit_generator']}, "
                             f"fit's is a {self.rng.bit_generator.state['bit_generator']}")

    def save(self, path, extra: dict | None = None):
        """A checkpoint of the model, the optimizer and this run's progress; returns its path."""
        return checkpoint.save(path, self.model, self.optimizer, training_state=self.state_dict(), extra=extra)

    def resume(self, path) -> None:
        """Continue from a checkpoint written by `save` (ModelCheckpoint): checks that it fits
        the model, optimizer and this run, then loads all three; on error nothing changes."""
        saved = checkpoint.read(path)
        state = saved.training_state
        if state is None:
            raise ValueError(f"{path} holds weights but no training progress (saved outside fit); "
                             "load it with dlcore.checkpoint.load and call fit without resume_from")
        self.check_state(state)
        checkpoint.restore(saved, self.model, self.optimizer)
        self.load_state_dict(state)
