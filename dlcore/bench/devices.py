"""Peak FP32 throughput and memory bandwidth of the machines the benchmark runs on: a GPU's
from its attributes (a table of known GPUs where the attributes are missing), the CPU's
measured with a large float32 matmul and a large copy."""
from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass

import numpy as np

from dlcore.backend import use_backend

# FP32 lanes per SM by compute capability (A100's sm_80 has 64; later chips 128).
FP32_LANES_PER_SM = {(7, 0): 64, (7, 5): 64, (8, 0): 64}
DEFAULT_FP32_LANES = 128
# (FP32 FLOP/s, bytes/s) of known GPUs, by a substring of the device name, first match wins.
KNOWN_GPUS = (
    ("H100 PCIe", 51.2e12, 2.0e12),
    ("H100", 66.9e12, 3.35e12),  # SXM5, 80 GB HBM3
    ("H200", 66.9e12, 4.8e12),
    ("A100", 19.5e12, 2.0e12),
)


@dataclass(frozen=True)
class Device:
    """Where a result was measured, and the peaks its rates are compared with (None: unknown)."""

    kind: str  # "cpu" or "gpu"
    name: str
    fp32_flops: float | None
    bytes_per_s: float | None
    source: str  # how the peaks were obtained

    def peak(self, unit: str) -> float | None:
        return self.fp32_flops if unit == "flop" else self.bytes_per_s

    def as_dict(self) -> dict:
        return asdict(self)


def _best_seconds(function, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_device(matmul_size: int = 2048, copy_mb: int = 256) -> Device:
    """The CPU, its peaks measured: a (n x n) @ (n x n) float32 matmul through NumPy's BLAS and
    a copy of `copy_mb` MB (read + write), best of 3 each."""
    rng = np.random.default_rng(0)
    a, b = (rng.random((matmul_size, matmul_size), dtype=np.float32) for _ in range(2))
    a @ b  # warm up the BLAS threads
    flops = 2.0 * matmul_size**3 / _best_seconds(lambda: a @ b)
    source = np.ones(copy_mb * 2**20 // 4, np.float32)
    target = np.empty_like(source)
    bandwidth = 2.0 * source.nbytes / _best_seconds(lambda: np.copyto(target, source))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    how = f"measured: {matmul_size}^3 float32 matmul (NumPy BLAS), {copy_mb} MB copy"
    return Device("cpu", f"{_cpu_name()} ({cores} cores)", flops, bandwidth, how)


# cudaDeviceAttr numbers, for CUDA builds whose device properties lack the clock fields
_ATTRIBUTES = {"clockRate": 13, "memoryClockRate": 36, "memoryBusWidth": 37}


def gpu_device() -> Device:
    """The current GPU of the cupy backend: FP32 peak = SMs * clock * FP32 lanes * 2 and
    bandwidth = memory clock * 2 (DDR) * bus width, from the device properties; a table of
    known GPUs otherwise."""
    with use_backend("cupy") as backend:
        cupy = backend.xp
    runtime = cupy.cuda.runtime
    device_id = cupy.cuda.Device().id
    props = runtime.getDeviceProperties(device_id)
    name = props["name"].decode()

    def value(key: str) -> int:
        if props.get(key):
            return int(props[key])
        try:
            return int(runtime.deviceGetAttribute(_ATTRIBUTES[key], device_id))
        except Exception:  # an attribute this CUDA version no longer has
            return 0

    sms, clock_khz = int(props["multiProcessorCount"]), value("clockRate")
    memory_khz, bus_bits = value("memoryClockRate"), value("memoryBusWidth")
    if clock_khz and memory_khz and bus_bits:
        lanes = FP32_LANES_PER_SM.get((props["major"], props["minor"]), DEFAULT_FP32_LANES)
        flops = sms * clock_khz * 1e3 * lanes * 2
        bandwidth = memory_khz * 1e3 * 2 * bus_bits / 8
        return Device("gpu", name, flops, bandwidth, f"device properties: {sms} SMs x {lanes} FP32 lanes")
    return known_gpu(name)


def known_gpu(name: str) -> Device:
    """A GPU's peaks from the table of known GPUs (None where it is not in the table)."""
    for known, flops, bandwidth in KNOWN_GPUS:
        if known in name:
            return Device("gpu", name, flops, bandwidth, f"table of known GPUs ({known})")
    return Device("gpu", name, None, None, "unknown: no clock properties and not in the table")
