"""Inverted dropout with a counter-based mask, reproducible across backends."""
from __future__ import annotations

from dlcore.layers.base import Layer
from dlcore.ops import dropout_backward, dropout_forward
from dlcore.seeding import as_generator

_UINT64 = (1 << 64) - 1


class Dropout(Layer):
    """Zeroes each element with probability `rate` in training and scales the kept ones
    by 1 / (1 - rate); identity in eval mode. (The notes' keep probability 0.5 is rate 0.5.)

    The mask of the k-th training call is the Philox stream keyed by seed + k, so it is
    the same on every backend, and `calls` is the whole state to checkpoint.

    `enabled = False` switches dropout off while the model stays in training mode (batch
    norm keeps using batch statistics): the layer passes its input through and draws no
    mask, so `calls` does not advance. `set_dropout(model, False)` does it for every
    Dropout of a model.
    """

    extra_state_keys = ("seed", "calls")

    def __init__(self, rate: float = 0.5, seed: int | None = None, rng=None, name: str | None = None):
        super().__init__(name)
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        if seed is None:
            seed = int(as_generator(rng).integers(0, 1 << 63))
        self.seed = int(seed) & _UINT64
        self.calls = 0
        self.enabled = True

    def config(self) -> dict:
        """With the seed drawn from `rng` when none was given: the rebuilt layer draws the same masks."""
        return {**super().config(), "seed": self.seed}

    def forward(self, x):
        if not (self.training and self.enabled) or self.rate == 0:
            return x, None
        seed = (self.seed + self.calls) & _UINT64
        self.calls += 1
        return dropout_forward(x, self.rate, seed, training=True)

    def backward(self, dout, cache, needs_input_grad=True):
        return dout if cache is None else dropout_backward(dout, cache)


def set_dropout(model, enabled: bool) -> list[Dropout]:
    """Switch every Dropout among `model.layers` (any object with a `layers` list, or a list of
    layers) on or off, whatever the training mode; returns those layers."""
    if not isinstance(enabled, bool):
        raise TypeError(f"set_dropout: enabled must be True or False, got {enabled!r}")
    layers = model if isinstance(model, (list, tuple)) else getattr(model, "layers", None)
    if layers is None:
        raise TypeError(f"set_dropout: expected a model with a `layers` list or a list of layers, "
                        f"got {type(model).__name__}")
    dropouts = [layer for layer in layers if isinstance(layer, Dropout)]
    for layer in dropouts:
        layer.enabled = enabled
    return dropouts
