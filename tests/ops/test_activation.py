"""ReLU, tanh, sigmoid, leaky ReLU and the fused bias + ReLU: values, stability, gradients, dtypes."""

import math

import numpy as np
import pytest

from dlcore.ops import (
    bias_relu_backward,
    bias_relu_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from dlcore.ops import activation as activation_ops

from .op_check import THREAD_ORDERS, assert_close, check_op_gradients, random_array, run_op

ACTIVATIONS = {
    "relu": (relu_forward, relu_backward, lambda v: max(v, 0.0)),
    "tanh": (tanh_forward, tanh_backward, math.tanh),
    "sigmoid": (sigmoid_forward, sigmoid_backward, lambda v: 1 / (1 + math.exp(-v))),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward, lambda v: v if v > 0 else 0.01 * v),  # default slope
}


def _away_from_zero(rng, shape, dtype=np.float64):
    """Normal values pushed at least 0.1 away from ReLU's kink."""
    x = random_array(rng, shape, dtype)
    return x + np.where(x >= 0, 0.1, -0.1).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_values_match_math(backend, rng, name, dtype):
    forward, _, scalar = ACTIVATIONS[name]
    x = random_array(rng, (2, 3, 5, 7), dtype, scale=3.0)
    out, _ = run_op(backend, forward, [x])
    assert out.dtype == dtype
    assert_close(out, np.vectorize(scalar)(x.astype(np.float64)), dtype)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 5, 7)])
def test_gradients(backend, rng, name, shape):
    forward, backward, _ = ACTIVATIONS[name]
    check_op_gradients(forward, backward, [_away_from_zero(rng, shape)], backend=backend)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_for_large_inputs(backend, dtype):
    x = np.array([-1e4, -800.0, -100.0, 0.0, 100.0, 800.0, 1e4], dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        out, dx = run_op(backend, sigmoid_forward, [x], {}, sigmoid_backward, np.ones_like(x))
    assert out.dtype == dtype and dx.dtype == dtype
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(dx))
    assert out[0] == 0 and out[3] == 0.5 and out[-1] == 1
    assert 0 <= out[2] < 1e-40 and 1 - out[4] < 1e-40


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_float32_gradient_stays_float32(backend, rng, name):
    forward, backward, _ = ACTIVATIONS[name]
    x = random_array(rng, (4, 6), np.float32)
    _, dx = run_op(backend, forward, [x], {}, backward, np.ones_like(x))
    assert dx.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 5, 7), (1, 5, 3, 1)])
def test_bias_relu_matches_unfused(backend, rng, shape, dtype):
    x, b = _away_from_zero(rng, shape, dtype), random_array(rng, shape[1:2], dtype)
    dout = random_array(rng, shape, dtype)
    out, (dx, db) = run_op(backend, bias_relu_forward, [x, b], {}, bias_relu_backward, dout)
    shifted = x + b.reshape((1, -1) + (1,) * (x.ndim - 2))
    assert out.dtype == dx.dtype == db.dtype == dtype
    assert_close(out, np.maximum(shifted, 0))
    assert_close(dx, dout * (shifted > 0))
    assert_close(db, (dout * (shifted > 0)).sum(axis=tuple(a for a in range(x.ndim) if a != 1)))


@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 5, 7)])
def test_bias_relu_gradients(backend, rng, shape):
    x, b = _away_from_zero(rng, shape), random_array(rng, shape[1:2], scale=0.01)
    check_op_gradients(bias_relu_forward, bias_relu_backward, [x, b], backend=backend)


@pytest.mark.parametrize("forward", [relu_forward, tanh_forward, sigmoid_forward, leaky_relu_forward])
def test_integer_input_is_rejected(forward):
    with pytest.raises(ValueError, match="must be float32 or float64, got dtype int64"):
        forward(np.arange(4))


