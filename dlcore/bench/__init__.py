"""Kernel benchmark of the notes' network: `python -m dlcore.bench` or `dlcore-bench`.

For each op (conv1 1->32 and conv2 32->64 5x5 forward / backward-data / backward-weight,
dense fc1 3136->1024 forward / backward, max pooling, batchnorm), each kernel version and
each batch size, on every available backend (numpy; cupy where a GPU is usable; emu with
--include-emu) and beside PyTorch where it is installed (its CPU kernels; on a GPU cuDNN and
cuBLAS with TF32 off and on), it prints the time per call, the rate (GFLOP/s for the GEMM-like
ops, GB/s for the memory-bound ones) and that rate as a fraction of the device's peak.

    python -m dlcore.bench                              # batch 32, 128 and 256
    python -m dlcore.bench --batch 32 --ops conv2 fc1
    python -m dlcore.bench --include-emu --batch 32     # the kernels on the CPU emulator
    python -m dlcore.bench --json results.json

Modules: workloads (the ops, their work and callables), devices (peaks), timing (clocks),
cli (the command line and table).
"""
from dlcore.bench.cli import main

__all__ = ["main"]
