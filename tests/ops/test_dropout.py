"""Inverted dropout: keep statistics, reproducible masks, scaling, gradients, errors."""

from pathlib import Path

import numpy as np
import pytest

from dlcore import emu
from dlcore.backend import use_backend
from dlcore.ops import dropout as dropout_ops
from dlcore.ops import dropout_backward, dropout_forward, philox4x32, uniform

from .op_check import THREAD_ORDERS, check_op_gradients, random_array, run_op
from .test_random import KNOWN_ANSWERS


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_keep_fraction_and_scale(backend, rate):
    x = np.ones((64, 32, 7, 7), np.float32)
    out, _ = run_op(backend, dropout_forward, [x], {"rate": rate, "seed": 11})
    kept = out != 0
    assert abs(kept.mean() - (1 - rate)) < 0.01  # ~5 standard deviations for 100k cells
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[kept], np.float32(1 / (1 - rate)))
    assert abs(out.mean() - 1) < 0.03  # inverted dropout keeps the expectation


def test_mask_is_the_uniform_stream_in_c_order(backend, rng):
    x = random_array(rng, (3, 5, 7))
    out, _ = run_op(backend, dropout_forward, [x], {"rate": 0.4, "seed": 2**40 + 3})
    keep = uniform(2**40 + 3, x.size).reshape(x.shape) >= np.float32(0.4)
    np.testing.assert_array_equal(out, np.where(keep, x * (1 / 0.6), 0))


def test_same_seed_same_mask_other_seed_other_mask(backend):
    x = np.ones((8, 100))
    first, _ = run_op(backend, dropout_forward, [x], {"rate": 0.5, "seed": 1})
    again, _ = run_op(backend, dropout_forward, [x], {"rate": 0.5, "seed": 1})
    other, _ = run_op(backend, dropout_forward, [x], {"rate": 0.5, "seed": 2})
    np.testing.assert_array_equal(first, again)
    assert (first != other).mean() > 0.3


def test_backward_uses_the_forward_mask(backend, rng):
    x, dout = random_array(rng, (4, 9), np.float32), random_array(rng, (4, 9), np.float32)
    out, dx = run_op(backend, dropout_forward, [x], {"rate": 0.3, "seed": 5}, dropout_backward, dout)
    assert dx.dtype == np.float32
    np.testing.assert_array_equal(dx, np.where(out != 0, dout * np.float32(1 / 0.7), 0))


def test_gradients(backend, rng):
    check_op_gradients(
        dropout_forward,
        dropout_backward,
        [random_array(rng, (3, 4, 5))],
        {"rate": 0.4, "seed": 9},
        backend=backend,
    )


@pytest.mark.parametrize("params", [{"rate": 0.5, "seed": 1, "training": False}, {"rate": 0.0, "seed": 1}])
def test_identity_when_not_dropping(backend, rng, params):
    x, dout = random_array(rng, (4, 6), np.float32), random_array(rng, (4, 6), np.float32)
    out, dx = run_op(backend, dropout_forward, [x], params, dropout_backward, dout)
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(dx, dout)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_rate_out_of_range(rate):
    with pytest.raises(ValueError, match=f"dropout_forward: rate must be in \\[0, 1\\), got {rate}"):
        dropout_forward(np.ones(3), rate, 0)


def test_integer_input_is_rejected():
    with pytest.raises(ValueError, match="dropout_forward: x must be float32 or float64, got dtype int64"):
        dropout_forward(np.ones(3, np.int64), 0.5, 0)


# ---------------------------------------------------------------- the CUDA kernel (emu, cupy)

# Backends that run dropout.cu; each result is compared with the NumPy backend's.
KERNEL_BACKENDS = ("emu", pytest.param("cupy", marks=pytest.mark.gpu))
PHILOX_CHECK = Path(__file__).parent / "kernels" / "philox_check.cu"


@pytest.fixture(scope="module")
def philox_check():
    """tests/ops/kernels/philox_check.cu on the emulator: philox.cuh's generator and stream."""
    return emu.build_module(PHILOX_CHECK)


@pytest.mark.parametrize("counter, key, expected", KNOWN_ANSWERS)
def test_device_philox_known_answers(philox_check, counter, key, expected):
    out = np.zeros((1, 4), np.uint32)
    counters, keys = np.array([counter], np.uint32), np.array([key], np.uint32)
    philox_check.get_function("philox_blocks")((1,), (32,), (counters, keys, out, np.int32(1)))
    assert tuple(int(word) for word in out[0]) == expected


