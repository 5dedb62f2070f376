"""python -m dlcore.gpu_check: its orchestration end to end on the emu backend at tiny sizes (the
GPU-only parts skipped with their reasons), its refusal without a GPU, and the checks that make
its steps fail."""
import json
import stat
import subprocess
import sys

import pytest

from dlcore import backend
from dlcore.gpu_check import cli
from dlcore.gpu_check.report import StepResult
from dlcore.gpu_check.sanitizers import sanitize
from dlcore.gpu_check.test_suite import REPOSITORY
from dlcore.gpu_check.training import batch_indices, losses_disagree

TINY = ["--backend", "emu", "--iterations", "3", "--batch-size", "2", "--compare-batches", "3", "--test-limit", "8",
        "--bench-batch", "1", "--bench-ops", "pool1", "--tests", "tests/ops/test_optim_update.py"]  # fmt: skip


def test_orchestration_runs_every_step_on_emu(mnist_path, tmp_path):
    command = [sys.executable, "-m", "dlcore.gpu_check", *TINY, "--data-dir", str(mnist_path), "--out", str(tmp_path)]
    run = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"wrote {tmp_path / 'gpu_check.json'} and {tmp_path / 'gpu_check.md'}" in run.stdout
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    steps = {step["name"]: step for step in report["steps"]}
    assert report["ok"] and report["backend"] == "emu" and list(steps) == list(cli.STEPS)

    tests = steps["gpu_tests"]  # the gpu-marked tests skip without a GPU, and say why
    assert tests["status"] == "skipped" and tests["details"]["skipped"] > 0 and tests["details"]["passed"] == 0
    training = steps["training"]["details"]
    assert steps["training"]["status"] == "passed" and training["compared_batches"] == 3
    assert training["largest_relative_difference"] <= 1e-3 and 0 <= training["test_accuracy"] <= 1
    assert training["test_images"] == 8 and training["images_per_second"] > 0
    kernels = steps["kernels"]
    assert kernels["status"] == "passed" and kernels["details"]["torch"] == "cuDNN needs a GPU (backend emu)"
    assert {(r["op"], r["pass_name"]) for r in kernels["details"]["results"]} == {("pool1", "forward"),
                                                                                ("pool1", "backward")}
    assert all(r["peak_fraction"] > 0 for r in kernels["details"]["results"])
    assert steps["sanitizers"]["status"] == "skipped" and "backend emu runs none" in steps["sanitizers"]["summary"]
    markdown = (tmp_path / "gpu_check.md").read_text()
    assert all(f"## {name}: {steps[name]['status']}" in markdown for name in cli.STEPS)


@pytest.mark.skipif(backend.unavailable_reason("cupy") is None, reason="a GPU is usable here")
def test_without_a_gpu_it_stops_at_once_with_the_reason(tmp_path, capsys):
    assert cli.main(["--out", str(tmp_path / "report")]) == 2
    reason = backend.unavailable_reason("cupy")
    assert capsys.readouterr().err.strip() == f"gpu_check: the cupy backend cannot run here: {reason}"
    assert not (tmp_path / "report").exists()


def test_a_sanitizer_error_fails_the_step_and_a_clean_run_passes(tmp_path):
    """compute-sanitizer stand-ins run the real one-step process (on emu) and print a summary."""
    def stand_in(name, errors):
        script = tmp_path / name
        # compute-sanitizer --tool T --error-exitcode 1 python -m ...: run the program, then summarize
        script.write_text(f'#!/bin/sh\nshift 4\n"$@" || exit $?\necho "========= ERROR SUMMARY: {errors} errors"\n'
                          f'[ {errors} -eq 0 ]\n')
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
        return str(script)

    clean = sanitize(stand_in("clean", 0), "emu", ("memcheck",), 1, tmp_path)
    assert clean.status == "passed", clean
    assert "one step on emu: loss" in (tmp_path / "sanitizer_memcheck.log").read_text()
    dirty = sanitize(stand_in("dirty", 3), "emu", ("racecheck",), 1, tmp_path)
    assert dirty.status == "failed" and dirty.summary == "racecheck: exit code 1, 3 errors"


def test_losses_that_differ_beyond_the_tolerance_are_reported():
    assert losses_disagree([2.3, 2.2], [2.3, 2.2 * (1 + 5e-4)], rtol=1e-3) == []
    assert losses_disagree([2.3, 2.2], [2.3, 2.21], rtol=1e-3) == ["batch 1: 2.2 vs numpy 2.21"]
    assert losses_disagree([float("nan")], [2.3], rtol=1e-3) == ["batch 0: nan vs numpy 2.3"]


def test_batches_cover_shuffled_epochs():
    batches = batch_indices(10, 4, 5, seed=0)  # 20 indices: two epochs of 10
    assert batches.shape == (5, 4)
    assert sorted(batches.ravel()[:10]) == list(range(10)) == sorted(batches.ravel()[10:])


def test_a_step_status_is_checked():
    with pytest.raises(ValueError, match="status must be one of"):
        StepResult("training", "ok", "")


def test_sizes_below_one_are_refused(capsys):
    with pytest.raises(SystemExit):
        cli.parse_args(["--iterations", "0"])
    assert "--iterations must be at least 1" in capsys.readouterr().err
