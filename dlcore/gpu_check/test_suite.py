"""Step gpu_tests: the gpu-marked tests of the source checkout, run by pytest in a subprocess,
counted from its JUnit XML."""
from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import dlcore
from dlcore.gpu_check.report import StepResult

REPOSITORY = Path(dlcore.__file__).resolve().parents[1]
LOG_TAIL_LINES = 30


def run_gpu_tests(paths: list[str], out_dir: Path) -> StepResult:
    """pytest -m gpu over `paths` (default: all of tests/) in the checkout dlcore is imported from."""
    start = time.perf_counter()
    if not (REPOSITORY / "tests").is_dir():
        return StepResult("gpu_tests", "skipped", f"no tests/ beside the dlcore package in {REPOSITORY}: "
                          "run from a source checkout (pip install -e .)")
    junit = out_dir / "gpu_tests.xml"
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider",
               f"--junitxml={junit}", *paths]  # fmt: skip
    run = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True)
    log = run.stdout + run.stderr
    (out_dir / "gpu_tests.log").write_text(log)
    counts, skip_reasons = _junit_counts(junit) if junit.exists() else ({}, [])
    details = {"command": " ".join(command), "exit_code": run.returncode, **counts}
    tail = "\n".join(log.splitlines()[-LOG_TAIL_LINES:])
    seconds = time.perf_counter() - start
    if run.returncode not in (0, 5) or not counts:
        return StepResult("gpu_tests", "failed", f"pytest exited with {run.returncode}: {_counted(counts)}",
                          seconds, details, tail)
    if counts["passed"] == 0:
        why = "; ".join(sorted(set(skip_reasons))) or "no gpu-marked test was collected"
        return StepResult("gpu_tests", "skipped", f"{_counted(counts)}: {why}", seconds, details, tail)
    return StepResult("gpu_tests", "passed", _counted(counts), seconds, details, tail)


def _junit_counts(junit: Path) -> tuple[dict, list[str]]:
    """{'passed', 'failed', 'skipped'} counts and the skip messages of a pytest JUnit XML file."""
    cases = list(ElementTree.parse(junit).iter("testcase"))
    failed = sum(1 for case in cases if case.find("failure") is not None or case.find("error") is not None)
    skips = [case.find("skipped") for case in cases if case.find("skipped") is not None]
    reasons = [skip.get("message", "").removeprefix("Skipped: ") for skip in skips]
    return {"passed": len(cases) - failed - len(skips), "failed": failed, "skipped": len(skips)}, reasons


def _counted(counts: dict) -> str:
    return ", ".join(f"{counts.get(key, 0)} {key}" for key in ("passed", "failed", "skipped"))
