"""Dense layer against an einsum reference, gradients, dtypes and errors."""

import numpy as np
import pytest

from dlcore.ops import dense_backward, dense_forward

from .op_check import assert_close, check_op_gradients, random_array, run_op

SHAPES = [(1, 3, 5), (4, 7, 3), (5, 1, 1), (9, 13, 11)]  # (N, in, out)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch, features_in, features_out", SHAPES)
def test_forward_and_backward_match_einsum(backend, rng, batch, features_in, features_out, dtype):
    x, w = (
        random_array(rng, (batch, features_in), dtype),
        random_array(rng, (features_in, features_out), dtype),
    )
    b, dout = random_array(rng, (features_out,), dtype), random_array(rng, (batch, features_out), dtype)
    out, (dx, dw, db) = run_op(backend, dense_forward, [x, w, b], {}, dense_backward, dout)
    x64, w64, dout64 = (a.astype(np.float64) for a in (x, w, dout))
    assert out.dtype == dx.dtype == dw.dtype == db.dtype == dtype
    assert_close(out, np.einsum("ni,io->no", x64, w64) + b, dtype)
    assert_close(dx, np.einsum("no,io->ni", dout64, w64), dtype)
    assert_close(dw, np.einsum("ni,no->io", x64, dout64), dtype)
    assert_close(db, np.einsum("no->o", dout64), dtype)


@pytest.mark.parametrize("batch, features_in, features_out", SHAPES)
def test_gradients(backend, rng, batch, features_in, features_out):
    x, w = random_array(rng, (batch, features_in)), random_array(rng, (features_in, features_out))
    check_op_gradients(
        dense_forward, dense_backward, [x, w, random_array(rng, (features_out,))], backend=backend
    )


def test_without_bias_and_without_input_gradient(backend, rng):
    x, w, dout = random_array(rng, (4, 3)), random_array(rng, (3, 2)), random_array(rng, (4, 2))
    out, (dx, dw, db) = run_op(
        backend, dense_forward, [x, w, None], {}, dense_backward, dout, {"need_input_grad": False}
    )
    assert dx is None and db is None
    assert_close(out, x @ w)
    assert_close(dw, x.T @ dout)


@pytest.mark.parametrize(
    "x, w, b, message",
    [
        (np.zeros((2, 3, 1)), np.zeros((3, 4)), None, "expected x of shape (N, in), got shape (2, 3, 1)"),
        (
            np.zeros((2, 3)),
            np.zeros((4, 4)),
            None,
            "expected w of shape (3, out) for x of shape (2, 3), got shape (4, 4)",
        ),
        (
            np.zeros((2, 3)),
            np.zeros((3, 4)),
            np.zeros(3),
            "expected b of shape (4,) (one bias per output feature), got shape (3,)",
        ),
        (np.zeros((2, 3), np.int8), np.zeros((3, 4)), None, "x must be float32 or float64, got dtype int8"),
        (
            np.zeros((2, 3)),
            np.zeros((3, 4), np.float32),
            None,
            "w must have the dtype of x (float64), got dtype float32",
        ),
    ],
)
def test_bad_arguments(x, w, b, message):
    with pytest.raises(ValueError) as info:
        dense_forward(x, w, b)
    assert str(info.value).startswith("dense_forward: ")
    assert message in str(info.value)
