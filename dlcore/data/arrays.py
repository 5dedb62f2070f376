"""Argument checks shared by the splitting and batching helpers."""
from __future__ import annotations

import operator
from collections.abc import Sequence


def common_length(arrays: Sequence, names: Sequence[str]) -> int:
    """The shared first dimension N of `arrays`; ValueError naming each size if they differ."""
    lengths = [len(array) for array in arrays]
    if len(set(lengths)) > 1:
        sizes = ", ".join(f"{name} has {length}" for name, length in zip(names, lengths))
        raise ValueError(f"arrays must have the same number of samples (first dimension): {sizes}")
    return lengths[0]


def positive_int(value, name: str) -> int:
    """`value` as an int >= 1; TypeError for a non-integer, ValueError for one below 1."""
    number = operator.index(value)
    if number < 1:
        raise ValueError(f"{name} must be >= 1, found {number}")
    return number
