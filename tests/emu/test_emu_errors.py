"""Kernel misbehaviour and build failures come back as exceptions; the process lives on."""
import numpy as np
import pytest

from dlcore import emu


@pytest.mark.parametrize(
    "kernel, message",
    [
        (
            "barrier_in_branch",
            r"divergent barrier.*threads 0-15 wait at __syncthreads \(.*races\.cu:\d+\); threads 16-63 have exited",
        ),
        (
            "two_barriers",
            r"divergent barrier.*thread 0 waits at __syncthreads \(.*races\.cu:\d+\); thread 1 waits at __syncthreads",
        ),
        (
            "shuffle_beside_barrier",
            r"divergent barrier.*threads 0-15 wait at __shfl_sync with mask 0xffffffff.*"
            r"threads 16-31 wait at __syncthreads",
        ),
        (
            "warp_masks_disagree",
            r"warp 0 lanes disagree on a warp operation.*threads 0-15 wait at __syncwarp with mask 0x0000ffff.*"
            r"threads 16-63 wait at __syncwarp with mask 0xffffffff",
        ),
        ("lane_outside_mask", r"thread 1 calls __syncwarp with mask 0x00000001 that leaves out its own lane 1"),
        ("trap", r"thread 5 called __trap\(\)"),
    ],
)
def test_misuse_raises_kernel_error_naming_kernel_block_and_threads(races, kernel, message):
    y = np.zeros(64, np.float32)
    with pytest.raises(emu.KernelError, match=rf"kernel '{kernel}' block \(\d+,0,0\).*{message}"):
        races.get_function(kernel)((3,), (64,), (y,))


def test_the_process_survives_a_kernel_error_and_launches_again(races, basics):
    y = np.zeros(64, np.float32)
    for workers in (1, 2):
        with emu.configured(workers=workers), pytest.raises(emu.KernelError, match="block"):
            races.get_function("barrier_in_branch")((50,), (64,), (y,))
    x = np.arange(1000, dtype=np.float32)
    out = np.zeros(1, np.float32)
    basics.get_function("block_sum")((4,), (256,), (x, out, np.int32(1000)))
    assert out[0] == x.sum()


def test_compile_error_names_the_file_and_shows_the_compiler_log(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCORE_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "broken_kernel.cu"
    source.write_text('extern "C" __global__ void broken(float* y) {\n    y[0] = undeclared_name;\n}\n')
    with pytest.raises(emu.CompileError) as info:
        emu.build_module(source)
    message = str(info.value)
    assert str(source) in message
    assert "broken_kernel.cu:2" in message and "undeclared_name" in message and "error" in message
    assert not list((tmp_path / "cache" / "emu").glob("*"))  # no partial library left behind


def test_missing_include_is_a_compile_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCORE_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "needs_header.cu"
    source.write_text('#include "not_there.cuh"\n')
    with pytest.raises(emu.CompileError, match=r"needs_header\.cu.*not_there\.cuh"):
        emu.build_module(source)


def test_unknown_name_expression_is_a_compile_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCORE_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "template_only.cu"
    source.write_text("template <typename T> __global__ void fill(T* y) { y[threadIdx.x] = T(1); }\n")
    pattern = r"(?s)template_only\.cu.*kernel table>:\d+:\d+: error: .::fil. has not been declared"
    pattern += r".*name expressions: fil<float>"
    with pytest.raises(emu.CompileError, match=pattern):
        emu.build_module(source, name_expressions=("fil<float>",))


def test_shared_memory_at_namespace_scope_is_refused_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCORE_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "file_scope_shared.cu"
    source.write_text('__shared__ float everywhere[32];\nextern "C" __global__ void k(float* y) {}\n')
    with pytest.raises(emu.CompileError, match=r"file_scope_shared\.cu:1: __shared__ variables at namespace scope"):
        emu.build_module(source)
