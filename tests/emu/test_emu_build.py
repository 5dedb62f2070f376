"""Building and caching: the compiler runs only when something that matters changed."""
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dlcore import emu
from dlcore.emu.build import cache_dir

KERNEL = textwrap.dedent(
    """\
    #include "offset.cuh"
    extern "C" __global__ void add_offset(float* y, int n) {
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < n) y[i] += OFFSET;
    }
    """
)


@pytest.fixture
def kernel_copy(tmp_path, monkeypatch):
    """A small kernel file and its header in tmp_path, built into a fresh cache."""
    monkeypatch.setenv("DLCORE_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "offset.cuh").write_text("#define OFFSET 1.0f\n")
    source = tmp_path / "add_offset.cu"
    source.write_text(KERNEL)
    return source


def run_add_offset(module):
    y = np.zeros(10, np.float32)
    module.get_function("add_offset")((1,), (32,), (y, np.int32(10)))
    return y[0]


def test_second_build_reuses_the_cached_library(kernel_copy, tmp_path):
    first = emu.build_module(kernel_copy)
    mtime = first.library_path.stat().st_mtime_ns
    second = emu.build_module(kernel_copy)
    assert first.compiled and not second.compiled
    assert second.library_path == first.library_path and first.library_path.stat().st_mtime_ns == mtime
    assert first.library_path.parent == tmp_path / "cache" / "emu"
    assert [p.name for p in first.library_path.parent.iterdir()] == [first.library_path.name]  # no temp files
    assert run_add_offset(second) == 1.0


def test_editing_the_source_or_an_included_header_rebuilds(kernel_copy, tmp_path):
    original = emu.build_module(kernel_copy)
    kernel_copy.write_text(KERNEL.replace("+= OFFSET", "+= 2 * OFFSET"))
    edited = emu.build_module(kernel_copy)
    (tmp_path / "offset.cuh").write_text("#define OFFSET 5.0f\n")
    new_header = emu.build_module(kernel_copy)
    assert edited.compiled and new_header.compiled
    assert len({original.library_path, edited.library_path, new_header.library_path}) == 3
    assert (run_add_offset(original), run_add_offset(edited), run_add_offset(new_header)) == (1.0, 2.0, 10.0)


def test_concurrent_builds_of_the_same_file_all_succeed(kernel_copy):
    script = f"from dlcore import emu; emu.build_module({str(kernel_copy)!r}).get_function('add_offset')"
    processes = [subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errors = [p.communicate()[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], errors
    assert len(list(cache_dir().iterdir())) == 1


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("DLCORE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "dlcore" / "emu"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "dlcore" / "emu"
    monkeypatch.setenv("DLCORE_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine" / "emu"


def test_missing_compiler_is_a_compile_error(kernel_copy, monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler-g++")
    with pytest.raises(emu.CompileError, match="'no-such-compiler-g\\+\\+' is not on PATH"):
        emu.build_module(kernel_copy)
