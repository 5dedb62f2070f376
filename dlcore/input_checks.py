"""Checks of the data fit and evaluate are given, with messages that point at the cause:

  non_finite_loss_error   the loss went NaN/Inf: is it the batch (NaN in the data) or divergence?
  NonFiniteCounter        evaluate's data holds NaN/Inf: its loss and accuracy mean nothing
  warn_if_unscaled        inputs far outside the usual scaled ranges (images left in 0-255)

Inputs are tuples of arrays on the current backend, one per model input, each (N, ...).
"""
from __future__ import annotations

import functools
import operator
import warnings

import numpy as np

from dlcore.backend import xp

# Scaled inputs lie in [0, 1] or [-1, 1], or are standardized (a few units around 0); beyond
# this magnitude the data is almost surely unscaled (8-bit images in 0-255, raw measurements).
UNSCALED_MAGNITUDE = 20.0


class InputScaleWarning(UserWarning):
    """An input batch lies far outside the usual scaled ranges: a hint, training continues."""


class NonFiniteDataWarning(RuntimeWarning):
    """evaluate's data holds NaN or Inf, so its loss and accuracy are not meaningful."""


def _bad_samples(array):
    """(N,) bool: the samples of a float array (N, ...) holding NaN or Inf; None for other dtypes."""
    if np.dtype(array.dtype).kind not in "fc" or array.size == 0:
        return None
    return ~xp().isfinite(array).reshape(len(array), -1).all(axis=1)


def _non_finite(array) -> tuple[int, int]:
    """(NaN/Inf values, samples holding any) of an array (N, ...); (0, 0) for integer arrays."""
    bad = _bad_samples(array)
    if bad is None:
        return 0, 0
    return int((~xp().isfinite(array)).sum()), int(bad.sum())


def _describe(what: str, array) -> str | None:
    """'<what> hold(s) 3 NaN/Inf values in 2 of its 32 samples', or None when there are none."""
    values, samples = _non_finite(array)
    if values == 0:
        return None
    verb = "hold" if what.endswith("s") else "holds"
    return f"{what} {verb} {values} NaN/Inf value{'s' if values > 1 else ''} in {samples} of its {len(array)} samples"


def non_finite_loss_error(value: float, iteration: int, inputs: tuple, labels: tuple) -> FloatingPointError:
    """The error for a loss of `value` (NaN or Inf) at `iteration` on the batch (inputs, and the
    labels of each output):
    naming the non-finite values of the batch when there are any (a data problem, which no
    learning rate fixes), else divergence."""
    names = ["the input batch"] if len(inputs) == 1 else [f"input {k} of the batch" for k in range(len(inputs))]
    found = [_describe(name, array) for name, array in zip(names, inputs)]
    label_names = ["the batch's labels"] if len(labels) == 1 else [f"the batch's labels of output {k}"
                                                                    for k in range(len(labels))]
    found += [_describe(name, array) for name, array in zip(label_names, labels)]
    found = [line for line in found if line is not None]
    if found:
        return FloatingPointError(
            f"loss is {value} at iteration {iteration} because {'; '.join(found)}: the data, not the "
            "learning rate. np.isfinite(x).reshape(len(x), -1).all(axis=1) marks the finite samples; "
            "fix or drop the others before training")
    return FloatingPointError(
        f"loss is {value} at iteration {iteration} with a finite input batch: training diverged "
        "(lower the learning rate, or check the labels and the loss)")


class NonFiniteCounter:
    """Counts the samples of evaluate's batches whose inputs hold NaN or Inf, and warns once at the
    end when there were any."""

    def __init__(self):
        self.samples = 0

    def add(self, inputs: tuple) -> None:
        masks = [mask for mask in map(_bad_samples, inputs) if mask is not None]
        if masks:
            self.samples += int(functools.reduce(operator.or_, masks).sum())

    def warn(self, total: int) -> None:
        if self.samples:
            warnings.warn(
                f"evaluate: {self.samples} of {total} samples hold NaN or Inf input values; the loss is then "
                "nan and those samples' predictions are arbitrary, so loss and accuracy are not meaningful. "
                "np.isfinite(x).reshape(len(x), -1).all(axis=1) marks the finite samples; fix or drop the others",
                NonFiniteDataWarning, stacklevel=3)


def warn_if_unscaled(inputs: tuple) -> bool:
    """Warn (InputScaleWarning) when a float input batch reaches beyond +-UNSCALED_MAGNITUDE, saying
    how to scale it; True when it warned. NaN and Inf values are left out (non_finite_loss_error
    reports them), integer inputs are left alone."""
    for k, array in enumerate(inputs):
        if np.dtype(array.dtype).kind != "f":
            continue
        finite = array[xp().isfinite(array)]
        if finite.size == 0:
            continue
        low, high = float(finite.min()), float(finite.max())
        if max(abs(low), abs(high)) > UNSCALED_MAGNITUDE:
            which = "the input" if len(inputs) == 1 else f"input {k}"
            warnings.warn(
                f"fit: {which} spans [{low:g}, {high:g}], far outside the usual scaled ranges ([0, 1], [-1, 1] "
                "or standardized), so training may be slow or unstable; if these are 8-bit images divide by "
                "255 (x / 255.0), else standardize ((x - mean) / std of the training data). (A hint: "
                "training continues.)", InputScaleWarning, stacklevel=3)
            return True
    return False
