"""Backend selection: explicit choice, then DLCORE_BACKEND, then cupy if usable, else numpy;
what the cupy backend reports when CuPy, a driver, a GPU or NVRTC is missing (on a fake CuPy
whose API is checked against the real one where CuPy is installed)."""
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

import dlcore
from dlcore import backend
from tests.robustness import rejects


@pytest.fixture
def unselected(monkeypatch):
    """No backend chosen yet and no DLCORE_BACKEND, as in a fresh process."""
    monkeypatch.setattr(backend, "_current", None)
    monkeypatch.delenv("DLCORE_BACKEND", raising=False)


def test_set_backend_selects_and_use_backend_restores():
    dlcore.set_backend("emu")
    assert dlcore.get_backend().name == "emu" and dlcore.get_backend().runs_kernels
    with dlcore.use_backend("numpy") as chosen:
        assert chosen.name == "numpy" and not chosen.runs_kernels and backend.xp() is np
    assert dlcore.get_backend().name == "emu"


def test_environment_variable_is_used_when_nothing_was_set(unselected, monkeypatch):
    monkeypatch.setenv("DLCORE_BACKEND", "emu")
    assert dlcore.get_backend().name == "emu"


def test_automatic_choice_is_cupy_only_when_a_gpu_is_usable(unselected):
    reason = backend.unavailable_reason("cupy")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chosen = dlcore.get_backend().name
    assert chosen == ("cupy" if reason is None else "numpy")
    fallbacks = [str(w.message) for w in caught if w.category is backend.BackendFallbackWarning]
    # a warning only where CuPy is installed (someone meant to use a GPU) but cannot run
    assert fallbacks == ([f"dlcore uses the numpy backend: {reason}"] if reason and backend.cupy else [])


def test_unknown_backend_is_a_clear_error():
    with rejects(backend.BackendUnavailableError, match="unknown backend 'torch'; choose one of numpy, cupy, emu"):
        dlcore.set_backend("torch")


def test_unknown_backend_in_the_environment_is_a_clear_error(unselected, monkeypatch):
    monkeypatch.setenv("DLCORE_BACKEND", "gpu")
    with rejects(backend.BackendUnavailableError, match="unknown backend 'gpu'"):
        dlcore.get_backend()


@pytest.mark.skipif(backend.unavailable_reason("cupy") is None, reason="a GPU is usable here")
def test_cupy_without_a_gpu_says_what_is_missing():
    # with the gpu extra on a machine without a GPU, the reason is the GPU, not a library
    expected = "there is no (usable )?GPU" if backend.cupy is not None else "CuPy is not installed: pip install"
    with rejects(backend.BackendUnavailableError, match=f"backend 'cupy' is unavailable: {expected}"):
        dlcore.set_backend("cupy")


def test_emu_without_a_compiler_says_what_is_missing(monkeypatch):
    monkeypatch.setenv("CXX", "no-such-g++")
    with rejects(backend.BackendUnavailableError, match="needs a C\\+\\+20 compiler; 'no-such-g\\+\\+' is not on PATH"):
        dlcore.set_backend("emu")


def test_numpy_backend_runs_no_kernels():
    with rejects(backend.BackendUnavailableError, match="runs no CUDA kernels"):
        backend.load_module("activation.cu")


def test_to_backend_and_to_numpy_round_trip():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with dlcore.use_backend("emu"):
        moved = backend.to_backend(x)
        np.testing.assert_array_equal(backend.to_numpy(moved), x)


class FakeCudaRuntimeError(RuntimeError):
    pass


class FakeCompileException(Exception):
    def get_message(self):
        return "conv.cu(12): error: identifier \"tile\" is undefined"


def fake_cupy(driver=12040, built_for=12090, devices=1, device_error=None, nvrtc=(12, 9)):
    """A stand-in for the parts of CuPy that backend.py calls; `nvrtc` is NVRTC's version, or
    the exception that loading it raises."""

    def nvrtc_version():
        if isinstance(nvrtc, Exception):
            raise nvrtc
        return nvrtc

    def device_count():
        if device_error:
            raise FakeCudaRuntimeError(device_error)
        return devices

    class RawModule:
        def __init__(self, code, options, name_expressions):
            self.options = options

        def compile(self):
            raise FakeCompileException("NVRTC_ERROR_COMPILATION")

    runtime = SimpleNamespace(runtimeGetVersion=lambda: built_for, driverGetVersion=lambda: driver,
                              getDeviceCount=device_count, CUDARuntimeError=FakeCudaRuntimeError)
    cuda = SimpleNamespace(runtime=runtime, nvrtc=SimpleNamespace(getVersion=nvrtc_version),
                           compiler=SimpleNamespace(CompileException=FakeCompileException))
    return SimpleNamespace(cuda=cuda, RawModule=RawModule)


