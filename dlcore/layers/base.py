"""The Layer base class: parameters by name, train/eval mode, input checking."""
from __future__ import annotations

import abc

import numpy as np

from dlcore import anomaly
from dlcore import init as initializers
from dlcore.backend import check_location, to_backend
from dlcore.parameter import Parameter
from dlcore.seeding import as_generator


class Layer(abc.ABC):
    """A layer computes `forward(x)` and, from what forward cached, `backward(dout) -> dx`.

    Parameters are registered by name ("weight", "bias", ...) and exposed with their
    gradients; a model prefixes them with the layer's name ("conv2d.weight").
    """

    def __init__(self, name: str | None = None):
        self.name = name
        self.training = True
        self._params: dict[str, Parameter] = {}
        self._buffers: dict[str, object] = {}

    # ---- parameters and state
    def add_parameter(self, key: str, shape, fans, init, rng, dtype) -> Parameter:
        values = initializers.get(init)(shape, fans, as_generator(rng), dtype)
        param = Parameter(to_backend(values), name=key)
        self._params[key] = param
        return param

    def add_buffer(self, key: str, array):
        """Non-trainable state that is saved with the model (batchnorm running statistics)."""
        self._buffers[key] = array
        return array

    def parameters(self) -> dict[str, Parameter]:
        return dict(self._params)

    def gradients(self) -> dict[str, object]:
        return {key: p.grad for key, p in self._params.items()}

    def buffers(self) -> dict[str, object]:
        return dict(self._buffers)

    extra_state_keys: tuple[str, ...] = ()  # int attributes that are state (Dropout: seed, calls)

    def extra_state(self) -> dict[str, int]:
        """Integer state besides parameters and buffers, saved in checkpoints."""
        return {key: int(getattr(self, key)) for key in self.extra_state_keys}

    def load_extra_state(self, state: dict[str, int]) -> None:
        """Restore what extra_state() returned."""
        for key in self.extra_state_keys:
            setattr(self, key, int(state[key]))

    def freeze(self, frozen: bool = True):
        """Stop (or resume) training this layer's parameters."""
        for p in self._params.values():
            p.trainable = not frozen
        return self

    @property
    def frozen(self) -> bool:
        return bool(self._params) and not any(p.trainable for p in self._params.values())

    def train(self, mode: bool = True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    # ---- computation
    def __call__(self, x):
        self._cache = None  # free the previous call's cache before forward allocates a new one
        x = self.check_input(x)
        if not anomaly.is_enabled():
            return self.forward(x)
        anomaly.check(x, f"the input of {self.describe()} (forward pass)")
        out = self.forward(x)
        anomaly.check(out, f"the forward output of {self.describe()}")
        return out

    def run_backward(self, dout, **options):
        """backward(dout, **options), with the anomaly checks of dlcore.detect_anomaly when enabled."""
        dx = self.backward(dout, **options)
        if anomaly.is_enabled():
            anomaly.check_backward(self, dx)
        return dx

    @abc.abstractmethod
    def forward(self, x):
        """The output for a checked input; caches what backward needs in training mode."""

    @abc.abstractmethod
    def backward(self, dout):
        """dL/dx from dL/dout; sets the gradients of trainable parameters."""

    # ---- input checking
    def describe(self) -> str:
        return f"{type(self).__name__} {self.name!r}" if self.name else type(self).__name__

    def expected_shape(self) -> str | None:
        """Human-readable expected input shape, e.g. '(N, 32, H, W)'; None accepts any rank."""
        return None

    def input_matches(self, shape) -> bool:
        return True

    def check_input(self, x):
        """x, checked (array type, device, shape, a non-empty batch, a floating-point dtype) and
        cast to the dtype of the layer's parameters when it differs: the parameters decide what
        a layer computes in (float64 data into a float32 model computes in float32, as Keras
        does). Ops, which own no parameters, never convert and refuse mismatched dtypes."""
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise TypeError(f"{self.describe()}: expected an array, got {type(x).__name__}")
        check_location(self.describe(), x)
        if not self.input_matches(x.shape):
            raise ValueError(
                f"{self.describe()}: expected input of shape {self.expected_shape()}, "
                f"got {tuple(x.shape)}"
            )
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(f"{self.describe()}: got an empty batch of shape {tuple(x.shape)}")
        if np.dtype(x.dtype).kind != "f":
            raise ValueError(f"{self.describe()}: expected a floating-point input, got dtype {x.dtype}")
        dtype = self.param_dtype()
        if dtype is not None and x.dtype != dtype:
            x = x.astype(dtype)
        return x

    def param_dtype(self):
        for p in self._params.values():
            return p.data.dtype
        return None

    def __repr__(self):
        return self.describe()


def pair(value, what: str, owner: str) -> tuple[int, int]:
    """(h, w) from an int or a pair of ints, each >= 1."""
    values = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in values):
        raise ValueError(f"{owner}: {what} must be a positive int or a pair of them, got {value!r}")
    return int(values[0]), int(values[1])


def padding_argument(padding, owner: str):
    """'same' / 'valid' in any case (as the ops accept them: "SAME" is TensorFlow's spelling),
    an int or a pair; strings come back lower-case."""
    if isinstance(padding, str) and padding.lower() in ("same", "valid"):
        return padding.lower()
    if isinstance(padding, (int, np.integer, tuple, list)) and not isinstance(padding, bool):
        return padding
    raise ValueError(f"{owner}: padding must be 'same', 'valid', an int or a pair, got {padding!r}")


def positive_int(value, what: str, owner: str) -> int:
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {what} must be a positive int, got {value!r}")
    return int(value)
