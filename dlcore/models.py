"""Models: containers of named layers with train/eval, forward/backward and fit/evaluate/predict.

Sequential chains layers; MultiInput runs one branch per input and a head on their
concatenated outputs. Layer objects may be shared between models (a pretrained base
under a new head); a shared layer keeps one forward cache, so run backward on the model
that ran the last forward.
"""
from __future__ import annotations

import re

import numpy as np

from dlcore import checkpoint, training
from dlcore.backend import to_numpy
from dlcore.layers.base import Layer
from dlcore.layers.conv import Conv2D
from dlcore.layers.merge import Concatenate
from dlcore.layers.pool import MaxPool2D
from dlcore.parameter import Parameter


def _default_name(layer: Layer) -> str:
    """Keras-style snake case of the class name: MaxPool2D -> max_pool2d, ReLU -> relu."""
    return re.sub(r"(?<=[a-z])(?=[A-Z][a-z])", "_", type(layer).__name__).lower()


def _has_trainable(layer: Layer) -> bool:
    return any(p.trainable for p in layer.parameters().values())


class Model:
    """Base class: a subclass sets `self.layers` and defines forward(*inputs), backward(dout)
    and forward_until(layer_name, *inputs) (the output of one layer, for `features`)."""

    layers: list[Layer]

    def _name_layers(self, layers):
        taken = {layer.name for layer in layers if layer.name}
        if len(taken) != sum(1 for layer in layers if layer.name):
            names = [layer.name for layer in layers if layer.name]
            duplicate = next(n for n in names if names.count(n) > 1)
            raise ValueError(f"{type(self).__name__}: two layers are named {duplicate!r}")
        counts: dict[str, int] = {}
        for layer in layers:
            if layer.name:
                continue
            base = _default_name(layer)
            name, k = base, counts.get(base, 0)
            while name in taken:
                k += 1
                name = f"{base}_{k}"
            counts[base] = k
            layer.name = name
            taken.add(name)

    def __call__(self, *inputs):
        return self.forward(*inputs)

    # ---- parameters
    def named_parameters(self) -> dict[str, Parameter]:
        """{'conv2d.weight': Parameter, ...} in layer order."""
        return {f"{layer.name}.{key}": p for layer in self.layers for key, p in layer.parameters().items()}

    def parameters(self) -> list[Parameter]:
        return list(self.named_parameters().values())

    def named_buffers(self) -> dict[str, object]:
        return {f"{layer.name}.{key}": b for layer in self.layers for key, b in layer.buffers().items()}

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        valid = ", ".join(layer.name for layer in self.layers)
        raise KeyError(f"{type(self).__name__} has no layer {name!r}; its layers are: {valid}")

    # ---- transfer learning: freezing and feature extraction
    def freeze(self, *names: str, up_to: str | None = None):
        """Stop training the named layers and, with `up_to`, every layer from the first one
        up to and including that one (in `layers` order); with neither, every layer.
        Optimizers skip frozen parameters and backward skips a frozen bottom of the model.
        Unknown names raise KeyError listing the valid ones. Returns the model."""
        for layer in self._select_layers(names, up_to):
            layer.freeze()
        return self

    def unfreeze(self, *names: str, up_to: str | None = None):
        """Resume training the chosen layers (chosen as in `freeze`). Returns the model."""
        for layer in self._select_layers(names, up_to):
            layer.freeze(False)
        return self

    def _select_layers(self, names, up_to) -> list[Layer]:
        if not names and up_to is None:
            return list(self.layers)
        chosen = [self.layer(name) for name in names]
        if up_to is not None:
            end = self.layers.index(self.layer(up_to))
            chosen += self.layers[: end + 1]
        return chosen

    def features(self, x, layer_name: str, batch_size: int = 1000) -> np.ndarray:
        """The activations of layer `layer_name` for every sample of x, in eval mode, as NumPy.

        x is an array (N, ...) or, for a multi-input model, a tuple of them; the result has
        the layer's output shape, e.g. (N, 64, 7, 7) for the notes' "pool2". Unknown names
        raise KeyError listing the valid ones.
        """
        self.layer(layer_name)
        inputs = training._as_inputs(x)
        n = training._check_lengths(inputs)
        was_training = self.training
        self.eval()
        try:
            outputs = [to_numpy(self.forward_until(layer_name, *training._batch(inputs, slice(i, i + batch_size))))
                       for i in range(0, n, batch_size)]
        finally:
            self.train(was_training)
        return np.concatenate(outputs)

    def train(self, mode: bool = True):
        for layer in self.layers:
            layer.train(mode)
        return self

    def eval(self):
        return self.train(False)

    @property
    def training(self) -> bool:
        return all(layer.training for layer in self.layers)

    # ---- Keras-style workflow (see dlcore.training)
    def fit(self, x, y, **options) -> training.History:
        return training.fit(self, x, y, **options)

    def evaluate(self, x, y, **options) -> dict[str, float]:
        return training.evaluate(self, x, y, **options)

    def predict(self, x, **options):
        return training.predict(self, x, **options)

    def save_weights(self, path):
        """Write parameters, buffers and layer state to an .npz checkpoint (dlcore.checkpoint)."""
        return checkpoint.save(path, self)

    def load_weights(self, path):
        """Load parameters, buffers and layer state from a checkpoint (also one saved with an
        optimizer and training progress); a mismatch raises CheckpointMismatchError naming
        every differing parameter."""
        return checkpoint.load(path, self)

    def summary(self) -> str:
        """One row per layer with its parameter count (frozen layers marked), then the totals."""
        rows = [f"{'layer':<16}{'type':<14}{'parameters':>12}"]
        total = trainable = 0
        for layer in self.layers:
            count = sum(int(p.data.size) for p in layer.parameters().values())
            total += count
            trainable += sum(int(p.data.size) for p in layer.parameters().values() if p.trainable)
            mark = "  frozen" if layer.frozen else ""
            rows.append(f"{layer.name:<16}{type(layer).__name__:<14}{count:>12,}{mark}")
        rows.append(f"{'total':<30}{total:>12,}")
        rows.append(f"{'trainable':<30}{trainable:>12,}")
        return "\n".join(rows)


