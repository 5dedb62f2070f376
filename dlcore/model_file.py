"""Whole-model files: the architecture as JSON beside the weights, in one checkpoint .npz.

    model.save("model.npz")                  # save_model(model, path)
    model = dlcore.load_model("model.npz")   # no code of the model needed

The file is a dlcore.checkpoint of the model (param/, buffer/, state/ keys; written
atomically, read without pickle) plus the key model/architecture, JSON text:

    {"format": 1, "class": "Model" | "Sequential" | "MultiInput", "name": ..., "needs_input_grad": ...,
     "layers": [{"type": "Conv2D", "config": {constructor arguments}, "frozen": ["weight", ...]}, ...],
     "inputs": [{"name": "image" or null, "shape": [1, 28, 28] or null}, ...],
     "nodes": [{"layer": "conv1", "inputs": [["input", 0] or ["node", k], ...]}, ...],   # execution order
     "outputs": [["node", k], ...],
     Sequential: "sequence": [layer names]; MultiInput: "branches": [[layer names], ...], "head": [...]}

Layers are rebuilt from Layer.config() (dlcore.layers only: a file names classes, it never
runs code), called as the nodes say, then the weights are restored. The rebuilt model must
describe itself exactly as the file does, or loading fails.
"""
from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from pathlib import Path

import dlcore.layers
from dlcore import checkpoint
from dlcore.checkpoint import ARCHITECTURE_KEY, CheckpointError
from dlcore.graph.tensor import Input
from dlcore.layers.base import Layer
from dlcore.models import Model, MultiInput, Sequential

ARCHITECTURE_FORMAT = 1


class ModelFileError(CheckpointError):
    """A file that load_model cannot rebuild a model from (or a model save_model cannot describe)."""


def save_model(model: Model, path) -> Path:
    """Write `model` (architecture, weights, buffers, layer state) to `path` atomically."""
    architecture = describe(model)
    return checkpoint.save(path, model, architecture=architecture)


def load_model(path) -> Model:
    """The model saved at `path`, as the class it was saved as (Model, Sequential, MultiInput),
    in training mode, with its weights, buffers, layer state and frozen parameters."""
    saved = checkpoint.read(path)
    if ARCHITECTURE_KEY not in saved.arrays:
        raise ModelFileError(f"{path}: holds weights but no architecture (written by save_weights or a "
                             "ModelCheckpoint): build the model in code and call model.load_weights(path)")
    try:
        architecture = json.loads(str(saved.arrays[ARCHITECTURE_KEY]))
    except json.JSONDecodeError as error:
        raise ModelFileError(f"{path}: model/architecture is not valid JSON ({error})") from None
    model = rebuild(architecture, where=str(path))
    checkpoint.restore(saved, model)
    return model


# ---- model -> description
def describe(model: Model) -> dict:
    """The JSON-able architecture of `model` (see the module docstring)."""
    if not isinstance(model, Model):
        raise TypeError(f"save_model: expected a dlcore Model, got {type(model).__name__}")
    node_index = {id(node): k for k, node in enumerate(model.nodes)}
    input_index = {id(tensor): i for i, tensor in enumerate(model.inputs)}

    def reference(tensor) -> list:
        return ["input", input_index[id(tensor)]] if tensor.node is None else ["node", node_index[id(tensor.node)]]

    kind = type(model).__name__ if type(model) in (Model, Sequential, MultiInput) else "Model"
    architecture = {
        "format": ARCHITECTURE_FORMAT,
        "class": kind,
        "name": model.name,
        "needs_input_grad": _json_flags(model.needs_input_grad),
        "layers": [_describe_layer(layer) for layer in model.layers],
        "inputs": [{"name": t.name, "shape": None if t.shape is None else list(t.shape)} for t in model.inputs],
        "nodes": [{"layer": node.layer.name, "inputs": [reference(t) for t in node.inputs]} for node in model.nodes],
        "outputs": [reference(t) for t in model.outputs],
    }
    if kind == "Sequential":
        architecture["sequence"] = [layer.name for layer in model.sequence]
    if kind == "MultiInput":
        architecture["branches"] = [[layer.name for layer in branch.sequence] for branch in model.branches]
        architecture["head"] = [layer.name for layer in model.head.sequence]
    return architecture


