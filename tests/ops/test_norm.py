"""Batch normalization against the direct formula, running statistics, gradients, dtypes, errors."""

import numpy as np
import pytest

from dlcore.ops import batch_norm_backward, batch_norm_forward

from .op_check import assert_close, check_op_gradients, random_array, run_op

SHAPES = [(2, 3, 5, 7), (1, 5, 3, 3), (4, 7, 1, 1), (6, 7), (2, 3)]


def _parameters(rng, channels, dtype):
    gamma = random_array(rng, (channels,), dtype) + dtype(1)
    beta = random_array(rng, (channels,), dtype)
    running_mean = random_array(rng, (channels,), dtype)
    running_var = np.abs(random_array(rng, (channels,), dtype)) + dtype(0.5)
    return gamma, beta, running_mean, running_var


def _broadcast(values, x):
    return values.reshape((1, -1) + (1,) * (x.ndim - 2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_training_forward_and_running_statistics(backend, rng, shape, dtype):
    x = random_array(rng, shape, dtype, scale=3.0) + dtype(2)
    gamma, beta, running_mean, running_var = _parameters(rng, shape[1], dtype)
    old_mean, old_var = running_mean.copy(), running_var.copy()
    momentum = 0.25
    out, _ = run_op(
        backend, batch_norm_forward, [x, gamma, beta, running_mean, running_var], {"momentum": momentum}
    )

    axes = tuple(a for a in range(x.ndim) if a != 1)
    x64 = x.astype(np.float64)
    mean, var = x64.mean(axis=axes), x64.var(axis=axes)
    expected = _broadcast(gamma, x) * (x64 - _broadcast(mean, x)) / np.sqrt(
        _broadcast(var, x) + 1e-5
    ) + _broadcast(beta, x)
    assert out.dtype == dtype
    assert_close(out, expected, dtype)
    unbiased = x64.var(axis=axes, ddof=1)
    assert running_mean.dtype == dtype and running_var.dtype == dtype
    assert_close(running_mean, (1 - momentum) * old_mean + momentum * mean, dtype)
    assert_close(running_var, (1 - momentum) * old_var + momentum * unbiased, dtype)


@pytest.mark.parametrize("shape", SHAPES)
def test_inference_uses_running_statistics_and_leaves_them(backend, rng, shape):
    x = random_array(rng, shape)
    gamma, beta, running_mean, running_var = _parameters(rng, shape[1], np.float64)
    before = running_mean.copy(), running_var.copy()
    out, _ = run_op(
        backend,
        batch_norm_forward,
        [x, gamma, beta, running_mean, running_var],
        {"training": False, "eps": 1e-3},
    )
    expected = (
        _broadcast(gamma, x) * (x - _broadcast(running_mean, x)) / np.sqrt(_broadcast(running_var, x) + 1e-3)
    )
    assert_close(out, expected + _broadcast(beta, x))
    np.testing.assert_array_equal(running_mean, before[0])
    np.testing.assert_array_equal(running_var, before[1])


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_gradients(backend, rng, shape, training):
    x = random_array(rng, shape)
    gamma, beta, running_mean, running_var = _parameters(rng, shape[1], np.float64)
    params = {"running_mean": running_mean, "running_var": running_var, "training": training}
    check_op_gradients(batch_norm_forward, batch_norm_backward, [x, gamma, beta], params, backend=backend)


def test_float32_gradients_stay_float32(backend, rng):
    x = random_array(rng, (2, 3, 5, 7), np.float32)
    params = _parameters(rng, 3, np.float32)
    _, grads = run_op(backend, batch_norm_forward, [x, *params], {}, batch_norm_backward, np.ones_like(x))
    assert [g.dtype for g in grads] == [np.float32] * 3


@pytest.mark.parametrize(
    "x, channels, message",
    [
        (np.zeros((2, 3, 4)), 3, "expected x of shape (N, F) or (N, C, H, W), got shape (2, 3, 4)"),
        (
            np.zeros((2, 3, 4, 4)),
            4,
            "expected gamma of shape (3,) (one per channel of x (2, 3, 4, 4)), got shape (4,)",
        ),
        (np.zeros((2, 3), np.int16), 3, "x must be float32 or float64, got dtype int16"),
        (np.zeros((1, 3)), 3, "training needs more than one value per channel, got x of shape (1, 3)"),
    ],
)
def test_bad_arguments(x, channels, message):
    params = [np.ones(channels) for _ in range(4)]
    with pytest.raises(ValueError) as info:
        batch_norm_forward(x, *params)
    assert str(info.value).startswith("batch_norm_forward: ")
    assert message in str(info.value)


def test_running_statistics_must_match_the_dtype_of_x():
    x = np.zeros((2, 3), np.float32)
    params = [np.ones(3, np.float32)] * 3 + [np.ones(3)]
    with pytest.raises(ValueError, match="running_var must have the dtype of x .float32., got dtype float64"):
        batch_norm_forward(x, *params)
