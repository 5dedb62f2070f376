"""Sanitized builds: AddressSanitizer and UBSan through `python -m dlcore.emu.sanitize`."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dlcore import emu
from dlcore.emu import sanitize

REPO = Path(__file__).resolve().parents[2]
KERNELS = Path(__file__).parent / "kernels"


@pytest.mark.skipif(sanitize.runtime_loaded(), reason="the ASan runtime is loaded in this process")
def test_sanitized_module_without_the_runtime_says_how_to_run(monkeypatch):
    with pytest.raises(emu.SanitizerError, match=r"python -m dlcore\.emu\.sanitize"):
        emu.build_module(KERNELS / "basics.cu", sanitize=True)
    monkeypatch.setenv("DLCORE_EMU_SANITIZE", "1")
    with pytest.raises(emu.SanitizerError, match="AddressSanitizer runtime"):
        emu.build_module(KERNELS / "basics.cu")


def test_sanitizer_environment():
    env = sanitize.sanitizer_env({"ASAN_OPTIONS": "abort_on_error=1", "PATH": os.environ["PATH"]})
    libraries = env["LD_PRELOAD"].split()
    assert [Path(p).name for p in libraries] == ["libasan.so", "libubsan.so"]
    assert all(Path(p).is_absolute() for p in libraries)
    assert env["ASAN_OPTIONS"] == "detect_leaks=0:abort_on_error=1"
    assert "halt_on_error=1" in env["UBSAN_OPTIONS"] and env["DLCORE_EMU_SANITIZE"] == "1"


@pytest.mark.slow
def test_emulator_suite_passes_under_the_sanitizers():
    pytest_args = ["tests/emu", "-m", "not slow", "-q", "-p", "no:cacheprovider"]
    command = [sys.executable, "-m", "dlcore.emu.sanitize", *pytest_args]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]


@pytest.mark.slow
@pytest.mark.parametrize("kernel, line", [("read_past_end", 8), ("shared_past_end", 15)])
def test_out_of_bounds_reads_are_reported_with_the_cu_line(kernel, line):
    script = (
        "import numpy as np; from dlcore import emu\n"
        f"m = emu.build_module({str(KERNELS / 'sanitize_oob.cu')!r})\n"
        "x = np.ones(1000, np.float32); y = np.zeros(1000, np.float32)\n"
        f"args = (x, y, np.int32(1000)) if {kernel!r} == 'read_past_end' else (y,)\n"
        f"m.get_function({kernel!r})((8,), (128,) if {kernel!r} == 'read_past_end' else (64,), args)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=sanitize.sanitizer_env(), capture_output=True, text=True, timeout=600
    )
    assert result.returncode != 0
    assert "ERROR: AddressSanitizer: heap-buffer-overflow" in result.stderr, result.stderr[-5000:]
    assert f"sanitize_oob.cu:{line}" in result.stderr, result.stderr[-5000:]
