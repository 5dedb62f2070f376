"""The command line: run every workload pass on every backend and kernel version, print a
table (time, GFLOP/s or GB/s, fraction of the device's peak) and optionally save JSON."""
from __future__ import annotations

import argparse
import importlib.util
import json
from dataclasses import asdict, dataclass

from dlcore.backend import available_backends, unavailable_reason, use_backend
from dlcore.bench.devices import Device, cpu_device, gpu_device, known_gpu
from dlcore.bench.timing import CupyClock, TorchCudaClock, WallClock, seconds_per_call
from dlcore.bench.workloads import WORKLOADS

BATCHES = (32, 128, 256)
PASS_ORDER = ("forward", "backward_data", "backward_weight", "backward")
BACKEND_ORDER = ("numpy", "emu", "cupy", "torch-cpu", "torch-cuda")
UNITS = {"flop": ("GFLOP/s", 1e9), "byte": ("GB/s", 1e9)}


@dataclass(frozen=True)
class Result:
    op: str
    pass_name: str
    batch: int
    backend: str  # numpy, emu, cupy, torch-cpu, torch-cuda
    version: str  # kernel version, matmul provider, or TF32 setting
    device: str  # "cpu" or "gpu": whose peak `peak_fraction` divides by
    seconds: float  # per call
    work: float
    unit: str  # "flop" or "byte"

    @property
    def rate(self) -> float:
        return self.work / self.seconds

    def peak_fraction(self, devices: dict[str, Device]) -> float | None:
        peak = devices[self.device].peak(self.unit)
        return None if not peak else self.rate / peak


@dataclass(frozen=True)
class Timing:
    """How many calls to time: `calls` None picks a count that fills about 0.2 s."""

    calls: int | None
    repeats: int
    warmup: int


def measure_dlcore(backend: str, batches, workloads, timing: Timing) -> list[Result]:
    """Every pass of every workload, for each kernel version the backend has."""
    clock, device = (CupyClock(), "gpu") if backend == "cupy" else (WallClock(), "cpu")
    results = []
    with use_backend(backend):
        for batch in batches:
            for workload in workloads:
                for version in workload.versions(backend):
                    with workload.version_context(version):
                        for p in workload.dlcore_passes(batch):
                            seconds = seconds_per_call(p.run, clock, timing.calls, timing.repeats, timing.warmup)
                            results.append(Result(workload.name, p.name, batch, backend, version, device, seconds,
                                                  p.work, p.unit))  # fmt: skip
                            print(f"  {backend:<6} {workload.name:<6} {p.name:<16} batch {batch:<4} {version:<14} "
                                  f"{1e3 * seconds:10.3f} ms", flush=True)  # fmt: skip
    return results


def compile_kernels(backend: str, workloads) -> None:
    """Run every pass once at batch 1, so that compiling kernels stays out of the timings."""
    with use_backend(backend):
        for workload in workloads:
            for version in workload.versions(backend):
                with workload.version_context(version):
                    for p in workload.dlcore_passes(1):
                        p.run()


def measure_torch(device: str, batches, workloads, timing: Timing) -> list[Result]:
    """PyTorch's kernels on "cpu", or cuDNN / cuBLAS on "cuda" with TF32 off and on."""
    import torch

    settings = {"cpu": (None,), "cuda": (False, True)}[device]
    clock = TorchCudaClock() if device == "cuda" else WallClock()
    results = []
    for tf32 in settings:
        version = "aten" if tf32 is None else f"tf32-{'on' if tf32 else 'off'}"
        if tf32 is not None:
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = tf32
        for batch in batches:
            for workload in workloads:
                for p in workload.torch_passes(batch, device):
                    seconds = seconds_per_call(p.run, clock, timing.calls, timing.repeats, timing.warmup)
                    results.append(Result(workload.name, p.name, batch, f"torch-{device}", version,
                                          "gpu" if device == "cuda" else "cpu", seconds, p.work, p.unit))  # fmt: skip
    return results


