"""Global average and max pooling against loop references: values, gradients, the tie and NaN
rule, ragged shapes, thread orders, grid-stride loops and errors."""

import math

import numpy as np
import pytest

from dlcore.ops import (
    global_avg_pool2d_backward,
    global_avg_pool2d_forward,
    global_max_pool2d_backward,
    global_max_pool2d_forward,
)
from dlcore.ops import global_pool as global_pool_ops

from .op_check import THREAD_ORDERS, assert_close, backend_context, check_op_gradients, random_array, run_op

POOLS = {
    "avg": (global_avg_pool2d_forward, global_avg_pool2d_backward),
    "max": (global_max_pool2d_forward, global_max_pool2d_backward),
}
# Ragged on purpose: one cell, fewer cells than a warp's 32 lanes, odd sizes, batch 1, planes that
# fill no block of 8 warps, and 99 or 784 cells (each lane reads several).
SHAPES = [(1, 1, 1, 1), (2, 3, 5, 7), (1, 5, 7, 9), (5, 7, 3, 3), (2, 3, 9, 11), (1, 2, 28, 28)]


def _first_max(values):
    """Index of the first NaN, else of the first maximum."""
    for k, v in enumerate(values):
        if math.isnan(v):
            return k
    best = 0
    for k, v in enumerate(values):
        if v > values[best]:
            best = k
    return best


def global_pool_reference(x, mode):
    """(out (N, C), backward) by loops over planes; backward(dout) -> dx (N, C, H, W)."""
    batch, channels, height, width = x.shape
    out = np.zeros((batch, channels))
    chosen = {}
    for n, c in np.ndindex(batch, channels):
        values = [float(v) for v in x[n, c].ravel()]
        if mode == "avg":
            out[n, c] = sum(values) / len(values)
        else:
            chosen[n, c] = _first_max(values)
            out[n, c] = values[chosen[n, c]]

    def backward(dout):
        dx = np.zeros(x.shape)
        for n, c in np.ndindex(batch, channels):
            if mode == "avg":
                dx[n, c] = dout[n, c] / (height * width)
            else:
                dx[n, c].ravel()[chosen[n, c]] = dout[n, c]
        return dx

    return out, backward


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", POOLS)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_and_backward_match_loop_reference(backend, rng, shape, mode, dtype):
    x = random_array(rng, shape, dtype)
    expected_out, expected_backward = global_pool_reference(x, mode)
    dout = random_array(rng, shape[:2], dtype)
    out, dx = run_op(backend, POOLS[mode][0], [x], {}, POOLS[mode][1], dout)
    assert out.dtype == dx.dtype == dtype
    assert_close(out, expected_out, dtype)
    assert_close(dx, expected_backward(dout.astype(np.float64)), dtype)


@pytest.mark.parametrize("mode", POOLS)
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 2, 6, 6)])
def test_gradients(backend, rng, shape, mode):
    check_op_gradients(*POOLS[mode], [random_array(rng, shape)], backend=backend)


@pytest.mark.parametrize("shape", SHAPES)
def test_max_gradient_goes_to_the_first_of_tied_maxima(backend, rng, shape):
    x = rng.integers(0, 3, shape).astype(np.float64)  # ties in every plane larger than a few cells
    expected_out, expected_backward = global_pool_reference(x, "max")
    dout = random_array(rng, shape[:2])
    out, dx = run_op(backend, global_max_pool2d_forward, [x], {}, global_max_pool2d_backward, dout)
    np.testing.assert_array_equal(out, expected_out)
    np.testing.assert_array_equal(dx, expected_backward(dout))


@pytest.mark.parametrize("fill", [1.0, -np.inf])
def test_constant_plane_sends_the_gradient_to_its_first_cell(backend, fill):
    x = np.full((2, 3, 5, 6), fill)
    dout = np.arange(1.0, 7.0).reshape(2, 3)
    out, dx = run_op(backend, global_max_pool2d_forward, [x], {}, global_max_pool2d_backward, dout)
    np.testing.assert_array_equal(out, np.full((2, 3), fill))
    expected = np.zeros(x.shape)
    expected[:, :, 0, 0] = dout
    np.testing.assert_array_equal(dx, expected)


def test_max_takes_the_first_nan(backend):
    x = np.arange(2 * 40, dtype=np.float64).reshape(2, 1, 5, 8)
    x[0, 0, 3, 2] = x[0, 0, 4, 7] = np.nan  # two NaNs in plane 0: lanes 26 and 7 hold them
    dout = np.array([[2.0], [3.0]])
    out, dx = run_op(backend, global_max_pool2d_forward, [x], {}, global_max_pool2d_backward, dout)
    np.testing.assert_array_equal(out, [[np.nan], [79.0]])
    expected = np.zeros(x.shape)
    expected[0, 0, 3, 2], expected[1, 0, 4, 7] = 2.0, 3.0
    np.testing.assert_array_equal(dx, expected)