def _json_flags(flags):
    """needs_input_grad as JSON holds it: a bool, or a list of them (one per input)."""
    return [bool(flag) for flag in flags] if isinstance(flags, (list, tuple)) else bool(flags)


def _describe_layer(layer: Layer) -> dict:
    config = layer.config()
    try:
        json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"save_model: {layer.describe()} has a constructor argument a model file cannot "
                             f"hold ({error}); config: {config!r}") from None
    frozen = [key for key, p in layer.parameters().items() if not p.trainable]
    return {"type": type(layer).__name__, "config": config, "frozen": frozen}


# ---- description -> model
def layer_types() -> dict[str, type]:
    """{class name: class} of every concrete layer in dlcore.layers, the types a file may name."""
    types = {}
    for info in pkgutil.iter_modules(dlcore.layers.__path__):
        module = importlib.import_module(f"dlcore.layers.{info.name}")
        for name, value in vars(module).items():
            if (inspect.isclass(value) and issubclass(value, Layer) and not inspect.isabstract(value)
                    and not name.startswith("_") and value.__module__ == module.__name__):
                types[name] = value
    return types


def rebuild(architecture: dict, where: str = "model file") -> Model:
    """A new model (fresh initial weights) from describe()'s output."""
    try:
        model = _build(architecture, where)
    except ModelFileError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
        raise ModelFileError(f"{where}: malformed model architecture ({type(error).__name__}: {error})") from None
    if describe(model) != architecture:
        raise ModelFileError(f"{where}: the model rebuilt from the architecture differs from it "
                             "(a file edited by hand, or written by another dlcore version)")
    return model


def _build(architecture: dict, where: str) -> Model:
    if not isinstance(architecture, dict) or architecture.get("format") != ARCHITECTURE_FORMAT:
        found = architecture.get("format") if isinstance(architecture, dict) else type(architecture).__name__
        raise ModelFileError(f"{where}: model architecture format {found!r}; this dlcore reads "
                             f"format {ARCHITECTURE_FORMAT}")
    layers = {}
    for entry in architecture["layers"]:
        layer = _build_layer(entry, where)
        layers[layer.name] = layer
    kind, name, flags = architecture["class"], architecture["name"], architecture["needs_input_grad"]
    if kind == "Sequential":
        shape = architecture["inputs"][0]["shape"]
        return Sequential([layers[n] for n in architecture["sequence"]], name=name, needs_input_grad=flags,
                          input_shape=shape)
    if kind == "MultiInput":
        shapes = [entry["shape"] for entry in architecture["inputs"]]
        branches = [Sequential([layers[n] for n in names], input_shape=shape)
                    for names, shape in zip(architecture["branches"], shapes)]
        return MultiInput(branches, [layers[n] for n in architecture["head"]], name=name, needs_input_grad=flags)
    if kind != "Model":
        raise ModelFileError(f"{where}: unknown model class {kind!r}; expected Model, Sequential or MultiInput")
    inputs = [Input(entry["shape"], name=entry["name"]) for entry in architecture["inputs"]]
    outputs = []  # each node's output tensor, in node order

    def tensor(reference):
        kind, index = reference
        if kind not in ("input", "node") or not isinstance(index, int) or index < 0:
            raise ValueError(f"bad tensor reference {reference!r}")
        return inputs[index] if kind == "input" else outputs[index]

    for entry in architecture["nodes"]:
        layer = layers[entry["layer"]]
        args = [tensor(reference) for reference in entry["inputs"]]
        outputs.append(layer(args if layer.multi_input else args[0]))
    return Model(inputs, [tensor(reference) for reference in architecture["outputs"]], name=name,
                 needs_input_grad=flags)


def _build_layer(entry: dict, where: str) -> Layer:
    types = layer_types()
    kind = entry["type"]
    if kind not in types:
        raise ModelFileError(f"{where}: unknown layer type {kind!r}; a model file may use the layers of "
                             f"dlcore.layers: {', '.join(sorted(types))}")
    try:
        layer = types[kind](**entry["config"])
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"{where}: cannot rebuild the {kind} layer {entry['config'].get('name')!r} "
                             f"from its config ({error})") from None
    for key in entry["frozen"]:
        layer.parameters()[key].trainable = False
    return layer
