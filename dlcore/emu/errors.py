"""Exceptions of the emulator. All derive from EmuError; each also derives from the builtin a
caller would expect (a bad launch configuration is a ValueError, as on CuPy)."""
from __future__ import annotations

__all__ = ["EmuError", "CompileError", "KernelError", "LaunchError", "SanitizerError"]


class EmuError(Exception):
    """Base class of the emulator's errors."""


class CompileError(EmuError, RuntimeError):
    """g++ could not build a kernel file; the message names the file and holds g++'s log."""


class KernelError(EmuError, RuntimeError):
    """A kernel misbehaved while running (divergent barrier, inconsistent warp operation);
    the message names the kernel, the block and what its threads were doing."""


class LaunchError(EmuError, ValueError):
    """A launch configuration a GPU would refuse: too many threads, too much shared memory."""


class SanitizerError(EmuError, RuntimeError):
    """A sanitized library cannot be loaded because the sanitizer runtime is not preloaded."""
