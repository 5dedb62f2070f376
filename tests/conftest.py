"""Shared fixtures: the backends to test on and the MNIST data folder."""
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import dlcore
from dlcore.backend import unavailable_reason
from tests.robustness import summary_line

# Property tests: a fixed, reproducible search by default; HYPOTHESIS_PROFILE=fuzz for a long one.
settings.register_profile("default", max_examples=150, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

REPO = Path(__file__).resolve().parents[1]


def mnist_dir() -> Path | None:
    """DLCORE_DATA/mnist or DLCORE_DATA (flat) if set, else ../shared/datasets/mnist beside
    the repository, if present."""
    env = os.environ.get("DLCORE_DATA")
    candidates = [Path(env) / "mnist", Path(env)] if env else []
    for candidate in [*candidates, REPO.parent / "shared" / "datasets" / "mnist"]:
        if (candidate / "t10k-labels-idx1-ubyte.gz").exists():
            return Path(candidate)
    return None


@pytest.fixture
def mnist_path():
    path = mnist_dir()
    if path is None:
        pytest.skip("MNIST not found: set DLCORE_DATA or place ../shared/datasets/mnist")
    return path


@pytest.fixture(autouse=True)
def _restore_backend():
    """Every test starts and ends on the NumPy backend unless it switches explicitly."""
    with dlcore.use_backend("numpy"):
        yield


def pytest_collection_modifyitems(config, items):
    gpu_reason = unavailable_reason("cupy")  # None where the cupy backend can run
    for item in items:
        if gpu_reason and "gpu" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=gpu_reason))


def pytest_terminal_summary(terminalreporter):
    line = summary_line(len(terminalreporter.stats.get("failed", [])))
    if line:
        terminalreporter.write_line(line)
