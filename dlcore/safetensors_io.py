"""Weights in and out as safetensors files (the `safetensors` package's NumPy API), in dlcore's
names or in the names of the equivalent PyTorch network's state_dict.

    save_safetensors(model, "weights.safetensors")                        # dlcore's names
    save_safetensors(model, "torch.safetensors", layout="pytorch")        # torch's load_state_dict reads it
    load_safetensors(model, "torch.safetensors", layout="pytorch")        # weights trained in PyTorch

layout="dlcore": the keys of model.named_parameters() and model.named_buffers(), arrays as dlcore
holds them ("conv1.weight" (out, in, kh, kw), "fc1.weight" (in, out), "bn1.gamma",
"bn1.running_mean", ...).

layout="pytorch": the state_dict of the PyTorch network built of the equivalent modules, each
named as the dlcore layer (or as `modules` says: {"conv1": "features.0", ...}, for an
nn.Sequential's indices or nested modules). Per layer <m>:

    dlcore                      PyTorch state_dict
    Conv2D       weight, bias   nn.Conv2d       <m>.weight (out, in, kh, kw) as is, <m>.bias
    Dense        weight, bias   nn.Linear       <m>.weight (out, in): dlcore's (in, out) transposed, <m>.bias
    BatchNorm2D/1D gamma, beta, nn.BatchNorm2d/1d <m>.weight = gamma, <m>.bias = beta,
                 running_mean,                  <m>.running_mean, <m>.running_var,
                 running_var                    <m>.num_batches_tracked (int64, written as 0: dlcore
                                                does not count batches; ignored when read)

Layers without weights (pooling, activations, dropout, flatten, merges) have no entries, as
in PyTorch. pytorch_names(model) gives the map itself. A load checks every name, shape and
dtype first and raises WeightsMismatchError listing every difference, loading nothing; a file
that is not safetensors is a WeightsFileError. Saves are atomic (temporary file, fsync, rename).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:
    import safetensors
    import safetensors.numpy
except ImportError as error:
    raise ImportError(f"dlcore.safetensors_io needs the safetensors package ({error}): "
                      "pip install 'dlcore[safetensors]'") from error

from dlcore.atomic_file import atomic_write
from dlcore.backend import to_backend, to_numpy
from dlcore.layers import BatchNorm1D, BatchNorm2D, Conv2D, Dense

LAYOUTS = ("dlcore", "pytorch")
_BATCH_NORM_KEYS = {"gamma": "weight", "beta": "bias", "running_mean": "running_mean", "running_var": "running_var"}
# layer type -> {dlcore parameter or buffer key: PyTorch state_dict key within the module}
PYTORCH_KEYS = {
    Conv2D: {"weight": "weight", "bias": "bias"},
    Dense: {"weight": "weight", "bias": "bias"},
    BatchNorm2D: _BATCH_NORM_KEYS,
    BatchNorm1D: _BATCH_NORM_KEYS,
}
_TRANSPOSED = {(Dense, "weight")}  # nn.Linear's weight is (out, in), dlcore's (in, out)
_BATCH_COUNT = "num_batches_tracked"


class WeightsFileError(ValueError):
    """A file that is not a safetensors file NumPy can read (or, as the subclass, one that does not fit)."""


class WeightsMismatchError(WeightsFileError):
    """The file's names, shapes or dtypes do not fit the model; `problems` lists every difference."""

    def __init__(self, path, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{path} does not match the model ({len(problems)} problem"
                         f"{'s' if len(problems) > 1 else ''}); nothing was loaded:\n{lines}")


@dataclass
class _Entry:
    """One tensor of the file: its name there, the model's array and name, and whether the file
    holds that array transposed."""

    file_name: str
    model_name: str
    array: object
    transposed: bool

    def file_shape(self) -> tuple:
        shape = tuple(self.array.shape)
        return shape[::-1] if self.transposed else shape


def pytorch_names(model, modules: dict[str, str] | None = None) -> dict[str, str]:
    """{dlcore name: PyTorch state_dict name} for every parameter and buffer of `model`, e.g.
    {"fc1.weight": "fc1.weight", "bn1.gamma": "bn1.weight", ...} (see the module docstring)."""
    return {entry.model_name: entry.file_name for entry in _entries(model, "pytorch", modules)}


def save_safetensors(model, path, layout: str = "dlcore", modules: dict[str, str] | None = None) -> Path:
    """Write the model's parameters and buffers to `path` as safetensors, in `layout`'s names and
    shapes, atomically; returns the path."""
    entries = _entries(model, layout, modules)
    arrays = {entry.file_name: np.ascontiguousarray(to_numpy(entry.array).T if entry.transposed
                                                    else to_numpy(entry.array)) for entry in entries}
    if layout == "pytorch":
        arrays |= {name: np.zeros((), np.int64) for name in _batch_count_names(model, modules)}
    metadata = {"format": "pt" if layout == "pytorch" else "dlcore"}  # "pt": Hugging Face's tag for torch tensors
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as file:
        file.write(safetensors.numpy.save(arrays, metadata=metadata))
    return path


def load_safetensors(model, path, layout: str = "dlcore", modules: dict[str, str] | None = None) -> None:
    """Copy the weights in the safetensors file at `path` (in `layout`'s names and shapes) into
    `model`, in place, on its backend; every name, shape and dtype is checked first."""
    entries = _entries(model, layout, modules)
    path = Path(path)
    stored = _read(path)
    ignored = _batch_count_names(model, modules) if layout == "pytorch" else set()
    problems = _compare(entries, {name: array for name, array in stored.items() if name not in ignored})
    if problems:
        raise WeightsMismatchError(path, problems)
    for entry in entries:
        array = stored[entry.file_name]
        entry.array[...] = to_backend(array.T if entry.transposed else array)


def _read(path: Path) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    try:
        return safetensors.numpy.load(data)
    except safetensors.SafetensorError as error:
        raise WeightsFileError(f"{path}: not a safetensors file ({error})") from error
    except KeyError as error:  # safetensors.numpy has no NumPy dtype for it (BF16, F8...)
        raise WeightsFileError(f"{path}: holds tensors of dtype {error}, which NumPy cannot represent; "
                               "convert them to float32 first (in PyTorch: tensor.float())") from error


def _entries(model, layout: str, modules) -> list[_Entry]:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    module_names = _module_names(model, modules)
    entries = []
    for layer in model.layers:
        arrays = {key: parameter.data for key, parameter in layer.parameters().items()} | layer.buffers()
        if layout == "pytorch" and arrays and type(layer) not in PYTORCH_KEYS:
            known = ", ".join(layer_type.__name__ for layer_type in PYTORCH_KEYS)
            raise ValueError(f"no PyTorch equivalent is known for {layer.describe()} (its weights: "
                             f"{', '.join(arrays)}); layout='pytorch' maps {known}; use layout='dlcore'")
        for key, array in arrays.items():
            model_name = f"{layer.name}.{key}"
            if layout == "dlcore":
                entries.append(_Entry(model_name, model_name, array, False))
            else:
                file_name = f"{module_names[layer.name]}.{PYTORCH_KEYS[type(layer)][key]}"
                entries.append(_Entry(file_name, model_name, array, (type(layer), key) in _TRANSPOSED))
    names = [entry.file_name for entry in entries]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"modules maps several layers to the same PyTorch names: {', '.join(repeated)}")
    return entries


