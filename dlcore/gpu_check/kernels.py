"""Step kernels: every benchmarked kernel (dlcore.bench's workloads) timed on the backend, with
its rate as a share of the device's FP32 peak or memory bandwidth, beside cuDNN / cuBLAS
through PyTorch where PyTorch sees a GPU."""
from __future__ import annotations

import importlib.util
import time
from dataclasses import asdict

from dlcore.bench.cli import Timing, compile_kernels, format_table, measure_dlcore, measure_torch
from dlcore.bench.devices import cpu_device, gpu_device
from dlcore.bench.workloads import WORKLOADS
from dlcore.gpu_check.report import StepResult

GPU_TIMING = Timing(calls=None, repeats=3, warmup=1)  # calls filling ~0.2 s, best of 3
EMU_TIMING = Timing(calls=1, repeats=1, warmup=0)  # the emulator runs every thread: one call


def torch_gpu_problem() -> str | None:
    """Why cuDNN cannot be compared here, or None."""
    if importlib.util.find_spec("torch") is None:
        return "PyTorch is not installed (pip install -e '.[bench]' on a GPU machine)"
    import torch

    if not torch.cuda.is_available():
        return f"PyTorch {torch.__version__} sees no CUDA GPU (a CPU build, or no GPU)"
    return None


def run_kernel_benchmarks(backend: str, batches: list[int], op_names: list[str]) -> StepResult:
    start = time.perf_counter()
    workloads = [w for w in WORKLOADS if w.name in op_names]
    on_gpu = backend == "cupy"
    # emu's rates are the emulator's, not the GPU's: the CPU's peaks, measured small and quickly
    devices = {"gpu": gpu_device()} if on_gpu else {"cpu": cpu_device(matmul_size=512, copy_mb=16)}
    compile_kernels(backend, workloads)
    results = measure_dlcore(backend, batches, workloads, GPU_TIMING if on_gpu else EMU_TIMING)
    torch_problem = torch_gpu_problem() if on_gpu else f"cuDNN needs a GPU (backend {backend})"
    if torch_problem is None:
        results += measure_torch("cuda", batches, workloads, GPU_TIMING)
    table = format_table(results, devices, workloads)
    comparison = "beside cuDNN / cuBLAS (PyTorch, TF32 off and on)" if torch_problem is None else (
        f"no cuDNN comparison: {torch_problem}")
    summary = f"{len(results)} timings of {', '.join(op_names)} at batch {', '.join(map(str, batches))}; {comparison}"
    details = {"devices": {kind: device.as_dict() for kind, device in devices.items()}, "torch": torch_problem,
               "results": [{**asdict(r), "rate": r.rate, "peak_fraction": r.peak_fraction(devices)} for r in results]}
    return StepResult("kernels", "passed", summary, time.perf_counter() - start, details, table)
