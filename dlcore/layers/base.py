"""The Layer base class: parameters by name, train/eval mode, input checking."""
from __future__ import annotations

import abc
import functools
import inspect

import numpy as np

from dlcore import init as initializers
from dlcore.backend import check_location, to_backend
from dlcore.ops.padding import window_2d
from dlcore.parameter import Parameter
from dlcore.seeding import as_generator


class Layer(abc.ABC):
    """A layer maps its input to an output and that output's gradient back to the input's.

    The contract, the same for every layer:

        forward(x) -> (out, cache)                      x already checked (check_input)
        backward(dout, cache, needs_input_grad) -> dx   and the parameters' gradients, summed
                                                        into them with add_grad
        output_shape(shape) -> shape                    per sample (no batch dimension)

    `cache` is whatever backward needs from that forward call (None in eval mode); it
    belongs to the call, not to the layer, so a layer may be called several times in one
    model (a shared layer) and the model's graph keeps one cache per call. A layer with
    `multi_input = True` takes a list of arrays and returns one gradient per input.

    Called on arrays, a layer runs forward and returns the output (nothing is kept for a
    backward pass); called on symbolic tensors (dlcore.Input), it adds a node to a graph
    (see dlcore.graph). Parameters are registered by name ("weight", "bias", ...); a model
    prefixes them with the layer's name ("conv2d.weight").
    """

    multi_input = False
    # constructor arguments that only shape the initial values, which loaded weights replace
    unsaved_arguments: tuple[str, ...] = ("weight_init", "bias_init", "rng")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _recording_arguments(cls.__init__)

    def __init__(self, name: str | None = None):
        self.__dict__.setdefault("_arguments", {"name": name})
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

    @staticmethod
    def add_grad(param: Parameter | None, grad) -> None:
        """Sum `grad` into a trainable parameter's gradient (a layer called twice in one pass
        gets both); frozen parameters and absent ones (no bias) are left alone."""
        if param is not None and param.trainable:
            param.grad = grad if param.grad is None else param.grad + grad

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

    def config(self) -> dict:
        """The constructor arguments that rebuild this layer, JSON-able: as given (defaults
        filled in), with the layer's current name, without `unsaved_arguments`; dtypes as
        names ("float32"), tuples as lists. type(layer)(**layer.config()) is the same layer
        up to its initial weights (dlcore.model_file saves models this way)."""
        config = {key: _json_argument(value) for key, value in self._arguments.items()
                  if key not in self.unsaved_arguments}
        config["name"] = self.name
        return config

    def freeze(self, frozen: bool = True):
        """Stop (or resume) training this layer's parameters."""
        for p in self._params.values():
            p.trainable = not frozen
        return self

    @property
    def frozen(self) -> bool:
        return bool(self._params) and not any(p.trainable for p in self._params.values())

    @property
    def trainable(self) -> bool:
        """Whether any parameter of this layer is trained."""
        return any(p.trainable for p in self._params.values())

    def train(self, mode: bool = True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    # ---- computation
    def __call__(self, x):
        """On arrays: the output (eager, nothing kept for backward). On symbolic tensors
        (dlcore.Input and what layers return for it): a new graph node's output tensor."""
        from dlcore.graph.tensor import SymbolicTensor, call_symbolic

        inputs = x if self.multi_input and isinstance(x, (list, tuple)) else [x]
        if any(isinstance(item, SymbolicTensor) for item in inputs):
            return call_symbolic(self, x)
        out, _ = self.forward(self.check_input(x))
        return out

    @abc.abstractmethod
    def forward(self, x):
        """(out, cache) for a checked input; the cache holds what backward needs in training
        mode (None in eval mode)."""

    @abc.abstractmethod
    def backward(self, dout, cache, needs_input_grad: bool = True):
        """dL/dx from dL/dout and the cache of the forward call; adds dL/dparameter to the
        trainable parameters (add_grad). With needs_input_grad=False a layer may skip dx
        and return None."""

    def output_shape(self, shape: tuple) -> tuple:
        """The output shape of one sample for an input sample of `shape` (entries may be None
        where unknown); ValueError naming the layer if the input does not fit. Layers that
        change the shape override this (after calling it, for the check)."""
        if not self.input_matches((None, *shape)):
            raise ValueError(f"{self.describe()}: expected input of shape {self.expected_shape()}, "
                             f"got {batch_shape_text(shape)}")
        return tuple(shape)

    # ---- input checking
    def describe(self) -> str:
        return f"{type(self).__name__} {self.name!r}" if self.name else type(self).__name__

    def expected_shape(self) -> str | None:
        """Human-readable expected input shape, e.g. '(N, 32, H, W)'; None accepts any rank."""
        return None

    def input_matches(self, shape) -> bool:
        """Whether a whole input shape (N first; entries may be None where unknown) fits."""
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


def _recording_arguments(init):
    """`init` wrapped to keep the arguments of the outermost constructor call (the class's own,
    not the super().__init__ calls it makes) as self._arguments, for Layer.config."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def recording_init(self, *args, **kwargs):
        if "_arguments" not in self.__dict__:
            try:
                bound = signature.bind(self, *args, **kwargs)
            except TypeError:  # arguments that do not fit: Python's own error, naming the class
                return init(self, *args, **kwargs)
            bound.apply_defaults()
            self._arguments = dict(list(bound.arguments.items())[1:])  # without self
        init(self, *args, **kwargs)

    return recording_init


def _json_argument(value):
    """A constructor argument as JSON holds it: NumPy scalars as Python numbers, dtypes by
    name, tuples as lists; anything else as it is (the model file rejects what JSON cannot hold)."""
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return np.dtype(value).name
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return [_json_argument(item) for item in value]
    return value


def batch_shape_text(shape) -> str:
    """'(N, 1, 28, 28)' for the sample shape (1, 28, 28); unknown sizes show as '?'."""
    return "(" + ", ".join(["N", *("?" if d is None else str(d) for d in shape)]) + ")"


def window_output_size(layer: Layer, size_hw, kernel, stride, padding) -> tuple:
    """(OH, OW) of a sliding-window layer for input (H, W) (None where unknown); ValueError
    naming the layer when the window does not fit."""
    known = [size if size is not None else max(kernel[i], 1) for i, size in enumerate(size_hw)]
    try:
        out = window_2d(type(layer).__name__, tuple(known), kernel, stride, padding).out_size
    except ValueError as error:
        raise ValueError(f"{layer.describe()}: {error}") from None
    return tuple(None if size is None else o for size, o in zip(size_hw, out))


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