def _module_names(model, modules) -> dict[str, str]:
    """PyTorch module name of each dlcore layer: the layer's own name unless `modules` says otherwise."""
    modules = dict(modules or {})
    names = {layer.name: modules.pop(layer.name, layer.name) for layer in model.layers}
    if modules:
        raise ValueError(f"modules names {sorted(modules)}, not layers of {model.describe()} "
                         f"(its layers: {', '.join(names)})")
    return names


def _batch_count_names(model, modules) -> set[str]:
    module_names = _module_names(model, modules)
    return {f"{module_names[layer.name]}.{_BATCH_COUNT}" for layer in model.layers
            if isinstance(layer, (BatchNorm1D, BatchNorm2D))}


def _compare(entries: list[_Entry], stored: dict[str, np.ndarray]) -> list[str]:
    """One line per missing tensor, unexpected tensor, shape difference and dtype difference."""
    problems = []
    for entry in entries:
        name, of = entry.file_name, _model_side(entry)
        want_shape, want_dtype = entry.file_shape(), np.dtype(entry.array.dtype)
        if name not in stored:
            problems.append(f"{name}: missing from the file; the model needs {want_shape} {want_dtype}{of}")
            continue
        have = stored[name]
        if tuple(have.shape) != want_shape:
            problems.append(f"{name}: shape {tuple(have.shape)} in the file, {want_shape} expected{of}")
        if have.dtype != want_dtype:
            problems.append(f"{name}: dtype {have.dtype} in the file, {want_dtype} expected{of}")
    expected = {entry.file_name for entry in entries}
    problems += [f"{name}: in the file ({tuple(array.shape)} {array.dtype}) but not in the model"
                 for name, array in stored.items() if name not in expected]
    return problems


def _model_side(entry: _Entry) -> str:
    """' (dlcore's fc1.weight, transposed)' where the file's name or shape differs from the model's."""
    if entry.file_name == entry.model_name and not entry.transposed:
        return ""
    return f" (dlcore's {entry.model_name}{', transposed' if entry.transposed else ''})"
