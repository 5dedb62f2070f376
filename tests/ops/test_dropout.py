"""Inverted dropout: keep statistics, reproducible masks, scaling, gradients, errors."""

import numpy as np
import pytest

from dlcore.ops import dropout_backward, dropout_forward, uniform

from .op_check import check_op_gradients, random_array, run_op


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
