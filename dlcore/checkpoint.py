"""Checkpoints: a model's weights, an optimizer's state and fit's progress in one .npz file.

Keys (plain arrays; text and nested values are JSON in 0-d unicode arrays, never pickle):
  meta/format                  0-d int64, FORMAT_VERSION
  param/<layer>.<name>         parameters, e.g. param/conv1.weight (32, 1, 5, 5) float32
  buffer/<layer>.<name>        buffers, e.g. buffer/bn1.running_mean (C,)
  state/<layer>.<name>         integer layer state, e.g. state/dropout.calls
  optim/type, optim/steps, optim/lr, optim/initial_lr   (optim/steps: step() calls)
  optim/step/<param>           0-d int64, the updates each parameter has had (Adam's bias correction)
  optim/<slot>/<param>         per-parameter state, e.g. optim/exp_avg/conv1.weight
  train/<key>                  fit's progress (TrainingRun.state_dict: iteration, sampler, rng, history, ...)
  extra/<key>                  the caller's metadata
  model/architecture           JSON: the layers and graph of a whole-model file (dlcore.model_file)

A save writes a temporary file beside the target, fsyncs it and renames it into place, so
a process killed mid-save leaves the previous checkpoint loadable. A load checks every
name, shape and dtype against the model (and optimizer) before it changes anything, and
reports every mismatch in one CheckpointMismatchError. Checkpoints written before the
per-parameter counts existed (no optim/step/ keys) still load: every parameter then gets
optim/steps, the count those versions used for all of them.

    save(path, model, optimizer)   load(path, model, optimizer) -> Checkpoint
    read(path) -> Checkpoint       restore(checkpoint, model, optimizer)   (inspect, then apply)
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlcore.atomic_file import atomic_write
from dlcore.backend import to_backend, to_numpy
from dlcore.safe_npz import read_npz

FORMAT_VERSION = 1
_INT64 = np.iinfo(np.int64)
_OPTIM_SCALARS = ("optim/type", "optim/steps", "optim/lr", "optim/initial_lr")
_PARAMETER_STEPS = "optim/step/"
ARCHITECTURE_KEY = "model/architecture"


class CheckpointError(ValueError):
    """A file that is not a dlcore checkpoint this version reads (or, as the subclass, one
    that does not fit)."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint does not fit the model or optimizer; `problems` lists every mismatch."""

    def __init__(self, path, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{path} does not match ({len(problems)} problem"
                         f"{'s' if len(problems) > 1 else ''}):\n{lines}")


@dataclass
class Checkpoint:
    """A checkpoint read from disk: every stored array by key (NumPy), with fit's progress
    and the caller's metadata decoded."""

    path: Path
    arrays: dict[str, np.ndarray]

    @property
    def training_state(self) -> dict | None:
        """What TrainingRun.state_dict() saved, or None for a checkpoint saved outside fit."""
        return _decode_section(self.arrays, "train/") or None

    @property
    def extra(self) -> dict:
        return _decode_section(self.arrays, "extra/")


def save(path, model, optimizer=None, training_state: dict | None = None, extra: dict | None = None,
         architecture: dict | None = None) -> Path:
    """Write model (parameters, buffers, layer state), optionally optimizer state, fit's
    progress, JSON-able `extra` metadata and the model's `architecture` (dlcore.model_file)
    to `path` (.npz), atomically; returns the path."""
    arrays = {"meta/format": np.asarray(FORMAT_VERSION, dtype=np.int64)}
    arrays |= {key: to_numpy(value) for key, value in _model_arrays(model).items()}
    arrays |= {key: np.asarray(value) for key, value in _layer_states(model).items()}
    if optimizer is not None:
        arrays |= _optimizer_scalars(optimizer)
        arrays |= {key: np.asarray(steps, dtype=np.int64) for key, steps in _parameter_steps(model, optimizer).items()}
        arrays |= {key: to_numpy(value) for key, value in _optimizer_arrays(model, optimizer).items()}
    arrays |= {f"train/{key}": _encode(value) for key, value in (training_state or {}).items()}
    arrays |= {f"extra/{key}": _encode(value) for key, value in (extra or {}).items()}
    if architecture is not None:
        arrays[ARCHITECTURE_KEY] = np.asarray(json.dumps(architecture))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as file:
        np.savez(file, **arrays)
    return path


def load(path, model, optimizer=None) -> Checkpoint:
    """Restore model (and optimizer, if given) from the checkpoint at `path`: read + restore."""
    return restore(read(path), model, optimizer)


def read(path) -> Checkpoint:
    """Read a checkpoint without applying it. Raises FileNotFoundError, or CheckpointError
    for a file that is not a checkpoint this version reads (never unpickles anything)."""
    path = Path(path)
    with open(path, "rb") as file:
        try:
            arrays = read_npz(file)
        except Exception as error:  # whatever a damaged file makes zipfile or numpy raise
            raise CheckpointError(f"{path}: not a readable .npz checkpoint ({error})") from error
    if "meta/format" not in arrays:
        raise CheckpointError(f"{path}: an .npz file without meta/format, not a dlcore checkpoint")
    version = int(arrays["meta/format"])
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {version}; this dlcore reads format {FORMAT_VERSION}")
    return Checkpoint(path, arrays)


def restore(saved: Checkpoint, model, optimizer=None) -> Checkpoint:
    """Copy a read checkpoint into model (and optimizer, if given), in place, on their backend.

    Sections not asked for are ignored (weights from a training checkpoint, no optimizer).
    First checks every name, shape and dtype; CheckpointMismatchError lists every missing
    or unexpected key and every shape and dtype difference, and nothing is changed.
    """
    stored = saved.arrays
    problems = _compare(_model_arrays(model), _section(stored, "param/", "buffer/"))
    problems += _compare_states(_layer_states(model), _section(stored, "state/"))
    if optimizer is not None:
        problems += _optimizer_problems(model, optimizer, stored)
    if problems:
        raise CheckpointMismatchError(saved.path, problems)
    for key, target in _model_arrays(model).items():
        target[...] = to_backend(stored[key])
    for layer in model.layers:
        layer.load_extra_state({key: int(stored[f"state/{layer.name}.{key}"]) for key in layer.extra_state()})
    if optimizer is not None:
        _restore_optimizer(model, optimizer, stored)
    return saved


# ---- what a model and an optimizer hold
def _model_arrays(model) -> dict[str, object]:
    """{"param/conv1.weight": live array, "buffer/bn1.running_mean": live array, ...}"""
    arrays = {f"param/{name}": p.data for name, p in model.named_parameters().items()}
    arrays |= {f"buffer/{name}": b for name, b in model.named_buffers().items()}
    return arrays


def _layer_states(model) -> dict[str, int]:
    return {f"state/{layer.name}.{key}": value for layer in model.layers
            for key, value in layer.extra_state().items()}


def _parameter_names(model, optimizer) -> list[str]:
    """The model's name of each of the optimizer's parameters, in the optimizer's order."""
    names = {id(p): name for name, p in model.named_parameters().items()}
    missing = [p for p in optimizer.params if id(p) not in names]
    if missing:
        raise ValueError(f"the optimizer holds {len(missing)} parameter(s) that are not the model's "
                         f"(first: {missing[0]!r}); save and load it with the model it trains")
    return [names[id(p)] for p in optimizer.params]


def _optimizer_arrays(model, optimizer) -> dict[str, object]:
    """{"optim/exp_avg/conv1.weight": live array, ...}, skipping parameters without state."""
    names = _parameter_names(model, optimizer)
    return {f"optim/{slot}/{name}": array for slot, arrays in optimizer.state_slots().items()
            for name, array in zip(names, arrays) if array is not None}


def _parameter_steps(model, optimizer) -> dict[str, int]:
    """{"optim/step/conv1.weight": updates that parameter has had, ...}, one per optimizer parameter."""
    names = _parameter_names(model, optimizer)
    return {f"{_PARAMETER_STEPS}{name}": steps for name, steps in zip(names, optimizer.parameter_steps)}


def _optimizer_scalars(optimizer) -> dict[str, np.ndarray]:
    return {"optim/type": np.asarray(type(optimizer).__name__),
            "optim/steps": np.asarray(optimizer.steps, dtype=np.int64),
            "optim/lr": np.asarray(optimizer.lr, dtype=np.float64),
            "optim/initial_lr": np.asarray(optimizer.initial_lr, dtype=np.float64)}


def _restore_optimizer(model, optimizer, stored):
    for key, target in _optimizer_arrays(model, optimizer).items():
        target[...] = to_backend(stored[key])
    optimizer.steps = int(stored["optim/steps"])
    if _section(stored, _PARAMETER_STEPS):
        optimizer.parameter_steps = [int(stored[key]) for key in _parameter_steps(model, optimizer)]
    else:  # written before per-parameter counts: every parameter had the optimizer's count
        optimizer.parameter_steps = [optimizer.steps] * len(optimizer.params)
    optimizer.lr = float(stored["optim/lr"])
    optimizer.initial_lr = float(stored["optim/initial_lr"])


# ---- checks
def _section(stored: dict, *prefixes: str) -> dict:
    return {key: value for key, value in stored.items() if key.startswith(prefixes)}


def _describe(array) -> str:
    return f"{tuple(array.shape)} {np.dtype(array.dtype)}"


def _compare(expected: dict, found: dict) -> list[str]:
    """One line per missing key, unexpected key, shape difference and dtype difference."""
    problems = []
    for key, want in expected.items():
        if key not in found:
            problems.append(f"{key}: missing from the checkpoint (the model's is {_describe(want)})")
            continue
        have = found[key]
        if tuple(want.shape) != tuple(have.shape):
            problems.append(f"{key}: shape {tuple(want.shape)} in the model, {tuple(have.shape)} in the checkpoint")
        if np.dtype(want.dtype) != have.dtype:
            problems.append(f"{key}: dtype {np.dtype(want.dtype)} in the model, {have.dtype} in the checkpoint")
    problems += [f"{key}: in the checkpoint ({_describe(found[key])}) but not in the model"
                 for key in found if key not in expected]
    return problems


def _compare_states(expected: dict, found: dict) -> list[str]:
    problems = [f"{key}: missing from the checkpoint" for key in expected if key not in found]
    problems += [f"{key}: in the checkpoint but not in the model" for key in found if key not in expected]
    problems += [f"{key}: expected an integer scalar, found {_describe(found[key])}" for key in expected
                 if key in found and (found[key].ndim != 0 or found[key].dtype.kind not in "iu")]
    return problems


def _optimizer_problems(model, optimizer, stored) -> list[str]:
    missing = [key for key in _OPTIM_SCALARS if key not in stored]
    if missing:
        return [f"optim: the checkpoint holds no optimizer state (no {', '.join(missing)})"]
    saved_type, this_type = str(stored["optim/type"]), type(optimizer).__name__
    if saved_type != this_type:
        return [f"optim/type: the optimizer is {this_type}, the checkpoint's is {saved_type}"]
    slots = {key: value for key, value in _section(stored, "optim/").items()
             if key not in _OPTIM_SCALARS and not key.startswith(_PARAMETER_STEPS)}
    problems = _compare(_optimizer_arrays(model, optimizer), slots)
    parameter_steps = _section(stored, _PARAMETER_STEPS)
    if parameter_steps:  # absent from checkpoints written before per-parameter counts
        problems += _compare_states(_parameter_steps(model, optimizer), parameter_steps)
    return problems


# ---- scalars and JSON values
def _encode(value) -> np.ndarray:
    """An int (int64 range) or a float as a 0-d array, an array as itself, anything else
    JSON-able as JSON text in a 0-d unicode array."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and _INT64.min <= value <= _INT64.max:
        return np.asarray(value, dtype=np.int64)
    if isinstance(value, (float, np.floating)):
        return np.asarray(value, dtype=np.float64)
    if isinstance(value, np.ndarray):
        return value
    return np.asarray(json.dumps(value, default=_json_default))


def _json_default(value):
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"checkpoint metadata must be JSON-able, got a {type(value).__name__}")


def _decode_section(stored: dict, prefix: str) -> dict:
    return {key[len(prefix):]: _decode(value) for key, value in _section(stored, prefix).items()}


def _decode(array: np.ndarray):
    if array.dtype.kind == "U" and array.ndim == 0:
        return json.loads(str(array))
    return array.item() if array.ndim == 0 else array