def format_table(results: list[Result], devices: dict[str, Device], workloads) -> str:
    lines = []
    for kind, device in devices.items():
        flops = "?" if device.fp32_flops is None else f"{device.fp32_flops / 1e9:,.1f} GFLOP/s"
        bandwidth = "?" if device.bytes_per_s is None else f"{device.bytes_per_s / 1e9:,.1f} GB/s"
        lines.append(f"{kind}: {device.name}; FP32 peak {flops}, memory {bandwidth} ({device.source})")
    lines += [f"{w.name}: {w.description}" for w in workloads]
    header = (f"{'op':<6} {'pass':<16} {'batch':>5}  {'backend':<10} {'version':<14} {'time ms':>10} {'rate':>16} "
              f"{'of peak':>8}")
    lines += ["", header, "-" * len(header)]
    order = {w.name: i for i, w in enumerate(workloads)}
    previous = None
    for r in sorted(results, key=lambda r: (order[r.op], r.batch, PASS_ORDER.index(r.pass_name),
                                            BACKEND_ORDER.index(r.backend), r.version)):  # fmt: skip
        if previous is not None and (r.op, r.batch) != previous:
            lines.append("")
        previous = (r.op, r.batch)
        label, scale = UNITS[r.unit]
        fraction = r.peak_fraction(devices)
        share = "n/a" if fraction is None else f"{100 * fraction:.1f}%"
        lines.append(f"{r.op:<6} {r.pass_name:<16} {r.batch:>5}  {r.backend:<10} {r.version:<14} "
                     f"{1e3 * r.seconds:10.3f} {r.rate / scale:>8.1f} {label:<7} {share:>8}")  # fmt: skip
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="dlcore-bench",
        description="Time dlcore's kernels (conv, dense, pooling, batchnorm of the notes' network) on every "
        "available backend and kernel version, beside PyTorch where it is installed.",
    )
    names = [w.name for w in WORKLOADS]
    parser.add_argument("--batch", type=int, nargs="+", default=list(BATCHES), help="batch sizes (default: 32 128 256)")
    parser.add_argument("--ops", nargs="+", choices=names, default=names, help="workloads to run (default: all)")
    parser.add_argument("--backends", nargs="+", choices=("numpy", "cupy", "emu"),
                        help="dlcore backends (default: numpy, and cupy where a GPU is usable)")
    parser.add_argument("--include-emu", action="store_true",
                        help="also time the emu backend (the CUDA kernels on the CPU emulator: slow; use --batch 32)")
    parser.add_argument("--emu-iterations", type=int, default=1, help="timed calls per pass on emu (default 1)")
    parser.add_argument("--iterations", type=int, help="timed calls per pass elsewhere (default: enough for ~0.2 s)")
    parser.add_argument("--no-torch", action="store_true", help="leave out PyTorch even where it is installed")
    parser.add_argument("--json", metavar="PATH", help="also save the devices and results as JSON")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    workloads = [w for w in WORKLOADS if w.name in args.ops]
    usable = available_backends()
    backends = args.backends or [b for b in ("numpy", "cupy") if b in usable]
    if args.include_emu and "emu" not in backends:
        backends.append("emu")
    missing = [b for b in backends if b not in usable]
    if missing:
        raise SystemExit(f"dlcore-bench: backend {missing[0]} is unavailable here: {unavailable_reason(missing[0])}")
    print("measuring the CPU's peaks ...", flush=True)
    devices = {"cpu": cpu_device()}
    if "cupy" in backends:
        devices["gpu"] = gpu_device()
    timing = Timing(args.iterations, 3, 1)
    results = []
    for backend in backends:
        if backend == "emu":
            print("emu: compiling the kernels (one untimed run at batch 1) ...", flush=True)
            compile_kernels("emu", workloads)
            results += measure_dlcore("emu", args.batch, workloads, Timing(args.emu_iterations, 1, 0))
        else:
            results += measure_dlcore(backend, args.batch, workloads, timing)
    if not args.no_torch and importlib.util.find_spec("torch") is not None:
        import torch

        results += measure_torch("cpu", args.batch, workloads, timing)
        if torch.cuda.is_available():
            devices.setdefault("gpu", known_gpu(torch.cuda.get_device_name()))
            results += measure_torch("cuda", args.batch, workloads, timing)
    print()
    print(format_table(results, devices, workloads))
    if args.json:
        document = {
            "devices": {kind: device.as_dict() for kind, device in devices.items()},
            "workloads": {w.name: w.description for w in workloads},
            "results": [{**asdict(r), "rate": r.rate, "peak_fraction": r.peak_fraction(devices)} for r in results],
        }
        with open(args.json, "w") as handle:
            json.dump(document, handle, indent=1)
        print(f"\nsaved {args.json}")
    return 0
