"""Where one training step of the notes' network spends its time: dlcore beside PyTorch.

Each row is one step of dlcore's execution plan (a layer, or conv + ReLU + max pool, which
the graph engine runs as one; PyTorch's modules are grouped to match), timed forward and
backward inside real training steps, plus
the loss and the optimizer update. Times are medians (or, with --statistic min, minima)
over the timed steps, in ms.

  dlcore   every layer's forward and backward is wrapped with a timer
  PyTorch  the step runs layer by layer on a graph cut at each layer boundary (each
           layer's input is a detached leaf), so that each layer's autograd backward
           can be timed on its own; the gradients are the same as in the uncut step

"whole step" is the same statistic of ordinary, untimed steps (dlcore: benchmarks/steps.py's
step; PyTorch: the uncut graph), so the cost of the timers shows as its difference
from the sum of the rows. Each framework runs in its own subprocess.

    python -m benchmarks.breakdown --batch 32
    python -m benchmarks.breakdown --batch 128 --steps 30 --json breakdown.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections import defaultdict

LAYERS = ("conv1+pool1", "conv2+pool2", "flatten", "fc1", "dropout", "fc2")  # dlcore's plan steps
TORCH_GROUPS = {  # indices into benchmarks.steps.torch_network()
    "conv1+pool1": (0, 1, 2), "conv2+pool2": (3, 4, 5),
    "flatten": (6,), "fc1": (7, 8), "dropout": (9,), "fc2": (10,),
}
ROWS = LAYERS + ("loss", "optimizer")


class Timings:
    """Seconds per (row, phase) within the current step, collected over many steps."""

    def __init__(self):
        self.current = defaultdict(float)
        self.steps: list[dict] = []

    def add(self, row: str, phase: str, seconds: float):
        self.current[(row, phase)] += seconds

    def end_step(self):
        self.steps.append(dict(self.current))
        self.current.clear()

    def summary_ms(self, statistic) -> dict[str, dict[str, float]]:
        """{row: {phase: statistic over the steps, in ms}}."""
        keys = {key for step in self.steps for key in step}
        table: dict[str, dict[str, float]] = defaultdict(dict)
        for row, phase in keys:
            table[row][phase] = 1e3 * statistic([step.get((row, phase), 0.0) for step in self.steps])
        return dict(table)


def _timed(function, timings: Timings, row: str, phase: str):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        timings.add(row, phase, time.perf_counter() - start)
        return result

    return wrapper


STATISTICS = {"median": statistics.median, "min": min}


def _step_ms(step, repeats: int, statistic) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1e3 * statistic(times)


def _measure(framework, batch, statistic, timings, step, plain_step, steps: int, warmup: int) -> dict:
    """Warm up, then time `steps` instrumented steps (per-layer rows) and as many plain ones
    (the whole-step figure, free of the timers' overhead)."""
    for _ in range(warmup):
        step()
        plain_step()
    timings.steps.clear()
    for _ in range(steps):
        step()
        timings.end_step()
    return {"framework": framework, "batch": batch, "statistic": statistic,
            "rows": timings.summary_ms(STATISTICS[statistic]),
            "whole_step_ms": _step_ms(plain_step, steps, STATISTICS[statistic])}


def dlcore_breakdown(batch: int, steps: int, warmup: int, statistic: str, backend: str) -> dict:
    import dlcore
    from benchmarks.steps import dlcore_train_step, dlcore_training

    dlcore.set_backend(backend)
    plain_step = dlcore_train_step(batch)
    model, optimizer, loss_fn, x, y = dlcore_training(batch)

    timings = Timings()
    for step in model.plan().steps:  # the engine's steps: conv + ReLU + max pool run as one
        step.forward = _timed(step.forward, timings, step.name, "forward")
        step.backward = _timed(step.backward, timings, step.name, "backward")
    loss_forward = _timed(loss_fn, timings, "loss", "forward")
    loss_backward = _timed(loss_fn.backward, timings, "loss", "backward")
    optimizer_step = _timed(optimizer.step, timings, "optimizer", "update")

    def step():
        loss_forward(model(x), y)
        model.backward(loss_backward())
        optimizer_step()

    return _measure("dlcore", batch, statistic, timings, step, plain_step, steps, warmup)


def torch_breakdown(batch: int, steps: int, warmup: int, statistic: str) -> dict:
    import torch

    from benchmarks.steps import synthetic_batch, torch_train_step

    plain_step = torch_train_step(batch)
    torch.manual_seed(0)
    network = torch_network_groups()
    optimizer = torch.optim.Adam([p for group in network.values() for p in group.parameters()], lr=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    images, labels = synthetic_batch(batch)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    timings = Timings()

    def clock(row, phase, function, *args):
        start = time.perf_counter()
        result = function(*args)
        timings.add(row, phase, time.perf_counter() - start)
        return result

    def step():
        clock("optimizer", "update", optimizer.zero_grad, True)
        inputs, outputs, value = [], [], x
        for name, group in network.items():
            value = value.detach().requires_grad_(bool(inputs))  # the first layer needs no input gradient
            inputs.append(value)
            value = clock(name, "forward", group, value)
            outputs.append(value)
        logits = value.detach().requires_grad_(True)
        loss = clock("loss", "forward", loss_fn, logits, y)
        clock("loss", "backward", loss.backward)
        grad = logits.grad
        for name, layer_input, output in zip(reversed(network), reversed(inputs), reversed(outputs)):
            clock(name, "backward", torch.autograd.backward, output, grad)
            grad = layer_input.grad
        clock("optimizer", "update", optimizer.step)

    return {**_measure("torch", batch, statistic, timings, step, plain_step, steps, warmup),
            "threads": torch.get_num_threads()}


def torch_network_groups():
    """benchmarks.steps.torch_network() cut into dlcore's layers: {name: nn.Sequential}."""
    from torch import nn

    from benchmarks.steps import torch_network

    modules = list(torch_network().train())
    return {name: nn.Sequential(*(modules[i] for i in indices)) for name, indices in TORCH_GROUPS.items()}


def _in_subprocess(framework: str, batch: int, steps: int, warmup: int, statistic: str, backend: str) -> dict:
    call = (f"dlcore_breakdown({batch}, {steps}, {warmup}, {statistic!r}, {backend!r})" if framework == "dlcore"
            else f"torch_breakdown({batch}, {steps}, {warmup}, {statistic!r})")
    code = f"import json, benchmarks.breakdown as b; print(json.dumps(b.{call}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{framework} breakdown failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _row_total(row: dict) -> float:
    return sum(row.values())


def format_table(results: list[dict]) -> str:
    by_name = {r["framework"]: r for r in results}
    names = [n for n in ("dlcore", "torch") if n in by_name]
    header = f"{'':<11}" + "".join(f"{n + ' fwd':>12}{n + ' bwd':>12}" for n in names)
    header += f"{'torch/dlcore':>14}" if len(names) == 2 else ""
    lines = [header]
    sums = {n: [0.0, 0.0] for n in names}
    for row in ROWS:
        line = f"{row:<11}"
        for n in names:
            cells = by_name[n]["rows"].get(row, {})
            first = cells.get("update", cells.get("forward", 0.0))
            second = cells.get("backward", 0.0)
            sums[n][0] += first
            sums[n][1] += second
            line += f"{first:>12.2f}{second:>12.2f}" if row != "optimizer" else f"{first:>12.2f}{'':>12}"
        if len(names) == 2:
            mine, theirs = (_row_total(by_name[n]["rows"].get(row, {})) for n in names)
            line += f"{theirs / mine:>14.2f}" if mine > 0 else ""
        lines.append(line)
    line = f"{'sum':<11}" + "".join(f"{sums[n][0]:>12.2f}{sums[n][1]:>12.2f}" for n in names)
    if len(names) == 2:
        line += f"{sum(sums['torch']) / sum(sums['dlcore']):>14.2f}"
    lines.append(line)
    line = f"{'whole step':<11}" + "".join(f"{by_name[n]['whole_step_ms']:>24.2f}" for n in names)
    if len(names) == 2:
        line += f"{by_name['torch']['whole_step_ms'] / by_name['dlcore']['whole_step_ms']:>14.2f}"
    lines.append(line)
    batch = results[0]["batch"]
    lines.append(f"{'images/s':<11}" + "".join(f"{1e3 * batch / by_name[n]['whole_step_ms']:>24.0f}" for n in names))
    lines.append("(optimizer: the update's time sits in the fwd column; PyTorch's includes zero_grad)")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per framework")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--statistic", choices=tuple(STATISTICS), default="median",
                        help="over the timed steps (min resists a busy machine)")
    parser.add_argument("--backend", default="numpy", help="dlcore backend (numpy, cupy, emu)")
    parser.add_argument("--framework", choices=("dlcore", "torch", "both"), default="both")
    parser.add_argument("--json", help="also save the results here")
    args = parser.parse_args(argv)

    frameworks = ("dlcore", "torch") if args.framework == "both" else (args.framework,)
    results = [_in_subprocess(f, args.batch, args.steps, args.warmup, args.statistic, args.backend)
               for f in frameworks]
    print(f"batch {args.batch}, {args.statistic} of {args.steps} steps, ms")
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)
        print(f"saved {args.json}")


if __name__ == "__main__":
    main()