def test_non_contiguous_input(backend, rng):
    x = random_array(rng, (7, 6, 3, 2)).transpose(3, 2, 1, 0)  # (2, 3, 6, 7), Fortran order
    dout = random_array(rng, (2, 3))
    for mode, (forward, backward) in POOLS.items():
        expected_out, expected_backward = global_pool_reference(x, mode)
        out, dx = run_op(backend, forward, [x], {}, backward, dout)
        assert_close(out, expected_out)
        assert_close(dx, expected_backward(dout))


@pytest.mark.parametrize("mode", POOLS)
@pytest.mark.parametrize(
    "x, message",
    [
        (np.zeros((3, 8, 8)), "expected x of shape (N, C, H, W), got shape (3, 8, 8)"),
        (np.zeros((1, 3, 8, 8), np.int32), "x must be float32 or float64, got dtype int32"),
        (np.zeros((1, 3, 0, 8)), "x must have at least one cell per plane, got shape (1, 3, 0, 8)"),
    ],
)
def test_bad_arguments(mode, x, message):
    with pytest.raises(ValueError) as info:
        POOLS[mode][0](x)
    assert str(info.value) == f"global_{mode}_pool2d_forward: {message}"


@pytest.mark.parametrize("backend_name", ["numpy", "emu"])
@pytest.mark.parametrize("mode", POOLS)
def test_bad_dout(backend_name, mode):
    forward, backward = POOLS[mode]
    with backend_context(backend_name):
        _, cache = forward(np.zeros((2, 3, 4, 5), np.float32))
        with pytest.raises(ValueError, match=r"expected dout of shape \(2, 3\).*got shape \(2, 3, 1, 1\)"):
            backward(np.zeros((2, 3, 1, 1), np.float32), cache)
        with pytest.raises(ValueError, match="dout must have the dtype of x .float32., got dtype float64"):
            backward(np.zeros((2, 3)), cache)


# ---------------------------------------------------------------- the CUDA kernels (emu, cupy)

KERNEL_BACKENDS = ("emu", pytest.param("cupy", marks=pytest.mark.gpu))


def _on_backend_and_numpy(backend, mode, x, dout):
    forward, backward = POOLS[mode]
    return tuple(run_op(name, forward, [x], {}, backward, dout) for name in (backend, "numpy"))


@pytest.mark.parametrize("backend_order", THREAD_ORDERS)
@pytest.mark.parametrize("mode", POOLS)
@pytest.mark.parametrize("shape", SHAPES)
def test_kernels_under_thread_orders(rng, backend_order, mode, shape):
    x = rng.integers(0, 4, shape).astype(np.float64) if mode == "max" else random_array(rng, shape)
    dout = random_array(rng, shape[:2])
    (out, dx), (expected_out, expected_dx) = _on_backend_and_numpy(backend_order, mode, x, dout)
    assert_close(out, expected_out)
    if mode == "max":  # the gradient is dout itself or zero: no rounding
        np.testing.assert_array_equal(dx, expected_dx)
    else:
        assert_close(dx, expected_dx)


@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
@pytest.mark.parametrize("mode", POOLS)
def test_kernels_agree_with_numpy_in_float32(rng, backend, mode):
    x, dout = random_array(rng, (4, 5, 7, 9), np.float32), random_array(rng, (4, 5), np.float32)
    (out, dx), (expected_out, expected_dx) = _on_backend_and_numpy(backend, mode, x, dout)
    assert out.dtype == dx.dtype == np.float32
    assert_close(out, expected_out)
    assert_close(dx, expected_dx)


@pytest.mark.parametrize("mode", POOLS)
def test_grid_stride_loops_cover_every_plane_and_cell(rng, monkeypatch, mode):
    """With at most 2 blocks: 16 warps loop over 45 planes, 512 threads over 1215 cells."""
    monkeypatch.setattr(global_pool_ops, "MAX_GRID_BLOCKS", 2)
    x, dout = random_array(rng, (5, 9, 3, 9), np.float32), random_array(rng, (5, 9), np.float32)
    (out, dx), (expected_out, expected_dx) = _on_backend_and_numpy("emu", mode, x, dout)
    assert_close(out, expected_out)
    assert_close(dx, expected_dx)