class Sequential(Model):
    """Layers applied in order: `model(x)` runs forward, `model.backward(dlogits)` runs backward.

    backward returns dL/dx of the model input only if `needs_input_grad` is set; by
    default the first layer skips computing it (the notes' first conv needs none).
    Slicing (`model[:5]`) and `up_to(name)` give a new Sequential sharing the layers.
    """

    def __init__(self, layers, name: str | None = None, needs_input_grad: bool = False):
        layers = list(layers)
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} is a {type(layer).__name__}, not a dlcore Layer")
        self.name = name
        self.layers = layers
        self._name_layers(layers)
        self.needs_input_grad = bool(needs_input_grad)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def forward_until(self, layer_name: str, x):
        """The output of layer `layer_name` (the layers after it do not run)."""
        last = self.layer(layer_name)
        for layer in self.layers:
            x = layer(x)
            if layer is last:
                return x

    def backward(self, dout):
        """dL/dx of the model input if `needs_input_grad`, else None.

        Backward stops at the lowest layer with a trainable parameter, which computes no
        input gradient: the layers below it (a frozen base) need none, so they do no work.
        """
        lowest = 0 if self.needs_input_grad else self._lowest_trainable()
        relu_pools = self._relu_pools(lowest)
        for i in range(len(self.layers) - 1, lowest - 1, -1):
            layer = self.layers[i]
            if hasattr(layer, "needs_input_grad"):  # set on every call: layers may be shared
                layer.needs_input_grad = i > lowest or self.needs_input_grad
            options = {"through_relu": True} if i in relu_pools else {"relu_applied": True} if i + 1 in relu_pools else {}
            dout = layer.run_backward(dout, **options)
        return dout if self.needs_input_grad else None

    def _relu_pools(self, lowest: int) -> set[int]:
        """Indices of the MaxPool2D layers right after a Conv2D with a fused ReLU, both in the
        backward pass: the pool applies the ReLU's gradient to its (smaller) dout and the conv
        skips its mask; the gradients are the same."""
        return {
            i
            for i in range(lowest + 1, len(self.layers))
            if isinstance(self.layers[i], MaxPool2D)
            and isinstance(self.layers[i - 1], Conv2D)
            and self.layers[i - 1].activation == "relu"
        }

    def _lowest_trainable(self) -> int:
        """Index of the first layer with a trainable parameter; len(layers) if none has one."""
        return next((i for i, layer in enumerate(self.layers) if _has_trainable(layer)), len(self.layers))

    def up_to(self, layer_name: str) -> Sequential:
        """A Sequential of the layers from the first up to and including `layer_name`, shared
        with this model: `Sequential(base.up_to("flatten").layers + [Dense(...)])` replaces a head."""
        return Sequential(self.layers[: self.layers.index(self.layer(layer_name)) + 1])

    def __getitem__(self, key):
        """model["name"] and model[i] give a layer; model[i:j] a Sequential sharing those layers."""
        if isinstance(key, str):
            return self.layer(key)
        if isinstance(key, slice):
            return Sequential(self.layers[key])
        return self.layers[key]

    def __len__(self):
        return len(self.layers)


