"""Backend selection: explicit choice, then DLCORE_BACKEND, then cupy if usable, else numpy."""
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
    expected = "cupy" if backend.unavailable_reason("cupy") is None else "numpy"
    assert dlcore.get_backend().name == expected


def test_unknown_backend_is_a_clear_error():
    with rejects(backend.BackendUnavailableError, match="unknown backend 'torch'; choose one of numpy, cupy, emu"):
        dlcore.set_backend("torch")


def test_unknown_backend_in_the_environment_is_a_clear_error(unselected, monkeypatch):
    monkeypatch.setenv("DLCORE_BACKEND", "gpu")
    with rejects(backend.BackendUnavailableError, match="unknown backend 'gpu'"):
        dlcore.get_backend()


@pytest.mark.skipif(backend.unavailable_reason("cupy") is None, reason="a GPU is usable here")
def test_cupy_without_a_gpu_says_what_is_missing():
    with rejects(backend.BackendUnavailableError, match="backend 'cupy' is unavailable: CuPy"):
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
