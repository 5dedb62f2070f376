"""Shared memory: every declaration form, NaN fill, and the per-block size limit."""
import numpy as np
import pytest

from dlcore import emu


def test_static_shared_declaration_forms(shared_forms):
    x = np.arange(8, dtype=np.float32)
    out = np.full((7, 8), np.nan, np.float32)
    shared_forms.get_function("emu_test::static_forms")((2,), (8,), (x, out))
    t = np.arange(8)
    np.testing.assert_array_equal(out[0], x[::-1])  # __align__(16) array
    np.testing.assert_array_equal(out[1], 8)  # static __shared__ int, counted by atomicAdd
    np.testing.assert_array_equal(out[2], np.where(t < 4, 10.0 * t, 100.0 * t))  # two declarators
    np.testing.assert_array_equal(out[3], 3)  # volatile
    np.testing.assert_array_equal(out[4], (t % 3) * 5 + t % 5)  # 2-D
    np.testing.assert_array_equal(out[5], np.where(t < 4, 3.0, 2.0))  # one array per instantiation
    np.testing.assert_array_equal(out[6], 0)  # aligned, and the two instantiations are distinct


def test_dynamic_shared_declaration_forms(shared_forms):
    out = np.full(32, np.nan, np.float32)
    shared_forms.get_function("dynamic_forms")((1,), (32,), (out, np.int32(8)), shared_mem=32 * 4)
    np.testing.assert_array_equal(out, np.arange(32))


def test_kernel_named_like_an_emulator_internal(shared_forms):
    out = np.zeros(4, np.float32)
    shared_forms.get_function("work")((1,), (4,), (out,))
    np.testing.assert_array_equal(out, 1)


def test_uninitialised_shared_memory_reads_as_nan(basics):
    out = np.zeros(64, np.float32)
    basics.get_function("read_before_write")((3,), (64,), (out,))
    assert np.isnan(out).all()


def test_dynamic_shared_memory_over_48_kib_is_refused_before_running(basics):
    y = np.zeros(256, np.float32)
    x = np.ones(256, np.float32)
    with pytest.raises(emu.LaunchError, match=r"reverse_in_block.*65536 bytes of dynamic shared memory.*49152") as info:
        basics.get_function("reverse_in_block")((1,), (256,), (x, y, np.int32(256)), shared_mem=64 * 1024)
    assert isinstance(info.value, ValueError)
    assert (y == 0).all()


def test_static_plus_dynamic_shared_memory_over_the_limit(basics):
    kernel = basics.get_function("big_static_shared")
    out = np.zeros(64, np.float32)
    kernel((1,), (64,), (out,), shared_mem=1024)  # 32 KiB static + 1 KiB: fine
    np.testing.assert_array_equal(out, np.arange(64)[::-1])
    pattern = r"big_static_shared.*32768 bytes of static and 32768 bytes of dynamic shared memory, 65536 in all"
    with pytest.raises(emu.LaunchError, match=pattern):
        kernel((1,), (64,), (out,), shared_mem=32 * 1024)
