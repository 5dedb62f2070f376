"""pytest-benchmark suite of the notes' network: `python -m pytest benchmarks`.

Training steps at batch 32 and 128 and inference at batch 1000, for dlcore on each
available backend and for PyTorch's CPU build when torch is installed.
"""
import importlib.util

import pytest

import dlcore
from benchmarks.steps import FACTORIES

CASES = [("train", 32), ("train", 128), ("infer", 1000)]
BACKENDS = [b for b in dlcore.available_backends() if b != "emu"]  # emu is for correctness, not speed


@pytest.mark.parametrize("mode,batch", CASES, ids=[f"{m}{b}" for m, b in CASES])
@pytest.mark.parametrize("backend", BACKENDS)
def test_dlcore(benchmark, backend, mode, batch):
    with dlcore.use_backend(backend):
        run = FACTORIES[("dlcore", mode)](batch)
        benchmark.extra_info["images_per_step"] = batch
        benchmark(run)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
@pytest.mark.parametrize("mode,batch", CASES, ids=[f"{m}{b}" for m, b in CASES])
def test_torch_cpu(benchmark, mode, batch):
    run = FACTORIES[("torch", mode)](batch)
    benchmark.extra_info["images_per_step"] = batch
    benchmark(run)
