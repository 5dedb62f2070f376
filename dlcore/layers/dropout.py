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

    def forward(self, x):
        if not self.training or self.rate == 0:
            return x, None
        seed = (self.seed + self.calls) & _UINT64
        self.calls += 1
        return dropout_forward(x, self.rate, seed, training=True)

    def backward(self, dout, cache, needs_input_grad=True):
        return dout if cache is None else dropout_backward(dout, cache)
