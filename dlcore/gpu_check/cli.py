"""The command line of `python -m dlcore.gpu_check`: options, the steps in order, the reports.

Exit status: 0 when no step failed, 1 when one did, 2 when the backend cannot run here (nothing
is run and no report is written)."""
from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import dlcore
from dlcore.backend import unavailable_reason
from dlcore.bench.workloads import WORKLOADS
from dlcore.gpu_check.kernels import run_kernel_benchmarks
from dlcore.gpu_check.report import write_reports
from dlcore.gpu_check.sanitizers import run_sanitizers
from dlcore.gpu_check.test_suite import run_gpu_tests
from dlcore.gpu_check.training import TrainingOptions, run_training

STEPS = ("gpu_tests", "training", "kernels", "sanitizers")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m dlcore.gpu_check",
        description="Validate a GPU machine end to end: the gpu-marked tests, a training run checked against "
        "the numpy backend, kernel benchmarks beside cuDNN, compute-sanitizer; writes gpu_check.json and .md.")
    parser.add_argument("--backend", default="cupy", choices=("cupy", "emu"),
                        help="cupy (default), or emu to run the same orchestration on the CPU emulator")
    parser.add_argument("--out", type=Path, default=Path("runs/gpu_check"), help="report folder (default runs/gpu_check)")
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS), help="steps to run (default: all)")
    parser.add_argument("--tests", nargs="*", default=[], metavar="PATH",
                        help="test paths for pytest -m gpu (default: all of tests/)")
    parser.add_argument("--iterations", type=int, default=2000, help="training iterations (default 2000)")
    parser.add_argument("--batch-size", type=int, default=32, help="training batch (default 32, the notes' recipe)")
    parser.add_argument("--compare-batches", type=int, default=50,
                        help="first batches whose losses must match the numpy backend's (default 50)")
    parser.add_argument("--loss-rtol", type=float, default=1e-3,
                        help="relative tolerance of that comparison (default 1e-3: float32 rounding over 50 steps)")
    parser.add_argument("--test-limit", type=int, help="evaluate on the first N test images (default: all 10,000)")
    parser.add_argument("--data-dir", type=Path, help="MNIST folder (default: DLCORE_DATA, then the download cache)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bench-batch", type=int, nargs="+", default=[32, 256],
                        help="kernel benchmark batch sizes (default 32 256)")
    parser.add_argument("--bench-ops", nargs="+", choices=[w.name for w in WORKLOADS],
                        default=[w.name for w in WORKLOADS], help="benchmarked workloads (default: all)")
    parser.add_argument("--sanitizer-batch", type=int, default=8, help="batch of the sanitized training step")
    args = parser.parse_args(argv)
    for name in ("iterations", "batch_size", "compare_batches", "sanitizer_batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    reason = unavailable_reason(args.backend)
    if reason is not None:
        print(f"gpu_check: the {args.backend} backend cannot run here: {reason}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    runners = {
        "gpu_tests": lambda: run_gpu_tests(args.tests, args.out),
        "training": lambda: run_training(TrainingOptions(
            args.backend, args.iterations, args.batch_size, args.compare_batches, args.loss_rtol, args.test_limit,
            args.data_dir, args.seed)),
        "kernels": lambda: run_kernel_benchmarks(args.backend, args.bench_batch, args.bench_ops),
        "sanitizers": lambda: run_sanitizers(args.backend, args.sanitizer_batch, args.out),
    }
    started, start, steps = datetime.now(timezone.utc).isoformat(timespec="seconds"), time.perf_counter(), []
    for name in (step for step in STEPS if step in args.steps):
        print(f"gpu_check: {name} ...", flush=True)
        steps.append(runners[name]())
        print(f"gpu_check: {name} {steps[-1].status}: {steps[-1].summary}", flush=True)
    header = {"backend": args.backend, "dlcore": dlcore.__file__, "python": platform.python_version(),
              "machine": platform.node(), "started": started,
              "seconds": round(time.perf_counter() - start, 1), "command": " ".join(["python -m dlcore.gpu_check", *(sys.argv[1:] if argv is None else argv)])}
    json_path, markdown_path = write_reports(args.out, header, steps)
    print(f"wrote {json_path} and {markdown_path}")
    return 1 if any(step.status == "failed" for step in steps) else 0
