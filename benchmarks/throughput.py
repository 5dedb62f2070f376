"""Images/s and peak memory of the notes' network: dlcore beside PyTorch's CPU build.

Each (framework, mode, batch) runs in its own subprocesses, so peak memory is measured
per case: `peak_rss_mb` is the process's maximum resident set, `work_mb` its growth
over the resident set after imports (what the model, optimizer and step allocate).

A shared machine's speed drifts by 10-20% over minutes, so each case runs in --rounds
rounds that alternate the frameworks (dlcore, torch, dlcore, torch, ...), each timing
about --seconds / --rounds; images/s is the median over the rounds and the ratio the median
of the rounds' ratios, so that both frameworks see the same conditions.

    python -m benchmarks.throughput                      # batch 32 and 128 training, 1000 inference
    python -m benchmarks.throughput --json results.json
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time

CASES = (("train", 32), ("train", 128), ("infer", 1000))


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(framework: str, mode: str, batch: int, seconds: float, backend: str) -> dict:
    """Run in this process: warm up, then time whole steps for about `seconds`."""
    import resource

    if framework == "dlcore":
        import dlcore

        dlcore.set_backend(backend)
    else:
        import torch  # noqa: F401  (import before the baseline, as dlcore's numpy is)
    from benchmarks.steps import FACTORIES

    baseline = _rss_mb()
    run = FACTORIES[(framework, mode)](batch)
    for _ in range(3):
        run()
    steps, start = 0, time.perf_counter()
    while steps < 5 or time.perf_counter() - start < seconds:
        run()
        steps += 1
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"framework": framework, "mode": mode, "batch": batch, "steps": steps,
            "ms_per_step": 1e3 * elapsed / steps, "images_per_s": steps * batch / elapsed,
            "peak_rss_mb": peak, "work_mb": peak - baseline}


def _in_subprocess(framework, mode, batch, seconds, backend) -> dict:
    code = ("import json, benchmarks.throughput as t; "
            f"print(json.dumps(t.measure({framework!r}, {mode!r}, {batch}, {seconds}, {backend!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{framework} {mode} batch {batch} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_case(frameworks, mode: str, batch: int, seconds: float, rounds: int, backend: str) -> list[dict]:
    """One row per framework: medians over `rounds` alternating rounds, the largest peak
    memory, and for dlcore the median over rounds of its images/s over torch's."""
    runs = {f: [] for f in frameworks}
    for _ in range(rounds):
        for f in frameworks:
            runs[f].append(_in_subprocess(f, mode, batch, seconds / rounds, backend))
    rows = []
    for f, measured in runs.items():
        row = {key: statistics.median(r[key] for r in measured) for key in ("images_per_s", "ms_per_step")}
        row.update(framework=f, mode=mode, batch=batch, rounds=measured,
                   peak_rss_mb=max(r["peak_rss_mb"] for r in measured), work_mb=max(r["work_mb"] for r in measured))
        if f != "torch" and "torch" in runs:
            ratios = [mine["images_per_s"] / theirs["images_per_s"] for mine, theirs in zip(measured, runs["torch"])]
            row["ratio"] = statistics.median(ratios)
        rows.append(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="timed seconds per case and framework")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds the seconds are split into")
    parser.add_argument("--backend", default="numpy", help="dlcore backend (numpy, cupy, emu)")
    parser.add_argument("--json", help="also save the results here")
    args = parser.parse_args(argv)

    frameworks = ["dlcore"] + (["torch"] if importlib.util.find_spec("torch") else [])
    if len(frameworks) == 1:
        print("torch is not installed: measuring dlcore alone (pip install torch to compare)")
    results = [case for mode, batch in CASES
               for case in measure_case(frameworks, mode, batch, args.seconds, args.rounds, args.backend)]

    print(f"\n{'mode':<6}{'batch':>6}{'framework':>11}{'images/s':>11}{'ms/step':>10}"
          f"{'peak MB':>9}{'work MB':>9}{'ratio':>7}")
    for r in results:
        ratio = f"{r['ratio']:.2f}" if "ratio" in r else ""
        print(f"{r['mode']:<6}{r['batch']:>6}{r['framework']:>11}{r['images_per_s']:>11.0f}"
              f"{r['ms_per_step']:>10.1f}{r['peak_rss_mb']:>9.0f}{r['work_mb']:>9.0f}{ratio:>7}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)
        print(f"saved {args.json}")


if __name__ == "__main__":
    main()
