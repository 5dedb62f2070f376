"""Run-time settings of the emulator: thread order, worker count, determinism, shuffle seed.

Defaults come from the environment (read once, at first use):
  DLCORE_EMU_ORDER          forward | reverse | shuffled   order threads run between barriers
  DLCORE_EMU_WORKERS        int >= 1                       OS threads running blocks
  DLCORE_EMU_DETERMINISTIC  1                              one worker, blocks in order, so
                                                           float atomics add up identically
  DLCORE_EMU_SEED           int >= 0                       seed of the shuffled order
`configure(...)` changes them for the rest of the process, `configured(...)` for a `with` block.
Racy kernels (a missing __syncthreads) give wrong results under reverse or shuffled order.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass

__all__ = ["ORDERS", "Options", "configure", "configured", "options", "options_from_env"]

ORDERS = ("forward", "reverse", "shuffled")


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Options:
    order: str = "forward"
    workers: int = dataclasses.field(default_factory=_cpu_count)
    deterministic: bool = False
    seed: int = 0

    def __post_init__(self):
        if self.order not in ORDERS:
            raise ValueError(f"emulator thread order must be one of {', '.join(ORDERS)}, not {self.order!r}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ValueError(f"emulator workers must be an int >= 1, not {self.workers!r}")
        if not isinstance(self.deterministic, bool):
            raise ValueError(f"emulator deterministic must be a bool, not {self.deterministic!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**64:
            raise ValueError(f"emulator seed must be an int in [0, 2**64), not {self.seed!r}")

    @property
    def effective_workers(self) -> int:
        """Workers a launch uses: one in deterministic mode."""
        return 1 if self.deterministic else self.workers


def options_from_env(environ=None) -> Options:
    """Options from DLCORE_EMU_* variables of `environ` (default os.environ)."""
    environ = os.environ if environ is None else environ
    values = {}
    if environ.get("DLCORE_EMU_ORDER"):
        values["order"] = environ["DLCORE_EMU_ORDER"].strip().lower()
    for name, key in (("workers", "DLCORE_EMU_WORKERS"), ("seed", "DLCORE_EMU_SEED")):
        if environ.get(key):
            try:
                values[name] = int(environ[key])
            except ValueError:
                raise ValueError(f"{key} must be an integer, not {environ[key]!r}") from None
    if environ.get("DLCORE_EMU_DETERMINISTIC"):
        values["deterministic"] = environ["DLCORE_EMU_DETERMINISTIC"].strip() not in ("0", "", "false", "no")
    return Options(**values)


_current: Options | None = None


def options() -> Options:
    """The settings launches use now."""
    global _current
    if _current is None:
        _current = options_from_env()
    return _current


def configure(order=None, workers=None, deterministic=None, seed=None) -> Options:
    """Change the settings that are not None; returns the previous settings."""
    global _current
    previous = options()
    changes = {"order": order, "workers": workers, "deterministic": deterministic, "seed": seed}
    _current = dataclasses.replace(previous, **{k: v for k, v in changes.items() if v is not None})
    return previous


@contextlib.contextmanager
def configured(**changes):
    """`with configured(order="reverse"): ...` runs the block under changed settings."""
    global _current
    previous = configure(**changes)
    try:
        yield options()
    finally:
        _current = previous
