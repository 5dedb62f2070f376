"""Seconds per call of a zero-argument callable, on the clock of the device it runs on.

A clock times `n` back-to-back calls: the wall clock on a CPU; on a GPU, events recorded on
the stream before the first and after the last call, waited for, so the time is the GPU's
(launches queue up behind running kernels, as they do in training).
"""
from __future__ import annotations

import time
from typing import Callable

from dlcore.backend import get_backend


class WallClock:
    def seconds(self, function: Callable, calls: int) -> float:
        start = time.perf_counter()
        for _ in range(calls):
            function()
        return time.perf_counter() - start


class CupyClock:
    """Events of the current stream; use on the cupy backend (its array module is cupy)."""

    def seconds(self, function: Callable, calls: int) -> float:
        cupy = get_backend().xp
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        for _ in range(calls):
            function()
        end.record()
        end.synchronize()
        return cupy.cuda.get_elapsed_time(start, end) / 1e3


class TorchCudaClock:
    def seconds(self, function: Callable, calls: int) -> float:
        import torch

        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            function()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3


def seconds_per_call(function: Callable, clock, calls: int | None = None, repeats: int = 3, warmup: int = 1,
                     target_seconds: float = 0.2) -> float:
    """The fastest of `repeats` runs of `calls` calls, per call, after `warmup` calls. Without
    `calls`, as many as fill about `target_seconds` (1 to 1000), from one timed call."""
    for _ in range(warmup):
        function()
    if calls is None:
        once = clock.seconds(function, 1)
        calls = max(1, min(1000, int(target_seconds / max(once, 1e-7))))
    return min(clock.seconds(function, calls) / calls for _ in range(repeats))
