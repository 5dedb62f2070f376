"""Backend dispatch: which array module runs the ops, and where CUDA kernels come from.

Three backends share one code path:
  numpy  NumPy arrays, NumPy reference ops (no kernels)
  cupy   CuPy arrays on a GPU, kernels/*.cu compiled by NVRTC through cupy.RawModule
  emu    NumPy arrays, the same kernels/*.cu compiled by g++ against the CPU emulator

Choice: `set_backend(name)`, else the DLCORE_BACKEND environment variable, else cupy
when a GPU is usable, else numpy. This is the only module that imports cupy.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.resources
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy

try:
    import cupy
except Exception:  # not installed, or installed without a loadable CUDA runtime
    cupy = None

BACKENDS = ("numpy", "cupy", "emu")
# What running out of memory raises on any backend (CuPy's error is no MemoryError).
OUT_OF_MEMORY_ERRORS = (MemoryError,) + ((cupy.cuda.memory.OutOfMemoryError,) if cupy is not None else ())


class BackendUnavailableError(RuntimeError):
    """The requested backend cannot run on this machine; the message says why."""


@dataclass(frozen=True)
class Backend:
    name: str
    xp: object  # the array module: numpy or cupy

    @property
    def runs_kernels(self) -> bool:
        """True where ops launch the CUDA kernels (cupy, emu) instead of NumPy code."""
        return self.name != "numpy"


# What installs the GPU backend for each CUDA major version (nvidia-smi's "CUDA Version" for a
# driver; runtimeGetVersion() for CuPy): the dlcore extra, and the NVRTC wheel it brings (CuPy's
# own wheels ship no NVRTC).
GPU_EXTRAS = {12: ("gpu", "nvidia-cuda-nvrtc-cu12==12.*"), 13: ("gpu-cuda13", "nvidia-cuda-nvrtc==13.*")}
GPU_WHEELS = "cupy-cuda12x cupy-cuda13x nvidia-cuda-nvrtc-cu12 nvidia-cuda-nvrtc"
PICK_AN_EXTRA = ("pip install -e '.[gpu]' for an NVIDIA driver of CUDA 12.x, -e '.[gpu-cuda13]' for CUDA 13.x "
                 "(nvidia-smi shows the driver's CUDA version)")


class KernelCompileError(RuntimeError):
    """NVRTC rejected a kernels/*.cu file; the message names the file and holds NVRTC's log."""


def _cuda_version(encoded: int) -> str:
    """CUDA's version integers: 12090 -> '12.9'."""
    return f"{encoded // 1000}.{encoded % 1000 // 10}"


def _cupy_problem() -> str | None:
    """Why the cupy backend cannot compile and launch kernels here, checked in the order a
    fix has to follow: CuPy, a driver, a visible GPU, a driver as new as CuPy's CUDA, NVRTC."""
    if cupy is None:
        return f"CuPy is not installed: {PICK_AN_EXTRA}"
    runtime = cupy.cuda.runtime
    built_for = runtime.runtimeGetVersion()  # e.g. 12090: CuPy's CUDA 12.9
    extra, nvrtc_requirement = GPU_EXTRAS.get(built_for // 1000, GPU_EXTRAS[12])
    driver = runtime.driverGetVersion()  # the newest CUDA the driver runs; 0 without a driver
    if driver == 0:
        return ("there is no GPU: no NVIDIA driver is installed (libcuda.so.1 is missing); "
                "use the numpy or emu backend here")
    try:
        gpus = runtime.getDeviceCount()
    except runtime.CUDARuntimeError as exc:
        return (f"there is no usable GPU: the NVIDIA driver (CUDA {_cuda_version(driver)}) reports {exc}; "
                f"check nvidia-smi and CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')}")
    if gpus == 0:
        return "there is no GPU: the NVIDIA driver sees none (check nvidia-smi and CUDA_VISIBLE_DEVICES)"
    if driver // 1000 < built_for // 1000:
        return (f"the NVIDIA driver runs CUDA up to {_cuda_version(driver)}, but this CuPy is built for CUDA "
                f"{_cuda_version(built_for)}: {_driver_fix(driver)}")
    try:
        nvrtc_major, nvrtc_minor = cupy.cuda.nvrtc.getVersion()
    except RuntimeError as exc:  # cuda-pathfinder's DynamicLibNotFoundError when no libnvrtc is found
        return (f"CuPy cannot load NVRTC, which compiles dlcore's kernels ({exc}): "
                f"pip install '{nvrtc_requirement}' (or pip install -e '.[{extra}]')")
    if nvrtc_major > driver // 1000:
        return (f"NVRTC {nvrtc_major}.{nvrtc_minor} makes kernels that the NVIDIA driver (CUDA "
                f"{_cuda_version(driver)}) cannot load: {_driver_fix(driver)}")
    return None


def _driver_fix(driver: int) -> str:
    """How to match the GPU wheels to the driver: the extra of the driver's CUDA, or a newer driver."""
    if driver // 1000 not in GPU_EXTRAS:
        return f"update the NVIDIA driver to CUDA {' or '.join(map(str, GPU_EXTRAS))}"
    extra, _ = GPU_EXTRAS[driver // 1000]
    return f"update the NVIDIA driver, or pip uninstall -y {GPU_WHEELS} && pip install -e '.[{extra}]'"


def _emu_problem() -> str | None:
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        return f"the emu backend needs a C++20 compiler; {compiler!r} is not on PATH (set CXX)"
    return None


def unavailable_reason(name: str) -> str | None:
    """Why backend `name` cannot run here, or None if it can."""
    if name not in BACKENDS:
        return f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}"
    return {"numpy": lambda: None, "cupy": _cupy_problem, "emu": _emu_problem}[name]()


def available_backends() -> list[str]:
    return [name for name in BACKENDS if unavailable_reason(name) is None]


def _make(name: str) -> Backend:
    reason = unavailable_reason(name)
    if reason is not None:
        raise BackendUnavailableError(f"backend {name!r} is unavailable: {reason}")
    return Backend(name, cupy if name == "cupy" else numpy)


_current: Backend | None = None


def set_backend(name: str) -> Backend:
    """Select the backend for every op that follows; raises if it cannot run here."""
    global _current
    _current = _make(name)
    return _current


def get_backend() -> Backend:
    global _current
    if _current is None:
        requested = os.environ.get("DLCORE_BACKEND")
        if requested:
            _current = _make(requested)
        else:
            _current = _make(_automatic_choice())
    return _current


class BackendFallbackWarning(UserWarning):
    """CuPy is installed but cannot run here, so the automatic choice is numpy."""


def _automatic_choice() -> str:
    """cupy when it can compile and launch kernels, else numpy; a one-line warning says why
    when CuPy is installed (someone meant to use a GPU) but cannot."""
    problem = _cupy_problem()
    if problem is None:
        return "cupy"
    if cupy is not None:
        warnings.warn(f"dlcore uses the numpy backend: {problem}", BackendFallbackWarning, stacklevel=3)
    return "numpy"


@contextlib.contextmanager
def use_backend(name: str):
    """Temporarily switch backend: `with use_backend("emu"): ...`."""
    global _current
    previous = _current
    set_backend(name)
    try:
        yield _current
    finally:
        _current = previous


def xp():
    """The array module of the current backend (numpy or cupy)."""
    return get_backend().xp


def to_numpy(array):
    """A NumPy copy (or view) of an array from any backend."""
    if cupy is not None and isinstance(array, cupy.ndarray):
        return cupy.asnumpy(array)
    return numpy.asarray(array)


def array_location(array) -> str:
    """'gpu' for a CuPy array, 'host' for anything else (NumPy arrays, lists, scalars)."""
    return "gpu" if cupy is not None and isinstance(array, cupy.ndarray) else "host"


_OTHER_FRAMEWORKS = ("torch", "jax", "jaxlib", "tensorflow", "mlx", "paddle")


def foreign_array_advice(array) -> str | None:
    """For an array of another framework (a torch.Tensor, a JAX or TensorFlow array, anything
    else with __dlpack__ that is not NumPy or CuPy): what it is and how to convert it. None for
    NumPy and CuPy arrays and for what is no array at all."""
    cls = type(array)
    package = cls.__module__.split(".")[0]
    if package in ("numpy", "cupy") or not (package in _OTHER_FRAMEWORKS or hasattr(array, "__dlpack__")):
        return None
    name = "torch.Tensor" if package == "torch" else f"{cls.__module__}.{cls.__qualname__}"
    convert = "x.detach().cpu().numpy()" if package == "torch" else "numpy.asarray(x)"
    return (f"got a {name}; dlcore computes on NumPy arrays (numpy and emu backends) and CuPy arrays "
            f"(cupy backend): convert it with {convert}, or share its memory through DLPack with "
            "numpy.from_dlpack(x) (CPU memory) or cupy.from_dlpack(x) (GPU memory)")


def check_location(owner: str, array) -> None:
    """Raise if `array` is another framework's array (a torch.Tensor: say how to convert it)
    or lives where the current backend does not compute (a NumPy array given to the cupy
    backend, or a CuPy array to numpy / emu)."""
    advice = foreign_array_advice(array)
    if advice is not None:
        raise TypeError(f"{owner}: {advice}")
    backend = get_backend()
    expected = "gpu" if backend.name == "cupy" else "host"
    found = array_location(array)
    if found != expected:
        kind = {"gpu": "a CuPy (GPU) array", "host": "a NumPy (host) array"}[found]
        raise TypeError(
            f"{owner}: got {kind}, but the {backend.name!r} backend computes on the "
            f"{expected}; move it with dlcore.backend.to_backend(x) (or to_numpy)")


def to_backend(array, dtype=None):
    """Move `array` to the current backend's array module (no copy if it is already there)."""
    return get_backend().xp.asarray(array, dtype=dtype)


def kernels_dir() -> Path:
    """Folder of the CUDA sources: the kernels/ beside this dlcore package in a source checkout,
    else the installed dlcore.kernels. The checkout comes first so that a second checkout (a git
    worktree) compiles its own kernels even when another checkout is the editable install,
    whose finder would map dlcore.kernels to that other checkout's kernels/."""
    checkout = Path(__file__).resolve().parents[1] / "kernels"
    if (checkout / "emu" / "cuda_emu.h").is_file():  # dlcore's own kernels/, not another package's
        return checkout
    return Path(str(importlib.resources.files("dlcore.kernels")))


def load_module(filename: str, name_expressions: tuple[str, ...] = ()):
    """The compiled kernel module of kernels/`filename` for the current backend.

    Compiled once per process (and cached on disk by NVRTC or the emulator); kernels
    are fetched with `module.get_function(name)` and launched as
    `kernel(grid, block, args, shared_mem=bytes)` on both cupy and emu.
    """
    return _load_module(get_backend().name, filename, tuple(name_expressions))


@functools.cache
def _load_module(backend_name: str, filename: str, name_expressions: tuple[str, ...]):
    path = kernels_dir() / filename
    if backend_name == "emu":
        from dlcore import emu

        return emu.build_module(path, name_expressions=name_expressions)
    if backend_name == "cupy":
        return _cupy_module(path, name_expressions)
    raise BackendUnavailableError(f"the {backend_name!r} backend runs no CUDA kernels")


def nvrtc_options(kernels_folder: Path) -> tuple[str, ...]:
    """The options the cupy backend gives NVRTC for every kernels/*.cu file (CuPy adds its own
    include folders, -ftz=true, -arch=sm_XX and --device-as-default-execution-space)."""
    return ("-std=c++17", f"-I{kernels_folder}")


def _cupy_module(path: Path, name_expressions: tuple[str, ...]):
    options = nvrtc_options(path.parent)
    module = cupy.RawModule(
        code=path.read_text(), options=options, name_expressions=name_expressions or None
    )
    try:
        module.compile()
    except cupy.cuda.compiler.CompileException as exc:
        raise KernelCompileError(
            f"NVRTC failed to compile {path.name} (options {' '.join(options)}):\n{exc.get_message()}") from exc
    return module
