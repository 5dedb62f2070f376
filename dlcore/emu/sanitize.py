"""Run tests with kernels built under AddressSanitizer and UBSan.

    python -m dlcore.emu.sanitize [pytest args...]      (default: tests/emu tests/ops)

A sanitized kernel library can only be loaded into a process that started with the ASan runtime
(ASan must come first in the library list), so this command re-runs pytest with
  LD_PRELOAD      $(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libubsan.so)
  ASAN_OPTIONS    detect_leaks=0 (CPython itself leaks by design)
  UBSAN_OPTIONS   print_stacktrace=1:halt_on_error=1 (undefined behaviour fails the run)
  DLCORE_EMU_SANITIZE=1 (every kernel library is built with -fsanitize=address,undefined)
and exits with pytest's status. Out-of-bounds reads and writes of global or shared memory are
then reported with the .cu line that made them.
"""
from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

from dlcore.emu.errors import SanitizerError

__all__ = ["DEFAULT_TARGETS", "main", "require_runtime", "requested", "runtime_loaded", "sanitizer_env"]

DEFAULT_TARGETS = ("tests/emu", "tests/ops")
COMMAND = "python -m dlcore.emu.sanitize [pytest args]"


def requested(environ=None) -> bool:
    """True when DLCORE_EMU_SANITIZE asks for sanitized builds."""
    environ = os.environ if environ is None else environ
    return environ.get("DLCORE_EMU_SANITIZE", "").strip() not in ("", "0", "false", "no")


def runtime_loaded() -> bool:
    """True when the ASan runtime is part of this process (preloaded)."""
    return hasattr(ctypes.CDLL(None), "__asan_init")


def require_runtime() -> None:
    if not runtime_loaded():
        raise SanitizerError(
            "sanitized kernels need the AddressSanitizer runtime preloaded into Python; "
            f"run the tests through `{COMMAND}` (it sets LD_PRELOAD and ASAN_OPTIONS), "
            "or unset DLCORE_EMU_SANITIZE"
        )


def _runtime_library(cxx: str, name: str) -> str:
    result = subprocess.run([cxx, f"-print-file-name={name}"], capture_output=True, text=True, check=False)
    found = result.stdout.strip()
    if not os.path.isabs(found):
        raise SanitizerError(f"{cxx} does not ship {name}; install the compiler's sanitizer runtime")
    return found


def sanitizer_env(environ=None) -> dict[str, str]:
    """A copy of `environ` (default os.environ) set up for sanitized kernels (see module doc)."""
    env = dict(os.environ if environ is None else environ)
    cxx = env.get("CXX", "g++")
    preload = [_runtime_library(cxx, "libasan.so"), _runtime_library(cxx, "libubsan.so")]
    env["LD_PRELOAD"] = " ".join([*preload, env.get("LD_PRELOAD", "")]).strip()
    env["ASAN_OPTIONS"] = ":".join(filter(None, ["detect_leaks=0", env.get("ASAN_OPTIONS")]))
    env["UBSAN_OPTIONS"] = ":".join(filter(None, ["print_stacktrace=1:halt_on_error=1", env.get("UBSAN_OPTIONS")]))
    env["DLCORE_EMU_SANITIZE"] = "1"
    return env


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        args = [target for target in DEFAULT_TARGETS if Path(target).exists()] or list(DEFAULT_TARGETS)
    return subprocess.call([sys.executable, "-m", "pytest", *args], env=sanitizer_env())


if __name__ == "__main__":
    sys.exit(main())
