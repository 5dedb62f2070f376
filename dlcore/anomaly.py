"""Opt-in anomaly detection: find the first node whose activations or gradients stop
being finite, as torch.autograd.detect_anomaly does.

    with dlcore.detect_anomaly():
        model.fit(...)      # FloatingPointError: ... first appeared in the forward output of Conv2D 'conv2'

Or set DLCORE_DETECT_ANOMALY=1. Every check reads the whole array (a device sync on a
GPU), so it is off by default.
"""
from __future__ import annotations

import contextlib
import os

from dlcore.backend import array_location, to_numpy

_enabled = os.environ.get("DLCORE_DETECT_ANOMALY", "") not in ("", "0")


class AnomalyError(FloatingPointError):
    """A NaN or Inf appeared; the message names the layer and the pass where it first did."""


def is_enabled() -> bool:
    return _enabled


def set_detect_anomaly(enabled: bool) -> None:
    global _enabled
    _enabled = bool(enabled)


@contextlib.contextmanager
def detect_anomaly(enabled: bool = True):
    """Check every layer's input, output and gradients for NaN and Inf inside the block."""
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    try:
        yield
    finally:
        _enabled = previous


def check(array, where: str) -> None:
    """Raise AnomalyError if `array` (any backend, or a tuple of them) holds a NaN or an Inf."""
    if array is None:
        return
    if isinstance(array, (tuple, list)):
        for item in array:
            check(item, where)
        return
    values = array if array_location(array) == "host" else to_numpy(array)
    if values.dtype.kind != "f":
        return
    nans = int(values.size - (values == values).sum())
    infs = int(values.size - nans - (abs(values) < float("inf")).sum())
    if nans or infs:
        raise AnomalyError(f"non-finite values ({nans} NaN, {infs} Inf of {values.size}) "
                           f"first appeared in {where}")
