"""Layers that merge several inputs of one batch: Add (residual sums) and Concatenate.

Both take a list of arrays (multi_input), check every input as a single-input layer does
(array, device, float dtype, non-empty batch), then that the inputs fit together; backward
returns one gradient per input. needs_input_grad is a bool or one bool per input; an input
whose gradient is not needed gets None.
"""
from __future__ import annotations

import abc
import math
import numbers

from dlcore.layers.base import Layer
from dlcore.ops import merge


class _Merge(Layer):
    """Checks shared by the merge layers; subclasses check how the shapes fit (`_merged_shape`)."""

    multi_input = True
    least_inputs = 2

    def check_input(self, xs):
        if not isinstance(xs, (list, tuple)) or len(xs) < self.least_inputs:
            got = f"{len(xs)} arrays" if isinstance(xs, (list, tuple)) else type(xs).__name__
            raise ValueError(f"{self.describe()}: expected a list of at least {self.least_inputs} arrays, got {got}")
        xs = [Layer.check_input(self, x) for x in xs]
        dtypes = [str(x.dtype) for x in xs]
        if len(set(dtypes)) != 1:
            raise ValueError(f"{self.describe()}: the inputs must have one dtype, got {dtypes}")
        sizes = [int(x.shape[0]) for x in xs]
        if len(set(sizes)) != 1:
            raise ValueError(f"{self.describe()}: inputs have different batch sizes {sizes}")
        self._merged_shape([tuple(x.shape) for x in xs], batch_dim=True)
        return xs

    def output_shape(self, input_shapes):
        """Per-sample input shapes (no batch dimension) -> the per-sample output shape."""
        if not isinstance(input_shapes, (list, tuple)) or len(input_shapes) < self.least_inputs:
            raise ValueError(
                f"{self.describe()}: expected a list of at least {self.least_inputs} input shapes, got {input_shapes!r}"
            )
        return self._merged_shape([tuple(shape) for shape in input_shapes], batch_dim=False)

    @abc.abstractmethod
    def _merged_shape(self, shapes, batch_dim: bool) -> tuple[int, ...]:
        """The output shape for these input shapes (with or without the batch dimension);
        ValueError naming the layer and every shape when they do not fit."""

    def _require_cache(self, cache):
        if cache is None:
            raise RuntimeError(f"{self.describe()}: backward needs the cache of a forward pass in training mode")

    @staticmethod
    def _keep_wanted(grads, needs_input_grad):
        """grads with None where needs_input_grad (a bool, or one per input) says no."""
        wanted = [needs_input_grad] * len(grads) if isinstance(needs_input_grad, bool) else list(needs_input_grad)
        if len(wanted) != len(grads):
            raise ValueError(f"needs_input_grad has {len(wanted)} entries for {len(grads)} inputs")
        return [grad if want else None for grad, want in zip(grads, wanted)]


class Add(_Merge):
    """out = x_1 + x_2 + ... for two or more inputs of one shape (any rank >= 2, batch first);
    the gradient of every input is dout itself."""

    def _merged_shape(self, shapes, batch_dim):
        if len(set(shapes)) != 1:
            kind = "shapes" if batch_dim else "per-sample shapes"
            raise ValueError(f"{self.describe()}: the inputs must all have one shape, got {kind} {shapes}")
        return shapes[0]

    def forward(self, xs):  # [(N, ...), (N, ...), ...] -> (N, ...)
        out, cache = merge.add_forward(xs)
        return out, cache if self.training else None

    def backward(self, dout, cache, needs_input_grad=True):  # (N, ...) -> [(N, ...), ...]
        self._require_cache(cache)
        return self._keep_wanted(merge.add_backward(dout, cache), needs_input_grad)


class Concatenate(_Merge):
    """Joins the inputs along `axis` (default 1: channels of (N, C_i, H, W) feature maps, features
    of (N, d_i) matrices; negative counts from the end; never 0, the batch). Every other
    dimension must match. Inputs are not flattened: put a Flatten before inputs of other ranks."""

    least_inputs = 1

    def __init__(self, axis: int = 1, name: str | None = None):
        super().__init__(name)
        if not isinstance(axis, numbers.Integral) or isinstance(axis, bool) or axis == 0:
            raise ValueError(f"{self.describe()}: axis must be a non-zero int (0 is the batch), got {axis!r}")
        self.axis = int(axis)

    def _merged_shape(self, shapes, batch_dim):
        kind = "shapes" if batch_dim else "per-sample shapes"
        rank = len(shapes[0]) + (0 if batch_dim else 1)  # with the batch dimension
        if len({len(shape) for shape in shapes}) != 1 or rank < 2:
            raise ValueError(f"{self.describe()}: the inputs must all have one rank >= 2, got {kind} {shapes}")
        axis = self.axis + rank if self.axis < 0 else self.axis  # in the shapes with the batch dimension
        if not 1 <= axis < rank:
            raise ValueError(f"{self.describe()}: axis {self.axis} does not exist in inputs of {kind} {shapes}")
        at = axis if batch_dim else axis - 1  # the axis in `shapes`
        if len({shape[:at] + shape[at + 1 :] for shape in shapes}) != 1:
            raise ValueError(
                f"{self.describe()}: the inputs must match in every dimension but axis {self.axis}, got {kind} {shapes}"
            )
        return shapes[0][:at] + (sum(shape[at] for shape in shapes),) + shapes[0][at + 1 :]

    def forward(self, xs):  # [(N, C_i, H, W), ...] -> (N, sum C_i, H, W); [(N, d_i), ...] -> (N, sum d_i)
        out, cache = merge.concatenate_forward(xs, self.axis)
        return out, cache if self.training else None

    def backward(self, dout, cache, needs_input_grad=True):  # -> one view of dout per input
        self._require_cache(cache)
        return self._keep_wanted(merge.concatenate_backward(dout, cache), needs_input_grad)


class FlattenConcatenate(_Merge):
    """Flattens each input to (N, d_i), then joins them: [(N, ...), ...] -> (N, d_1 + d_2 + ...),
    d_i the size of one sample of input i (MultiInput's merge of its branches)."""

    least_inputs = 1
    default_name = "concatenate"

    def _merged_shape(self, shapes, batch_dim):
        flat = [(shape[0], math.prod(shape[1:])) if batch_dim else (math.prod(shape),) for shape in shapes]
        return (*flat[0][:-1], sum(shape[-1] for shape in flat))

    def forward(self, xs):  # [(N, ...), ...] -> (N, sum d_i)
        shapes = [x.shape for x in xs]
        out, cache = merge.concatenate_forward([x.reshape(x.shape[0], -1) for x in xs], 1)
        return out, (cache, shapes) if self.training else None

    def backward(self, dout, cache, needs_input_grad=True):  # -> one gradient per input, in its shape
        self._require_cache(cache)
        cache, shapes = cache
        grads = [grad.reshape(shape) for grad, shape in zip(merge.concatenate_backward(dout, cache), shapes)]
        return self._keep_wanted(grads, needs_input_grad)
