"""conv2d against SciPy correlations, gradient checks, dtypes and argument errors."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dlcore.ops import conv2d_backward, conv2d_forward

from .op_check import assert_close, check_op_gradients, random_array, run_op
from .references import conv2d_reference

# (x shape, w shape, stride, padding): odd sizes, channels 1/3/5/7, batch 1, even kernels
GEOMETRIES = [
    ((1, 3, 7, 9), (5, 3, 3, 3), 1, "same"),
    ((2, 3, 7, 9), (4, 3, 3, 3), 2, "same"),
    ((2, 5, 13, 11), (7, 5, 5, 5), 1, "same"),
    ((2, 5, 13, 11), (3, 5, 5, 5), 2, "valid"),
    ((3, 1, 8, 8), (2, 1, 1, 1), 1, 0),
    ((2, 7, 9, 7), (3, 7, 3, 5), (2, 1), (1, 2)),
    ((1, 2, 6, 6), (3, 2, 4, 4), 1, "same"),
    ((2, 3, 5, 5), (2, 3, 5, 5), 1, "valid"),
    ((2, 2, 9, 9), (3, 2, 3, 3), 3, 1),
]
IDS = [f"x{x}-w{w}-s{s}-p{p}" for x, w, s, p in GEOMETRIES]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", GEOMETRIES, ids=IDS)
def test_forward_matches_scipy(backend, rng, x_shape, w_shape, stride, padding, dtype):
    x, w, b = (random_array(rng, shape, dtype) for shape in (x_shape, w_shape, w_shape[:1]))
    out, _ = run_op(backend, conv2d_forward, [x, w, b], {"stride": stride, "padding": padding})
    assert out.dtype == dtype
    assert_close(out, conv2d_reference(x, w, b, stride, padding))


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", GEOMETRIES, ids=IDS)
def test_gradients(backend, rng, x_shape, w_shape, stride, padding):
    x, w, b = (random_array(rng, shape) for shape in (x_shape, w_shape, w_shape[:1]))
    params = {"stride": stride, "padding": padding}
    check_op_gradients(conv2d_forward, conv2d_backward, [x, w, b], params, backend=backend)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_relu(backend, rng, dtype):
    """out = max(conv, 0); backward sends dout * (out > 0) through the convolution."""
    x, w, b = (random_array(rng, shape, dtype) for shape in ((2, 3, 7, 9), (4, 3, 3, 3), (4,)))
    dout = random_array(rng, (2, 4, 4, 5), dtype)
    params = {"stride": 2, "padding": "same"}
    out, grads = run_op(backend, conv2d_forward, [x, w, b], {**params, "activation": "relu"}, conv2d_backward, dout)
    pre = conv2d_reference(x, w, b, 2, "same")
    assert_close(out, np.maximum(pre, 0), dtype)
    as64 = [a.astype(np.float64) for a in (x, w, b)]
    _, expected = run_op("numpy", conv2d_forward, as64, params, conv2d_backward, dout.astype(np.float64) * (pre > 0))
    for grad, reference in zip(grads, expected):
        assert grad.dtype == dtype
        assert_close(grad, reference, dtype)


def test_gradients_without_bias(backend, rng):
    x, w = random_array(rng, (2, 3, 6, 5)), random_array(rng, (2, 3, 3, 3))
    check_op_gradients(
        lambda x, w: conv2d_forward(x, w, None, 2, "same"), conv2d_backward, [x, w], backend=backend
    )
    _, (_, _, db) = run_op(backend, conv2d_forward, [x, w, None], {}, conv2d_backward, np.ones((2, 2, 4, 3)))
    assert db is None


def test_float32_in_float32_out_and_close_to_float64(backend, rng):
    x, w, b = random_array(rng, (2, 3, 7, 9)), random_array(rng, (4, 3, 3, 3)), random_array(rng, (4,))
    dout = random_array(rng, (2, 4, 4, 5))
    params = {"stride": 2, "padding": "same"}
    out64, grads64 = run_op(backend, conv2d_forward, [x, w, b], params, conv2d_backward, dout)
    as32 = [a.astype(np.float32) for a in (x, w, b, dout)]
    out32, grads32 = run_op(backend, conv2d_forward, as32[:3], params, conv2d_backward, as32[3])
    assert out32.dtype == np.float32 and all(g.dtype == np.float32 for g in grads32)
    assert_close(out32, out64, np.float32)
    for grad32, grad64 in zip(grads32, grads64):
        assert_close(grad32, grad64, np.float32)


def test_input_gradient_can_be_skipped(backend, rng):
    x, w, b = random_array(rng, (2, 1, 6, 6)), random_array(rng, (3, 1, 5, 5)), random_array(rng, (3,))
    dout = random_array(rng, (2, 3, 6, 6))
    _, full = run_op(backend, conv2d_forward, [x, w, b], {"padding": "same"}, conv2d_backward, dout)
    _, skipped = run_op(
        backend,
        conv2d_forward,
        [x, w, b],
        {"padding": "same"},
        conv2d_backward,
        dout,
        {"need_input_grad": False},
    )
    assert skipped[0] is None
    assert_close(skipped[1], full[1])
    assert_close(skipped[2], full[2])


def test_notes_first_layer_shape(backend, rng):
    x, w, b = (
        random_array(rng, (4, 1, 28, 28), np.float32),
        random_array(rng, (32, 1, 5, 5), np.float32),
        None,
    )
    out, _ = run_op(backend, conv2d_forward, [x, w, b], {"padding": "same"})
    assert out.shape == (4, 32, 28, 28)
    assert_close(out, conv2d_reference(x, w, b, 1, "same"))


def test_non_contiguous_inputs(backend, rng):
    x = random_array(rng, (9, 5, 3, 2)).transpose(3, 2, 1, 0)[:, :, ::2]  # (2, 3, 3, 9), strided
    w = np.asfortranarray(random_array(rng, (4, 3, 3, 3)))
    dout = np.ones((2, 4, 3, 9))
    out, grads = run_op(backend, conv2d_forward, [x, w, None], {"padding": "same"}, conv2d_backward, dout)
    assert_close(out, conv2d_reference(x, w, None, 1, "same"))
    contiguous = [np.ascontiguousarray(a) for a in (x, w)]
    _, expected = run_op("numpy", conv2d_forward, contiguous + [None], {"padding": "same"}, conv2d_backward, dout)
    assert grads[0].shape == x.shape
    for grad, reference in zip(grads[:2], expected[:2]):
        assert_close(grad, reference)


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 3),
    channels=st.integers(1, 4),
    kernels=st.integers(1, 4),
    size=st.tuples(st.integers(1, 10), st.integers(1, 10)),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.sampled_from(["same", 0, 1, 2]),
)
def test_random_geometries_match_scipy(batch, channels, kernels, size, kernel, stride, padding):
    assume(padding == "same" or all(s + 2 * padding >= k for s, k in zip(size, kernel)))  # the window fits
    rng = np.random.default_rng(0)
    x, w, b = (
        random_array(rng, (batch, channels) + size),
        random_array(rng, (kernels, channels) + kernel),
        None,
    )
    out, _ = conv2d_forward(x, w, b, stride, padding)
    assert_close(out, conv2d_reference(x, w, b, stride, padding))


@pytest.mark.parametrize(
    "x, w, b, message",
    [
        (
            np.zeros((3, 8, 8)),
            np.zeros((2, 3, 3, 3)),
            None,
            "expected x of shape (N, C, H, W), got shape (3, 8, 8)",
        ),
        (
            np.zeros((1, 3, 8, 8)),
            np.zeros((2, 4, 3, 3)),
            None,
            "expected w of shape (K, 3, kh, kw) for x of shape (1, 3, 8, 8), got shape (2, 4, 3, 3)",
        ),
        (
            np.zeros((1, 3, 8, 8)),
            np.zeros((2, 3, 3)),
            None,
            "expected w of shape (K, 3, kh, kw), got shape (2, 3, 3)",
        ),
        (
            np.zeros((1, 3, 8, 8)),
            np.zeros((2, 3, 3, 3)),
            np.zeros(3),
            "expected b of shape (2,) (one bias per output channel), got shape (3,)",
        ),
        (
            np.zeros((1, 3, 8, 8), np.int64),
            np.zeros((2, 3, 3, 3)),
            None,
            "x must be float32 or float64, got dtype int64",
        ),
        (
            np.zeros((1, 3, 8, 8), np.float32),
            np.zeros((2, 3, 3, 3)),
            None,
            "w must have the dtype of x (float32), got dtype float64",
        ),
        (np.zeros((1, 3, 4, 4)), np.zeros((2, 3, 5, 5)), None, "kernel 5 > size 4"),
    ],
)
def test_bad_arguments(x, w, b, message):
    with pytest.raises(ValueError) as info:
        conv2d_forward(x, w, b, 1, "valid")
    assert str(info.value).startswith("conv2d_forward: ")
    assert message in str(info.value)


def test_bad_dout_shape():
    _, cache = conv2d_forward(np.zeros((2, 3, 8, 8)), np.zeros((4, 3, 3, 3)), None, 1, "same")
    with pytest.raises(
        ValueError, match=r"conv2d_backward: expected dout of shape \(2, 4, 8, 8\).*got shape \(2, 4, 6, 6\)"
    ):
        conv2d_backward(np.zeros((2, 4, 6, 6)), cache)