class MultiInput(Model):
    """One branch per input; the branch outputs are flattened, concatenated and fed to a head:

        inputs[i] (N, ...) -> branches[i] -> (N, d_i) -> concatenate -> (N, sum d_i) -> head -> (N, K)

    `model(images, features)` runs forward; `model.backward(dlogits)` runs the head, splits
    the gradient at the concatenation and runs each branch, returning one input gradient
    per branch (None unless that branch's `needs_input_grad` is set). Branches and head are
    Sequentials or lists of layers, kept as `model.branches` and `model.head` (Sequentials,
    e.g. for per-branch optimizer groups). Layer names are unique across the whole model:
    unnamed layers given in lists are named together; Sequentials keep their names.
    """

    def __init__(self, branches, head, name: str | None = None):
        branches = list(branches)
        parts = [list(part.layers) if isinstance(part, Sequential) else list(part) for part in [*branches, head]]
        if len(parts) < 2:
            raise ValueError("MultiInput needs at least one branch")
        for where, part in zip([*(f"branch {i}" for i in range(len(parts) - 1)), "head"], parts):
            if not part:
                raise ValueError(f"MultiInput: {where} has no layers")
            bad = next((item for item in part if not isinstance(item, Layer)), None)
            if bad is not None:
                raise TypeError(f"MultiInput: {where} holds a {type(bad).__name__}, not a dlcore Layer")
        self.merge = Concatenate()
        self.layers = [layer for part in parts[:-1] for layer in part] + [self.merge] + parts[-1]
        try:
            self._name_layers(self.layers)
        except ValueError as error:
            raise ValueError(f"{error} (branches and head given as Sequentials keep their layers' "
                             "names: name the layers apart, or pass lists of layers)") from None
        self.name = name
        self.branches = [part if isinstance(part, Sequential) else Sequential(part) for part in branches]
        self.head = head if isinstance(head, Sequential) else Sequential(parts[-1])

    def _check_inputs(self, inputs):
        if len(inputs) != len(self.branches):
            raise ValueError(f"MultiInput takes {len(self.branches)} inputs (one per branch), got {len(inputs)}")
        sizes = [int(x.shape[0]) if getattr(x, "ndim", 0) else None for x in inputs]  # None: checked by the branch
        if len(set(sizes)) > 1:
            raise ValueError(f"MultiInput: the inputs have different numbers of samples {sizes}")

    def forward(self, *inputs):
        self._check_inputs(inputs)
        return self.head(self.merge([branch(x) for branch, x in zip(self.branches, inputs)]))

    def forward_until(self, layer_name: str, *inputs):
        """The output of layer `layer_name`; only the branch holding it runs if it is in one."""
        self._check_inputs(inputs)
        target = self.layer(layer_name)
        for branch, x in zip(self.branches, inputs):
            if any(layer is target for layer in branch.layers):
                return branch.forward_until(layer_name, x)
        merged = self.merge([branch(x) for branch, x in zip(self.branches, inputs)])
        return merged if target is self.merge else self.head.forward_until(layer_name, merged)

    def backward(self, dout):
        """dL/dlogits (N, K) -> a tuple with each branch's input gradient (or None)."""
        self.head.needs_input_grad = any(
            branch.needs_input_grad or any(map(_has_trainable, branch.layers)) for branch in self.branches)
        dmerged = self.head.backward(dout)
        if dmerged is None:  # every branch is frozen
            return tuple(None for _ in self.branches)
        return tuple(branch.backward(d) for branch, d in zip(self.branches, self.merge.run_backward(dmerged)))
