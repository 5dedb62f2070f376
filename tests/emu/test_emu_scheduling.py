"""Thread order, workers and determinism: what the emulator's settings change, and why."""
import os

import numpy as np
import pytest

from dlcore import emu
from dlcore.emu.options import Options, options_from_env


def run_shift(races, x):
    y = np.full(x.size, np.nan, np.float32)
    races.get_function("shift_missing_sync")((x.size // 256,), (256,), (x, y, np.int32(x.size)))
    return y


def test_a_missing_syncthreads_shows_up_under_another_thread_order(races):
    x = np.arange(1, 1025, dtype=np.float32)
    intended = np.concatenate([[0], x[:-1]]).reshape(4, 256)
    intended[:, 0] = 0
    with emu.configured(order="forward"):
        assert np.array_equal(run_shift(races, x), intended.ravel())  # the bug hides
    wrong = []
    for order in ("reverse", "shuffled"):
        with emu.configured(order=order):
            wrong.append(not np.array_equal(run_shift(races, x), intended.ravel()))
    assert any(wrong) and all(wrong)


def test_shuffled_order_is_reproducible_for_a_seed(races):
    x = np.arange(1, 1025, dtype=np.float32)
    with emu.configured(order="shuffled", seed=7):
        first, second = run_shift(races, x), run_shift(races, x)
    with emu.configured(order="shuffled", seed=8):
        other = run_shift(races, x)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(np.isnan(first), np.isnan(other))


def test_correct_kernels_give_the_same_result_in_every_order(basics):
    rng = np.random.default_rng(1)
    A = rng.standard_normal((40, 23), dtype=np.float32)
    B = rng.standard_normal((23, 35), dtype=np.float32)
    results = []
    for order in emu.ORDERS:
        C = np.zeros((40, 35), np.float32)
        with emu.configured(order=order):
            basics.get_function("sgemm_tiled")((3, 3), (16, 16), (A, B, C, np.int32(40), np.int32(35), np.int32(23)))
        results.append(C)
    for C in results[1:]:
        np.testing.assert_array_equal(C, results[0])


def test_deterministic_mode_makes_float_atomics_bit_identical(basics):
    x = (np.random.default_rng(2).standard_normal(200_000) * 1e3).astype(np.float32)
    sums = []
    with emu.configured(deterministic=True, workers=4):
        assert emu.options().effective_workers == 1
        for _ in range(3):
            out = np.zeros(1, np.float32)
            basics.get_function("atomic_sum")((x.size // 256 + 1,), (256,), (x, out, np.int32(x.size)))
            sums.append(out.view(np.uint32)[0])
    assert sums[0] == sums[1] == sums[2]


def test_configure_returns_the_previous_settings_and_validates():
    before = emu.options()
    previous = emu.configure(order="reverse", workers=3)
    assert previous == before
    assert emu.options().order == "reverse" and emu.options().workers == 3
    assert emu.options().deterministic == before.deterministic  # untouched
    with pytest.raises(ValueError, match="thread order must be one of forward, reverse, shuffled"):
        emu.configure(order="sideways")
    with pytest.raises(ValueError, match="workers must be an int >= 1"):
        emu.configure(workers=0)


def test_settings_from_the_environment():
    env = {
        "DLCORE_EMU_ORDER": "Shuffled",
        "DLCORE_EMU_WORKERS": "3",
        "DLCORE_EMU_DETERMINISTIC": "1",
        "DLCORE_EMU_SEED": "9",
    }
    assert options_from_env(env) == Options(order="shuffled", workers=3, deterministic=True, seed=9)
    assert options_from_env({}).order == "forward" and not options_from_env({}).deterministic
    assert not options_from_env({"DLCORE_EMU_DETERMINISTIC": "0"}).deterministic
    with pytest.raises(ValueError, match="DLCORE_EMU_WORKERS must be an integer"):
        options_from_env({"DLCORE_EMU_WORKERS": "many"})


def test_a_forked_child_gets_its_own_worker_pool(basics):
    """The pool's threads do not survive fork(); the child must start its own, not wait forever."""
    x = np.arange(4096, dtype=np.float32)
    kernel = basics.get_function("block_sum")
    with emu.configured(workers=2):
        kernel((16,), (256,), (x, np.zeros(1, np.float32), np.int32(x.size)))  # the pool is running
        pid = os.fork()
        if pid == 0:  # child: launch on two workers, report by exit status only
            out = np.zeros(1, np.float32)
            kernel((16,), (256,), (x, out, np.int32(x.size)))
            os._exit(0 if out[0] == x.sum() else 1)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
