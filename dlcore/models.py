"""Models: containers of named layers with train/eval, forward/backward and fit/evaluate/predict."""
from __future__ import annotations

import re

from dlcore import training
from dlcore.layers.base import Layer
from dlcore.parameter import Parameter


def _default_name(layer: Layer) -> str:
    """Keras-style snake case of the class name: MaxPool2D -> max_pool2d, ReLU -> relu."""
    return re.sub(r"(?<=[a-z])(?=[A-Z][a-z])", "_", type(layer).__name__).lower()


class Model:
    """Base class: a subclass sets `self.layers` and defines forward(*inputs) and backward(dout)."""

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

    def summary(self) -> str:
        rows = [f"{'layer':<16}{'type':<14}{'parameters':>12}"]
        total = 0
        for layer in self.layers:
            count = sum(int(p.data.size) for p in layer.parameters().values())
            total += count
            rows.append(f"{layer.name:<16}{type(layer).__name__:<14}{count:>12,}")
        rows.append(f"{'total':<30}{total:>12,}")
        return "\n".join(rows)


class Sequential(Model):
    """Layers applied in order: `model(x)` runs forward, `model.backward(dlogits)` runs backward.

    backward returns dL/dx of the model input only if `needs_input_grad` is set; by
    default the first layer skips computing it (the notes' first conv needs none).
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
        self.needs_input_grad = needs_input_grad

    @property
    def needs_input_grad(self) -> bool:
        return self._needs_input_grad

    @needs_input_grad.setter
    def needs_input_grad(self, value: bool):
        self._needs_input_grad = bool(value)
        first = self.layers[0]
        if hasattr(first, "needs_input_grad"):
            first.needs_input_grad = self._needs_input_grad

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def __getitem__(self, key):
        if isinstance(key, str):
            return self.layer(key)
        return self.layers[key]

    def __len__(self):
        return len(self.layers)
