"""The CUDA emulator: the project's .cu kernels compiled by g++ and run on the CPU.

    from dlcore import emu
    module = emu.build_module(path_to_cu, name_expressions=("scale<float>",))
    module.get_function("scale<float>")((blocks,), (256,), (x, np.float32(2), np.int32(n)))

The launch API is CuPy's RawModule/RawKernel, so an op's GPU launcher runs unchanged on the `cupy`
and `emu` backends. Modules: build (preprocess, compile, cache), rewrite (the `__shared__` and
kernel-table rewriting), launch (Module, Kernel, argument and launch checks), options (thread
order, workers, determinism), sanitize (the ASan/UBSan test command), errors. The C++ side is
kernels/emu/cuda_emu.h.
"""
from __future__ import annotations

from pathlib import Path

from dlcore.emu.build import build_library, cache_dir
from dlcore.emu.errors import CompileError, EmuError, KernelError, LaunchError, SanitizerError
from dlcore.emu.launch import Kernel, Module
from dlcore.emu.options import ORDERS, Options, configure, configured, options

__all__ = [
    "ORDERS",
    "CompileError",
    "EmuError",
    "Kernel",
    "KernelError",
    "LaunchError",
    "Module",
    "Options",
    "SanitizerError",
    "build_module",
    "cache_dir",
    "configure",
    "configured",
    "options",
]


def build_module(path, name_expressions=(), sanitize=None) -> Module:
    """Compile (or fetch from the cache) the kernel file `path` and load it.

    name_expressions: template instantiations to export, e.g. ("scale<float>", "scale<double>"),
    fetched later by the same string; every non-template __global__ function is exported too.
    sanitize: build with AddressSanitizer and UBSan; None reads DLCORE_EMU_SANITIZE. Loading a
    sanitized module needs the runtime preloaded: run through `python -m dlcore.emu.sanitize`.
    """
    # Imported here, not at the top: `python -m dlcore.emu.sanitize` runs that module as __main__.
    from dlcore.emu import sanitize as sanitizer

    if sanitize is None:
        sanitize = sanitizer.requested()
    if sanitize:
        sanitizer.require_runtime()
    return Module(build_library(Path(path), tuple(name_expressions), bool(sanitize)))
