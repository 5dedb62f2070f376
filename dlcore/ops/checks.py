"""Argument checks shared by the ops: every failure is a ValueError (TypeError for a
non-array) whose message names the op, what it expected and what it received."""

from __future__ import annotations

import operator

import numpy

from dlcore.backend import foreign_array_advice

FLOAT_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))


def require_array(op: str, name: str, array) -> None:
    """`array` is an array (NumPy or CuPy): it has a dtype and a shape, and belongs to no other
    framework (a torch.Tensor is refused with how to convert it)."""
    advice = foreign_array_advice(array)
    if advice is not None:
        raise TypeError(f"{op}: {name}: {advice}")
    if not (hasattr(array, "dtype") and hasattr(array, "shape")):
        raise TypeError(f"{op}: {name} must be an array, got {type(array).__name__}")


def require_float(op: str, name: str, array) -> None:
    """`array` is a float32 or float64 array (NumPy or CuPy)."""
    require_array(op, name, array)
    if array.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{op}: {name} must be float32 or float64, got dtype {array.dtype}")


def require_rank(op: str, name: str, array, layouts: dict[int, str]) -> None:
    """`array` has one of the ranks in `layouts` ({4: "(N, C, H, W)", ...})."""
    require_array(op, name, array)
    if array.ndim not in layouts:
        expected = " or ".join(layouts.values())
        raise ValueError(f"{op}: expected {name} of shape {expected}, got shape {tuple(array.shape)}")


def require_shape(op: str, name: str, array, expected: tuple[int, ...], meaning: str = "") -> None:
    """`array.shape == expected`; `meaning` says where the expected shape comes from."""
    require_array(op, name, array)
    if tuple(array.shape) != tuple(expected):
        why = f" ({meaning})" if meaning else ""
        raise ValueError(
            f"{op}: expected {name} of shape {tuple(expected)}{why}, got shape {tuple(array.shape)}"
        )


def require_same_dtype(op: str, reference_name: str, reference, **others) -> None:
    """Every array in `others` (None allowed) has the dtype of `reference`. Ops never convert
    (layers do: they cast their input to their parameters' dtype)."""
    for name, array in others.items():
        if array is not None and array.dtype != reference.dtype:
            raise ValueError(
                f"{op}: {name} must have the dtype of {reference_name} ({reference.dtype}), "
                f"got dtype {array.dtype}; ops do not convert: cast one first, e.g. "
                f"{name}.astype({reference_name}.dtype) (layers cast their input to their parameters' dtype)"
            )


def as_pair(op: str, name: str, value) -> tuple[int, int]:
    """An int or a pair of ints as (height, width)."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    try:
        height, width = (operator.index(item) for item in pair)
    except (TypeError, ValueError):  # not ints, or not two of them
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}") from None
    return height, width


ACTIVATIONS = (None, "relu")


def require_activation(op: str, activation) -> None:
    """The activations a conv or dense op can fuse into its output."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"{op}: activation must be one of {ACTIVATIONS}, got {activation!r}")
