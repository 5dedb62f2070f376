"""pytest-benchmark suite of the kernels: `python -m pytest benchmarks/test_kernels.py`.

Every pass of every dlcore.bench workload (conv1, conv2, fc1, pooling, batchnorm) at batch 32
and 128, for each kernel version, on each available backend but emu (emu checks correctness,
not speed), and PyTorch's kernels beside them where torch is installed. On a GPU every call
ends with a synchronize, so the wall time is the GPU's. `python -m dlcore.bench` prints the
same passes as one table with rates and fractions of peak.
"""
import importlib.util

import pytest

import dlcore
from dlcore.backend import get_backend
from dlcore.bench.workloads import WORKLOADS

BATCHES = (32, 128)
BACKENDS = [b for b in dlcore.available_backends() if b != "emu"]
PASSES = ("forward", "backward_data", "backward_weight", "backward")
DLCORE_CASES = [(backend, workload, version) for backend in BACKENDS for workload in WORKLOADS
                for version in workload.versions(backend)]  # fmt: skip
HAS_TORCH = importlib.util.find_spec("torch") is not None


def _named_pass(passes, name):
    for candidate in passes:
        if candidate.name == name:
            return candidate
    pytest.skip(f"no {name} pass here")


def _synchronized(run, backend: str):
    """`run`, then wait for the GPU on the cupy backend."""
    if backend != "cupy":
        return run
    stream = get_backend().xp.cuda.get_current_stream()
    return lambda: (run(), stream.synchronize())


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("pass_name", PASSES)
@pytest.mark.parametrize("backend, workload, version", DLCORE_CASES,
                         ids=[f"{b}-{w.name}-{v}" for b, w, v in DLCORE_CASES])  # fmt: skip
def test_dlcore(benchmark, backend, workload, version, pass_name, batch):
    with dlcore.use_backend(backend), workload.version_context(version):
        chosen = _named_pass(workload.dlcore_passes(batch), pass_name)
        benchmark.extra_info.update(work=chosen.work, unit=chosen.unit)
        benchmark(_synchronized(chosen.run, backend))


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("pass_name", PASSES)
@pytest.mark.parametrize("workload", WORKLOADS, ids=[w.name for w in WORKLOADS])
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_torch(benchmark, device, workload, pass_name, batch):
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA GPU for torch")
    passes = workload.torch_passes(batch, device)
    if not passes:
        pytest.skip(f"{workload.name} has no PyTorch counterpart here")
    chosen = _named_pass(passes, pass_name)
    run = chosen.run if device == "cpu" else (lambda: (chosen.run(), torch.cuda.synchronize()))
    benchmark.extra_info.update(work=chosen.work, unit=chosen.unit)
    benchmark(run)