def test_bias_relu_bad_arguments():
    with pytest.raises(
        ValueError,
        match=r"expected b of shape \(3,\) \(one per channel of x \(2, 3, 4, 4\)\), got shape \(4,\)",
    ):
        bias_relu_forward(np.zeros((2, 3, 4, 4)), np.zeros(4))
    with pytest.raises(
        ValueError, match=r"expected x of shape \(N, F\) or \(N, C, H, W\), got shape \(2, 3, 4\)"
    ):
        bias_relu_forward(np.zeros((2, 3, 4)), np.zeros(3))
    with pytest.raises(ValueError, match="b must have the dtype of x .float32., got dtype float64"):
        bias_relu_forward(np.zeros((2, 3), np.float32), np.zeros(3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("slope", [0.0, 0.2, 1.5])
def test_leaky_relu_slopes(backend, rng, slope, dtype):
    x = random_array(rng, (3, 4, 5), dtype, scale=3.0)
    x[0, 0, :2] = 0.0  # the kink: gradient slope * dout there, as PyTorch
    dout = random_array(rng, x.shape, dtype)
    params = {"negative_slope": slope}
    out, dx = run_op(backend, leaky_relu_forward, [x], params, leaky_relu_backward, dout)
    assert out.dtype == dx.dtype == dtype
    x64, dout64 = x.astype(np.float64), dout.astype(np.float64)
    assert_close(out, np.where(x64 > 0, x64, slope * x64), dtype)
    assert_close(dx, np.where(x64 > 0, dout64, slope * dout64), dtype)


@pytest.mark.parametrize("slope", [0.0, 0.3, 2.0])
def test_leaky_relu_gradients(backend, rng, slope):
    x = _away_from_zero(rng, (2, 3, 4, 5))
    check_op_gradients(leaky_relu_forward, leaky_relu_backward, [x], {"negative_slope": slope}, backend=backend)


def test_leaky_relu_propagates_nan(backend):
    x = np.array([np.nan, -1.0, 2.0])
    out, _ = run_op(backend, leaky_relu_forward, [x], {"negative_slope": 0.5})
    np.testing.assert_array_equal(out, [np.nan, -0.5, 2.0])


@pytest.mark.parametrize("slope", [-0.1, float("nan"), float("inf"), "0.1", None, True])
def test_leaky_relu_bad_slope(slope):
    with pytest.raises(ValueError, match=r"leaky_relu_forward: negative_slope must be a finite number >= 0"):
        leaky_relu_forward(np.zeros(3), slope)


def test_bad_dout_shape():
    _, cache = relu_forward(np.zeros((2, 3)))
    with pytest.raises(
        ValueError, match=r"relu_backward: expected dout of shape \(2, 3\).*got shape \(3, 2\)"
    ):
        relu_backward(np.zeros((3, 2)), cache)


# ---------------------------------------------------------------- the CUDA kernels (emu, cupy)

# Backends that run activation.cu; each result is compared with the NumPy backend's.
KERNEL_BACKENDS = ("emu", pytest.param("cupy", marks=pytest.mark.gpu))
# Ragged on purpose: sizes that fill no block, odd channels and spatial sizes, batch 1.
RAGGED_SHAPES = [(1,), (37,), (3, 5, 7), (1, 3, 5, 9)]


def _numpy_and(backend, forward, backward, x, dout, b=None):
    """(out, grads) of the op on `backend` and on the NumPy backend, for the same inputs."""
    inputs = [x] if b is None else [x, b]
    return (
        run_op(backend, forward, inputs, {}, backward, dout),
        run_op("numpy", forward, inputs, {}, backward, dout),
    )


@pytest.mark.parametrize("backend_order", THREAD_ORDERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("shape", RAGGED_SHAPES)
def test_elementwise_kernels_under_thread_orders(rng, backend_order, name, shape, dtype):
    forward, backward, _ = ACTIVATIONS[name]
    x, dout = random_array(rng, shape, dtype, scale=3.0), random_array(rng, shape, dtype)
    (out, dx), (expected_out, expected_dx) = _numpy_and(backend_order, forward, backward, x, dout)
    assert out.dtype == dx.dtype == dtype
    assert_close(out, expected_out)
    assert_close(dx, expected_dx)


@pytest.mark.parametrize("backend_order", THREAD_ORDERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 3), (19, 45), (3, 5, 11, 13), (2, 7, 1, 1)])
def test_bias_relu_kernels_under_thread_orders(rng, backend_order, shape, dtype):
    """(19, 45): two feature tiles, the last one ragged, rows past the 8 row groups;
    (3, 5, 11, 13): 429 elements per channel, more than a block's 256 threads."""
    x, b, dout = random_array(rng, shape, dtype), random_array(rng, shape[1:2], dtype), random_array(rng, shape, dtype)
    (out, (dx, db)), (expected_out, (expected_dx, expected_db)) = _numpy_and(
        backend_order, bias_relu_forward, bias_relu_backward, x, dout, b
    )
    assert_close(out, expected_out)
    assert_close(dx, expected_dx)
    assert_close(db, expected_db)


@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_kernels_agree_with_numpy_in_float32(backend, rng, name):
    forward, backward, _ = ACTIVATIONS[name]
    x, dout = random_array(rng, (4, 3, 6, 5), np.float32, scale=3.0), random_array(rng, (4, 3, 6, 5), np.float32)
    (out, dx), (expected_out, expected_dx) = _numpy_and(backend, forward, backward, x, dout)
    assert_close(out, expected_out)
    assert_close(dx, expected_dx)


@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
@pytest.mark.parametrize("shape", [(9, 70), (4, 6, 5, 3)])
def test_bias_relu_kernels_agree_with_numpy_in_float32(backend, rng, shape):
    x, b = random_array(rng, shape, np.float32), random_array(rng, shape[1:2], np.float32)
    dout = random_array(rng, shape, np.float32)
    (out, (dx, db)), (expected_out, (expected_dx, expected_db)) = _numpy_and(
        backend, bias_relu_forward, bias_relu_backward, x, dout, b
    )
    assert_close(out, expected_out)
    assert_close(dx, expected_dx)
    assert_close(db, expected_db)


def test_grid_stride_loops_cover_every_element(rng, monkeypatch):
    """With at most 2 blocks, each thread loops: 1061 elements need 3 passes of 512 threads,
    and 5 channels need 3 passes of the per-channel blocks."""
    monkeypatch.setattr(activation_ops, "MAX_GRID_BLOCKS", 2)
    x, dout = random_array(rng, (1061,), np.float32, scale=3.0), random_array(rng, (1061,), np.float32)
    for forward, backward, _ in ACTIVATIONS.values():
        (out, dx), (expected_out, expected_dx) = _numpy_and("emu", forward, backward, x, dout)
        assert_close(out, expected_out)
        assert_close(dx, expected_dx)
    shape = (2, 5, 11, 11)
    x, b, dout = random_array(rng, shape, np.float32), random_array(rng, (5,), np.float32), random_array(rng, shape, np.float32)
    (out, (dx, db)), (expected_out, (expected_dx, expected_db)) = _numpy_and(
        "emu", bias_relu_forward, bias_relu_backward, x, dout, b
    )
    assert_close(out, expected_out)
    assert_close(dx, expected_dx)
    assert_close(db, expected_db)


def test_kernels_take_non_contiguous_inputs(rng):
    x = random_array(rng, (6, 8), np.float32).T  # (8, 6), Fortran order
    b = random_array(rng, (12,), np.float32)[::2]  # (6,), strided
    dout = random_array(rng, (6, 8), np.float32).T
    (out, (dx, db)), (expected_out, (expected_dx, expected_db)) = _numpy_and(
        "emu", bias_relu_forward, bias_relu_backward, x, dout, b
    )
    assert_close(out, expected_out)
    assert_close(dx, expected_dx)
    assert_close(db, expected_db)


@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 2, 2), (2, 3, 0, 4)])
def test_bias_relu_kernels_on_empty_batches(shape):
    x, b = np.ones(shape, np.float32), np.ones(shape[1], np.float32)
    out, (dx, db) = run_op("emu", bias_relu_forward, [x, b], {}, bias_relu_backward, np.ones(shape, np.float32))
    assert out.shape == dx.shape == shape
    np.testing.assert_array_equal(db, np.zeros(3, np.float32))  # an empty sum
