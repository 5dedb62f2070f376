"""Compile a kernel file into a CPU shared library, cached on disk by content.

Steps for `kernels/pool.cu`:
1. `g++ -E` resolves includes, macros and `#if`s (with DLCORE_EMU defined), so that the cache
   key covers every included header and the rewriter sees plain tokens;
2. rewrite.translate() rewrites `__shared__` declarations and appends the kernel table;
3. g++ compiles that as C++20 with kernels/emu/cuda_emu.h force-included.
The library is cached under a hash of the translated text, the header, the flags and the
compiler's identity, and written under a temporary name then renamed, so concurrent builds (two
pytest processes, say) never load a half-written file.
"""
from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from dlcore.backend import kernels_dir
from dlcore.emu.errors import CompileError
from dlcore.emu.rewrite import KERNEL_TABLE_FILE, RewriteError, translate

__all__ = ["Library", "build_library", "cache_dir", "header_path"]

_CACHE_FORMAT = "dlcore-emu-1"
_LIBRARY_FLAGS = (
    "-std=c++20",
    "-fPIC",
    "-shared",
    "-pthread",
    "-fvisibility=hidden",  # each library keeps its own worker pool and thread-locals
    "-fno-strict-aliasing",  # kernels reinterpret float* as float4*
    "-Wno-unknown-pragmas",  # #pragma unroll
    "-Wl,-z,defs",  # a kernel declared but never defined fails here, not at load time
    "-Wl,-Bsymbolic",  # each library uses its own copies of inline code, however it is loaded
)
_OPTIMIZED = ("-O2",)
_SANITIZED = ("-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined")


@dataclass(frozen=True)
class Library:
    """A compiled kernel file: where it is, what it exports, and whether this call compiled it."""

    path: Path
    source: Path
    kernels: tuple[str, ...]
    sanitized: bool
    compiled: bool


def header_path() -> Path:
    return kernels_dir() / "emu" / "cuda_emu.h"


def compiler() -> str:
    return os.environ.get("CXX", "g++")


def cache_dir() -> Path:
    """$DLCORE_CACHE_DIR/emu, else $XDG_CACHE_HOME/dlcore/emu, else ~/.cache/dlcore/emu."""
    if os.environ.get("DLCORE_CACHE_DIR"):
        return Path(os.environ["DLCORE_CACHE_DIR"]) / "emu"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dlcore" / "emu"


@functools.cache
def _compiler_identity(cxx: str) -> str:
    """Path, version and target of the compiler: a different compiler means a different cache key."""
    found = shutil.which(cxx)
    if found is None:
        raise CompileError(f"the emulator needs a C++20 compiler; {cxx!r} is not on PATH (set CXX)")
    version = _run([found, "-dumpfullversion"]).stdout.strip()
    machine = _run([found, "-dumpmachine"]).stdout.strip()
    return f"{found} {version} {machine}"


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=False)


def build_library(source: Path, name_expressions: tuple[str, ...], sanitize: bool) -> Library:
    """Compile `source` unless an identical build is cached; see the module docstring."""
    source = Path(source).resolve()
    cxx = compiler()
    identity = _compiler_identity(cxx)
    code_flags = _SANITIZED if sanitize else _OPTIMIZED
    # -fno-working-directory: with -g, g++ -E would put the current directory into the cache key
    preprocess = ["-E", "-fno-working-directory", "-std=c++20", *code_flags, "-DDLCORE_EMU=1", f"-I{source.parent}"]
    result = _run([cxx, *preprocess, "-x", "c++", str(source)])
    if result.returncode != 0:
        raise CompileError(f"{cxx} could not preprocess {source}:\n{result.stderr}")
    try:
        translation = translate(result.stdout, tuple(name_expressions), str(source))
    except RewriteError as exc:
        raise CompileError(f"cannot translate {source} for the emulator: {exc}") from exc

    header = header_path()
    flags = [*_LIBRARY_FLAGS, *code_flags]
    key = hashlib.sha256()
    for part in (_CACHE_FORMAT, identity, " ".join(flags), header.read_text(), translation.source):
        key.update(part.encode())
        key.update(b"\0")
    suffix = "-asan" if sanitize else ""
    target = cache_dir() / f"{source.stem}-{key.hexdigest()[:24]}{suffix}.so"
    compiled = not target.exists()
    if compiled:
        _compile(cxx, flags, header, translation.source, target, source, name_expressions)
    return Library(target, source, tuple(translation.kernels), sanitize, compiled)


def _compile(
    cxx: str, flags: list[str], header: Path, text: str, target: Path, source: Path, name_expressions: tuple[str, ...]
) -> None:
    """Compile `text` to a private file name, then rename it to `target` (atomic on POSIX)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = f".{target.stem}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    cpp, so = target.with_name(scratch + ".cpp"), target.with_name(scratch + ".so")
    try:
        cpp.write_text(text)
        command = [cxx, *flags, "-include", str(header), "-x", "c++", str(cpp), "-x", "none", "-o", str(so)]
        result = _run(command)
        if result.returncode != 0:
            hint = ""
            if KERNEL_TABLE_FILE in result.stderr:
                requested = ", ".join(name_expressions) or "none"
                hint = f"\n(errors in {KERNEL_TABLE_FILE} come from the kernel names; name expressions: {requested})"
            raise CompileError(f"{cxx} could not compile {source} for the emulator:\n{result.stderr}{hint}")
        os.replace(so, target)
    finally:
        cpp.unlink(missing_ok=True)
        so.unlink(missing_ok=True)
