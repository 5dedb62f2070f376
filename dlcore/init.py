"""Weight initializers.

Each initializer is called as `init(shape, fans, rng, dtype)` and returns a NumPy array;
`fans = (fan_in, fan_out)` comes from the layer, because only the layer knows its layout
(conv weights (out, in, kh, kw): fan_in = in*kh*kw; dense weights (in, out): fan_in = in).
"""
from __future__ import annotations

import abc
import math

import numpy as np


class Initializer(abc.ABC):
    def __call__(self, shape, fans, rng: np.random.Generator, dtype) -> np.ndarray:
        return np.asarray(self.sample(tuple(shape), fans, rng), dtype=dtype)

    @abc.abstractmethod
    def sample(self, shape, fans, rng) -> np.ndarray:
        """Float64 values of `shape`; __call__ casts them to the layer's dtype."""


def _truncated_normal(shape, stddev, rng):
    """Normal(0, stddev) redrawn where |x| > 2 stddev, as tf.truncated_normal."""
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return values * stddev


class TruncatedNormal(Initializer):
    """Normal(0, stddev) cut at two standard deviations (the notes' weight init, stddev 0.1)."""

    def __init__(self, stddev: float = 0.1):
        if stddev <= 0:
            raise ValueError(f"TruncatedNormal: stddev must be > 0, got {stddev}")
        self.stddev = stddev

    def sample(self, shape, fans, rng):
        return _truncated_normal(shape, self.stddev, rng)


class Constant(Initializer):
    """Every element equal to `value` (the notes' bias init, 0.1)."""

    def __init__(self, value: float = 0.0):
        self.value = value

    def sample(self, shape, fans, rng):
        return np.full(shape, self.value)


class Zeros(Constant):
    def __init__(self):
        super().__init__(0.0)


class Ones(Constant):
    def __init__(self):
        super().__init__(1.0)


class HeNormal(Initializer):
    """Normal(0, sqrt(2 / fan_in)), for ReLU networks (He et al. 2015)."""

    def sample(self, shape, fans, rng):
        return rng.standard_normal(shape) * math.sqrt(2.0 / fans[0])


class HeUniform(Initializer):
    """Uniform(-l, l) with l = sqrt(6 / fan_in)."""

    def sample(self, shape, fans, rng):
        limit = math.sqrt(6.0 / fans[0])
        return rng.uniform(-limit, limit, shape)


class GlorotNormal(Initializer):
    """Normal(0, sqrt(2 / (fan_in + fan_out))) (Glorot & Bengio 2010)."""

    def sample(self, shape, fans, rng):
        return rng.standard_normal(shape) * math.sqrt(2.0 / (fans[0] + fans[1]))


class GlorotUniform(Initializer):
    """Uniform(-l, l) with l = sqrt(6 / (fan_in + fan_out)); Keras's default."""

    def sample(self, shape, fans, rng):
        limit = math.sqrt(6.0 / (fans[0] + fans[1]))
        return rng.uniform(-limit, limit, shape)


def get(spec) -> Initializer:
    """An Initializer from an instance or a name ('he_normal', 'glorot_uniform', 'zeros', ...)."""
    if isinstance(spec, Initializer):
        return spec
    names = {
        "he_normal": HeNormal,
        "he_uniform": HeUniform,
        "glorot_normal": GlorotNormal,
        "glorot_uniform": GlorotUniform,
        "zeros": Zeros,
        "ones": Ones,
        "truncated_normal": TruncatedNormal,
    }
    if spec not in names:
        raise ValueError(f"unknown initializer {spec!r}; use an Initializer or one of {sorted(names)}")
    return names[spec]()
