"""Dense layer against an einsum reference, gradients, dtypes and errors."""

import numpy as np
import pytest

from dlcore import emu
from dlcore.ops import dense_backward, dense_forward, linear
from dlcore.ops.linear import use_dense_matmul

from .op_check import THREAD_ORDERS, TOLERANCES, assert_close, check_op_gradients, random_array, run_op

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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("use_bias", [True, False])
def test_fused_relu(backend, rng, dtype, use_bias):
    x, w = random_array(rng, (6, 9), dtype), random_array(rng, (9, 5), dtype)
    b = random_array(rng, (5,), dtype) if use_bias else None
    dout = random_array(rng, (6, 5), dtype)
    out, (dx, dw, db) = run_op(backend, dense_forward, [x, w, b], {"activation": "relu"}, dense_backward, dout)
    x64, w64, dout64 = (a.astype(np.float64) for a in (x, w, dout))
    pre = x64 @ w64 + (0 if b is None else b)
    masked = dout64 * (pre > 0)
    assert_close(out, np.maximum(pre, 0), dtype)
    assert_close(dx, masked @ w64.T, dtype)
    assert_close(dw, x64.T @ masked, dtype)
    if use_bias:
        assert_close(db, masked.sum(axis=0), dtype)
    else:
        assert db is None


# (N, in, out) of reductions long enough to be split over blockIdx.z (a 1000-long reduction
# in 7 slices), and of several 64 x 128 output tiles in each direction
SPLIT_SHAPES = [(3, 1000, 7), (130, 20, 260), (70, 300, 129)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch, features_in, features_out", SPLIT_SHAPES)
def test_split_reductions_and_many_tiles(backend, rng, batch, features_in, features_out, dtype):
    x, w = random_array(rng, (batch, features_in), dtype), random_array(rng, (features_in, features_out), dtype)
    b, dout = random_array(rng, (features_out,), dtype), random_array(rng, (batch, features_out), dtype)
    out, (dx, dw, db) = run_op(backend, dense_forward, [x, w, b], {"activation": "relu"}, dense_backward, dout)
    x64, w64, dout64 = (a.astype(np.float64) for a in (x, w, dout))
    pre = x64 @ w64 + b
    masked = dout64 * (pre > 0)
    atol = TOLERANCES[np.dtype(dtype)]["atol"]  # grown by sqrt(terms summed): rounding errors add up
    assert_close(out, np.maximum(pre, 0), dtype, atol=atol * np.sqrt(features_in))
    assert_close(dx, masked @ w64.T, dtype, atol=atol * np.sqrt(features_out))
    assert_close(dw, x64.T @ masked, dtype, atol=atol * np.sqrt(batch))
    assert_close(db, masked.sum(axis=0), dtype, atol=atol * np.sqrt(batch))


@pytest.mark.parametrize("order", THREAD_ORDERS)
def test_thread_orders(rng, order):
    """A missing __syncthreads in the GEMM kernels shows up under reverse or shuffled order."""
    x, w, b = random_array(rng, (70, 300)), random_array(rng, (300, 129)), random_array(rng, (129,))
    dout = random_array(rng, (70, 129))
    expected = run_op("numpy", dense_forward, [x, w, b], {"activation": "relu"}, dense_backward, dout)
    out, grads = run_op(order, dense_forward, [x, w, b], {"activation": "relu"}, dense_backward, dout)
    for actual, reference in zip((out, *grads), (expected[0], *expected[1])):
        assert_close(actual, reference)


def test_bit_identical_runs(rng):
    """No atomics: the bits do not depend on the run, the workers or the thread order."""
    x, w, b = (random_array(rng, shape, np.float32) for shape in ((9, 1000), (1000, 13), (13,)))
    dout = random_array(rng, (9, 13), np.float32)
    runs = []
    for settings in ({"deterministic": True}, {"deterministic": True}, {"workers": 2, "order": "shuffled"}):
        with emu.configured(**settings):
            out, grads = run_op("emu", dense_forward, [x, w, b], {}, dense_backward, dout)
        runs.append([a.tobytes() for a in (out, *grads)])
    assert runs[0] == runs[1] == runs[2]


def test_cupy_matmul_is_an_error_on_emu(rng):
    x, w = random_array(rng, (2, 3)), random_array(rng, (3, 4))
    with use_dense_matmul("cupy"), pytest.raises(RuntimeError, match="needs the cupy backend"):
        run_op("emu", dense_forward, [x, w, None])


@pytest.mark.gpu
def test_cupy_matmul_matches_dlcore_kernels(rng):
    x, w, b = random_array(rng, (33, 70)), random_array(rng, (70, 20)), random_array(rng, (20,))
    dout = random_array(rng, (33, 20))
    ours = run_op("cupy", dense_forward, [x, w, b], {"activation": "relu"}, dense_backward, dout)
    with use_dense_matmul("cupy"):
        theirs = run_op("cupy", dense_forward, [x, w, b], {"activation": "relu"}, dense_backward, dout)
    for actual, reference in zip((theirs[0], *theirs[1]), (ours[0], *ours[1])):
        assert_close(actual, reference)


def test_dense_matmul_selection(monkeypatch):
    with use_dense_matmul("cupy"):
        assert linear.dense_matmul() == "cupy"
        assert linear.set_dense_matmul("dlcore") == "cupy"
    with pytest.raises(ValueError, match="dense matmul must be one of dlcore, cupy, got 'blas'"):
        linear.set_dense_matmul("blas")
    linear.matmul.reset()
    monkeypatch.setenv("DLCORE_DENSE_MATMUL", "cupy")
    assert linear.dense_matmul() == "cupy"
    linear.matmul.reset()
    monkeypatch.delenv("DLCORE_DENSE_MATMUL")
    assert linear.dense_matmul() == "dlcore"