@pytest.mark.skipif(backend.cupy is None, reason="CuPy is not installed (pip install -e '.[gpu]')")
def test_the_fake_cupy_has_the_real_cupys_names():
    import cupy

    for path in ("cuda.runtime.runtimeGetVersion", "cuda.runtime.driverGetVersion", "cuda.runtime.getDeviceCount",
                 "cuda.runtime.CUDARuntimeError", "cuda.nvrtc.getVersion", "cuda.compiler.CompileException",
                 "RawModule"):  # fmt: skip
        target = cupy
        for name in path.split("."):
            target = getattr(target, name)
    assert isinstance(cupy.cuda.runtime.runtimeGetVersion(), int)


MISSING_NVRTC = RuntimeError('Failure finding "libnvrtc.so.13 or libnvrtc.so.12"')
CUPY_PROBLEMS = {
    "no driver": (dict(driver=0), "there is no GPU: no NVIDIA driver is installed"),
    "no device": (dict(device_error="cudaErrorNoDevice: no CUDA-capable device is detected"),
                  "there is no usable GPU: the NVIDIA driver \\(CUDA 12.4\\) reports cudaErrorNoDevice"),
    "driver older than CuPy's CUDA": (
        dict(driver=12040, built_for=13000),
        "driver runs CUDA up to 12.4, but this CuPy is built for CUDA 13.0: update the NVIDIA driver, or "
        "pip uninstall -y cupy-cuda12x cupy-cuda13x nvidia-cuda-nvrtc-cu12 nvidia-cuda-nvrtc "
        "&& pip install -e '.\\[gpu\\]'"),
    "driver of CUDA 11": (dict(driver=11080), "update the NVIDIA driver to CUDA 12 or 13"),
    "no NVRTC": (dict(nvrtc=MISSING_NVRTC),
                 "CuPy cannot load NVRTC.*libnvrtc.so.12.*pip install 'nvidia-cuda-nvrtc-cu12==12.\\*'"),
    "no NVRTC for CUDA 13": (dict(driver=13000, built_for=13000, nvrtc=MISSING_NVRTC),
                             "pip install 'nvidia-cuda-nvrtc==13.\\*' \\(or pip install -e '.\\[gpu-cuda13\\]'\\)"),
    "NVRTC newer than the driver": (dict(nvrtc=(13, 0)),
                                    "NVRTC 13.0 makes kernels that the NVIDIA driver \\(CUDA 12.4\\) cannot load"),
}


@pytest.mark.parametrize("case", CUPY_PROBLEMS)
def test_each_cupy_problem_says_what_is_missing_and_how_to_fix_it(case, monkeypatch):
    settings, expected = CUPY_PROBLEMS[case]
    monkeypatch.setattr(backend, "cupy", fake_cupy(**settings))
    with rejects(backend.BackendUnavailableError, match=f"backend 'cupy' is unavailable: .*{expected}"):
        dlcore.set_backend("cupy")


def test_a_working_gpu_stack_is_chosen_automatically(unselected, monkeypatch):
    monkeypatch.setattr(backend, "cupy", fake_cupy())
    assert backend.unavailable_reason("cupy") is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dlcore.get_backend().name == "cupy"


def test_automatic_choice_falls_back_to_numpy_with_a_one_line_warning(unselected, monkeypatch):
    monkeypatch.setattr(backend, "cupy", fake_cupy(nvrtc=MISSING_NVRTC))
    with pytest.warns(backend.BackendFallbackWarning) as caught:
        assert dlcore.get_backend().name == "numpy"
    (message,) = [str(w.message) for w in caught]
    assert message.startswith("dlcore uses the numpy backend: CuPy cannot load NVRTC") and "\n" not in message


def test_without_cupy_the_automatic_choice_is_numpy_silently(unselected, monkeypatch):
    monkeypatch.setattr(backend, "cupy", None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dlcore.get_backend().name == "numpy"


def test_an_nvrtc_compile_error_names_the_file_and_shows_the_log(monkeypatch):
    monkeypatch.setattr(backend, "cupy", fake_cupy())
    with rejects(backend.KernelCompileError,
                 match="NVRTC failed to compile conv.cu \\(options -std=c\\+\\+17 -I.*kernels\\):\n"
                       "conv.cu\\(12\\): error: identifier"):
        backend._cupy_module(backend.kernels_dir() / "conv.cu", ("conv2d_forward<float>",))