def test_device_philox_matches_numpy_on_random_counters(philox_check):
    rng = np.random.default_rng(3)
    counters = rng.integers(0, 2**32, (70, 4), dtype=np.uint32)
    keys = rng.integers(0, 2**32, (70, 2), dtype=np.uint32)
    out = np.zeros((70, 4), np.uint32)
    philox_check.get_function("philox_blocks")((3,), (32,), (counters, keys, out, np.int32(70)))
    for row in range(70):
        np.testing.assert_array_equal(out[row], philox4x32(counters[row].reshape(4, 1), keys[row])[:, 0])


@pytest.mark.parametrize(
    "seed, n, offset", [(0, 9, 0), (42, 7, 3), (2**40 + 5, 10, 1), (2**64 - 1, 6, 2**34 - 3), (7, 45, 2**63 + 2)]
)
def test_device_uniform_stream_matches_numpy(philox_check, seed, n, offset):
    """Offsets that start mid-block and cross into counter word 1 (2**34 elements)."""
    out = np.full(n, np.nan, np.float32)
    args = (out, np.int32(n), np.uint64(seed), np.uint64(offset))
    philox_check.get_function("uniform_stream")((2,), (32,), args)
    np.testing.assert_array_equal(out, uniform(seed, n, offset))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [1, 3, 4, 5, 1023])
@pytest.mark.parametrize("misaligned", [False, True])
def test_kernel_mask_is_bit_identical_to_numpy(rng, size, dtype, misaligned):
    """Sizes off a multiple of 4 end in a partial group; a view one element into a buffer is not
    16-byte aligned, so every group takes the element-by-element path."""
    storage = random_array(rng, size + 1, dtype)
    x = storage[1:] if misaligned else storage[:-1].copy()
    dout = random_array(rng, size, dtype)
    params = {"rate": 0.35, "seed": 2**33 + 17}
    out, dx = run_op("emu", dropout_forward, [x], params, dropout_backward, dout)
    expected_out, expected_dx = run_op("numpy", dropout_forward, [x], params, dropout_backward, dout)
    assert out.dtype == dx.dtype == dtype
    np.testing.assert_array_equal(out, expected_out)
    np.testing.assert_array_equal(dx, expected_dx)


@pytest.mark.parametrize("backend_order", THREAD_ORDERS)
@pytest.mark.parametrize("shape", [(7,), (3, 5, 7)])
def test_kernel_under_thread_orders(rng, backend_order, shape):
    x, dout = random_array(rng, shape, np.float32), random_array(rng, shape, np.float32)
    params = {"rate": 0.5, "seed": 77}
    out, dx = run_op(backend_order, dropout_forward, [x], params, dropout_backward, dout)
    expected_out, expected_dx = run_op("numpy", dropout_forward, [x], params, dropout_backward, dout)
    np.testing.assert_array_equal(out, expected_out)
    np.testing.assert_array_equal(dx, expected_dx)


@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
def test_kernel_agrees_with_numpy_in_float32(backend, rng):
    x, dout = random_array(rng, (16, 3, 9, 9), np.float32), random_array(rng, (16, 3, 9, 9), np.float32)
    params = {"rate": 0.2, "seed": 2024}
    out, dx = run_op(backend, dropout_forward, [x], params, dropout_backward, dout)
    expected_out, expected_dx = run_op("numpy", dropout_forward, [x], params, dropout_backward, dout)
    np.testing.assert_array_equal(out, expected_out)
    np.testing.assert_array_equal(dx, expected_dx)


def test_grid_stride_loop_covers_every_group(rng, monkeypatch):
    """One block of 256 threads and 2 * 1024 + 7 elements: 513 groups of 4, three passes."""
    monkeypatch.setattr(dropout_ops, "MAX_GRID_BLOCKS", 1)
    x = random_array(rng, 2 * 1024 + 7, np.float32)
    out, _ = run_op("emu", dropout_forward, [x], {"rate": 0.5, "seed": 4})
    expected, _ = run_op("numpy", dropout_forward, [x], {"rate": 0.5, "seed": 4})
    np.testing.assert_array_equal(out, expected)


def test_kernel_path_checks_seed_and_dout():
    with use_backend("emu"):
        with pytest.raises(ValueError, match=r"dropout_forward: seed must be in \[0, 2\*\*64\), got -1"):
            dropout_forward(np.ones(3), 0.5, -1)
        _, cache = dropout_forward(np.ones((2, 3), np.float32), 0.5, 1)
        with pytest.raises(ValueError, match=r"dropout_backward: expected dout of shape \(2, 3\)"):
            dropout_backward(np.ones((3, 2), np.float32), cache)
        with pytest.raises(ValueError, match=r"dout must have the dtype of x \(float32\), got dtype float64"):
            dropout_backward(np.ones((2, 3)), cache)
