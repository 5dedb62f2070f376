"""Step sanitizers: compute-sanitizer's memcheck and racecheck over one training step
(dlcore.gpu_check.one_step) in a process of its own; a tool's error makes the step fail."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from dlcore.gpu_check.report import StepResult

TOOLS = ("memcheck", "racecheck")
_ERROR_SUMMARY = re.compile(r"ERROR SUMMARY: (\d+) errors?")
LOG_TAIL_LINES = 15


def run_sanitizers(backend: str, batch_size: int, out_dir: Path) -> StepResult:
    if backend != "cupy":
        return StepResult("sanitizers", "skipped", f"compute-sanitizer checks kernels on a GPU; backend {backend} "
                          "runs none (python -m dlcore.emu.sanitize runs the emulated kernels under ASan + UBSan)")
    executable = shutil.which("compute-sanitizer")
    if executable is None:
        return StepResult("sanitizers", "skipped", "compute-sanitizer is not on PATH (it comes with the CUDA "
                          "toolkit, e.g. /usr/local/cuda/bin)")
    return sanitize(executable, backend, TOOLS, batch_size, out_dir)


def sanitizer_command(executable: str, tool: str, backend: str, batch_size: int) -> list[str]:
    return [executable, "--tool", tool, "--error-exitcode", "1", sys.executable, "-m", "dlcore.gpu_check.one_step",
            "--backend", backend, "--batch-size", str(batch_size)]  # fmt: skip


def sanitize(executable: str, backend: str, tools, batch_size: int, out_dir: Path) -> StepResult:
    """Run one training step under each compute-sanitizer tool; logs go to out_dir/sanitizer_<tool>.log."""
    start = time.perf_counter()
    outcomes, failures, tails = {}, [], []
    for tool in tools:
        command = sanitizer_command(executable, tool, backend, batch_size)
        run = subprocess.run(command, capture_output=True, text=True)
        log = run.stdout + run.stderr
        (out_dir / f"sanitizer_{tool}.log").write_text(log)
        errors = [int(count) for count in _ERROR_SUMMARY.findall(log)]
        outcomes[tool] = {"command": " ".join(command), "exit_code": run.returncode,
                          "errors": errors[-1] if errors else None}
        if run.returncode != 0 or not errors or errors[-1]:
            failures.append(f"{tool}: exit code {run.returncode}, "
                            f"{'no ERROR SUMMARY line' if not errors else f'{errors[-1]} errors'}")
            tails.append(f"--- {tool} ---\n" + "\n".join(log.splitlines()[-LOG_TAIL_LINES:]))
    summary = "; ".join(failures) or f"{', '.join(tools)}: 0 errors over one training step of batch {batch_size}"
    return StepResult("sanitizers", "failed" if failures else "passed", summary, time.perf_counter() - start,
                      outcomes, "\n".join(tails))
