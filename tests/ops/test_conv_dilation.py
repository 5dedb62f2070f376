"""Dilated conv2d: the NumPy path and both kernel versions against SciPy with the kernel's taps
spread apart by zeros, float64 finite-difference gradients, TensorFlow's 'same' padding for
the dilated span, Winograd left out, and errors."""

import numpy as np
import pytest

from dlcore.ops import conv, conv2d_backward, conv2d_forward, tiled_gemm, winograd
from dlcore.ops.conv import CONV_KERNEL_VERSIONS, use_conv_kernel_version, use_cpu_conv_algorithm

from .op_check import THREAD_ORDERS, TOLERANCES, assert_close, check_op_gradients, random_array, run_op
from .references import conv2d_reference


def spread_taps(w, dilation):
    """w (K, C, kh, kw) -> (K, C, (kh-1)*dh + 1, (kw-1)*dw + 1) with zeros between the taps:
    the undilated kernel whose correlation is the dilated one's."""
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    kernels, channels, kh, kw = w.shape
    spread = np.zeros((kernels, channels, (kh - 1) * dh + 1, (kw - 1) * dw + 1))
    spread[:, :, ::dh, ::dw] = w
    return spread


# (x shape, w shape, stride, padding, dilation): odd sizes, batch 1, channels that fit no tile,
# 'same' with odd and even dilated spans (even: one more pad after than before), strides 1 and 2,
# 'valid', pair padding, pair dilation, 1x1 kernels (dilation changes nothing)
CASES = [
    ((2, 3, 9, 11), (4, 3, 3, 3), 1, "same", 2),
    ((1, 5, 13, 12), (3, 5, 3, 2), 2, "same", (2, 3)),
    ((2, 2, 11, 9), (3, 2, 3, 3), 1, "valid", 3),
    ((2, 3, 8, 7), (2, 3, 2, 2), (2, 1), (1, 2), (3, 2)),
    ((2, 3, 8, 7), (2, 3, 2, 2), 1, "same", 3),
    ((1, 33, 7, 6), (35, 33, 3, 3), 1, "same", 2),  # 297-long reductions: forward and data gradient split
    ((3, 3, 11, 13), (4, 3, 1, 1), 1, 0, 2),
    ((1, 1, 28, 28), (4, 1, 5, 5), 1, "same", 2),
]
IDS = [f"x{x}-w{w}-s{s}-p{p}-d{d}" for x, w, s, p, d in CASES]


def _params(stride, padding, dilation):
    return {"stride": stride, "padding": padding, "dilation": dilation}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation", CASES, ids=IDS)
def test_forward_matches_scipy_with_spread_taps(backend, rng, x_shape, w_shape, stride, padding, dilation, dtype):
    x, w, b = (random_array(rng, shape, dtype) for shape in (x_shape, w_shape, w_shape[:1]))
    out, _ = run_op(backend, conv2d_forward, [x, w, b], _params(stride, padding, dilation))
    assert out.dtype == dtype
    taps = w_shape[1] * w_shape[2] * w_shape[3]
    expected = conv2d_reference(x, spread_taps(w, dilation), b, stride, padding)
    assert_close(out, expected, dtype, atol=TOLERANCES[np.dtype(dtype)]["atol"] * np.sqrt(taps))


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation", CASES[:5] + CASES[6:7], ids=IDS[:5] + IDS[6:7])
def test_gradients(backend, rng, x_shape, w_shape, stride, padding, dilation):
    x, w, b = (random_array(rng, shape) for shape in (x_shape, w_shape, w_shape[:1]))
    check_op_gradients(conv2d_forward, conv2d_backward, [x, w, b], _params(stride, padding, dilation), backend=backend)


@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("version", CONV_KERNEL_VERSIONS)
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation", CASES, ids=IDS)
def test_kernel_versions_match_numpy(rng, version, x_shape, w_shape, stride, padding, dilation, dtype, activation):
    """Forward, dx, dw and db of each kernel version against the NumPy path in float64."""
    x, w, b = (random_array(rng, shape, dtype) for shape in (x_shape, w_shape, w_shape[:1]))
    params = {**_params(stride, padding, dilation), "activation": activation}
    as64 = [a.astype(np.float64) for a in (x, w, b)]
    expected_out, _ = run_op("numpy", conv2d_forward, as64, params)
    dout = random_array(rng, expected_out.shape, dtype)
    _, expected_grads = run_op("numpy", conv2d_forward, as64, params, conv2d_backward, dout.astype(np.float64))
    with use_conv_kernel_version(version):
        out, grads = run_op("emu", conv2d_forward, [x, w, b], params, conv2d_backward, dout)
    kernels, channels, kh, kw = w_shape
    terms = (channels * kh * kw, kernels * kh * kw, out.size // kernels, out.size // kernels)  # out, dx, dw, db
    results = zip(("out", "dx", "dw", "db"), (out, *grads), (expected_out, *expected_grads), terms)
    for name, value, reference, count in results:
        assert value.dtype == dtype, name
        assert_close(value, reference, dtype, atol=TOLERANCES[np.dtype(dtype)]["atol"] * np.sqrt(count), err_msg=name)


@pytest.mark.parametrize("order", THREAD_ORDERS)
@pytest.mark.parametrize("version", CONV_KERNEL_VERSIONS)
def test_thread_orders(rng, order, version):
    x_shape, w_shape, stride, padding, dilation = CASES[5]
    x, w, b = (random_array(rng, shape) for shape in (x_shape, w_shape, w_shape[:1]))
    params = _params(stride, padding, dilation)
    expected_out, _ = run_op("numpy", conv2d_forward, [x, w, b], params)
    dout = random_array(rng, expected_out.shape)
    _, expected_grads = run_op("numpy", conv2d_forward, [x, w, b], params, conv2d_backward, dout)
    with use_conv_kernel_version(version):
        out, grads = run_op(order, conv2d_forward, [x, w, b], params, conv2d_backward, dout)
    for value, reference in zip((out, *grads), (expected_out, *expected_grads)):
        assert_close(value, reference)


def test_split_reductions(rng, monkeypatch):
    """Every reduction of the implicit GEMM cut into as many slices as the plan allows."""
    monkeypatch.setattr(tiled_gemm, "MIN_TILES_PER_SPLIT", 1)
    monkeypatch.setattr(tiled_gemm, "TARGET_BLOCKS", 10**6)
    x_shape, w_shape, stride, padding, dilation = CASES[5]
    x, w, b = (random_array(rng, shape) for shape in (x_shape, w_shape, w_shape[:1]))
    params = _params(stride, padding, dilation)
    expected_out, _ = run_op("numpy", conv2d_forward, [x, w, b], params)
    dout = random_array(rng, expected_out.shape)
    _, expected_grads = run_op("numpy", conv2d_forward, [x, w, b], params, conv2d_backward, dout)
    with use_conv_kernel_version("implicit_gemm"):
        out, grads = run_op("emu", conv2d_forward, [x, w, b], params, conv2d_backward, dout)
    for value, reference in zip((out, *grads), (expected_out, *expected_grads)):
        assert_close(value, reference)


@pytest.mark.parametrize("size, kernel, stride, dilation, expected", [
    (9, 3, 1, 2, (9, 2, 2)),  # span 5: 4 cells of padding, 2 on each side
    (8, 2, 1, 3, (8, 1, 2)),  # span 4: 3 cells, the odd one after
    (13, 3, 2, 2, (7, 2, 2)),  # out = ceil(13 / 2) = 7; total = 6 * 2 + 5 - 13 = 4
    (12, 2, 2, 3, (6, 1, 1)),  # total = 5 * 2 + 4 - 12 = 2
])
def test_same_padding_covers_the_dilated_span(size, kernel, stride, dilation, expected):
    """(out, pad_before, pad_after) of TensorFlow's rule with the span (kernel - 1) * dilation + 1."""
    x, w = np.zeros((1, 1, size, size)), np.zeros((1, 1, kernel, kernel))
    _, cache = conv2d_forward(x, w, None, stride, "same", dilation=dilation)
    window = cache.window
    out, before, after = expected
    assert window.out_size == (out, out) and window.pad_h == (before, after) and window.pad_w == (before, after)
    assert window.dilation == (dilation, dilation) and window.extent == ((kernel - 1) * dilation + 1,) * 2


@pytest.mark.parametrize("algorithm", ["auto", "winograd"])
def test_winograd_is_never_chosen_for_a_dilated_kernel(rng, algorithm):
    """16 channels on both sides, stride 1, 3x3: Winograd's shape, but the taps are spread."""
    x, w = random_array(rng, (2, 16, 9, 9)), random_array(rng, (16, 16, 3, 3))
    with use_cpu_conv_algorithm(algorithm):
        out, cache = conv2d_forward(x, w, None, 1, "same", dilation=2)
        _, undilated_cache = conv2d_forward(x, w, None, 1, "same")
    assert isinstance(undilated_cache, winograd.WinogradCache)  # the same convolution undilated takes it
    assert isinstance(cache, conv._Im2colCache)
    assert_close(out, conv2d_reference(x, spread_taps(w, 2), None, 1, "same"))


@pytest.mark.parametrize(
    "x_shape, w_shape, padding, dilation, message",
    [
        ((1, 1, 6, 6), (1, 1, 3, 3), "valid", 3, "'valid' padding needs kernel <= size, got kernel 7 > size 6 "
         "(input (6, 6), dilation (3, 3))"),
        ((1, 1, 6, 6), (1, 1, 3, 3), 0, (1, 0), "dilation must be >= 1, got (1, 0)"),
        ((1, 1, 6, 6), (1, 1, 3, 3), 0, 1.5, "dilation must be an int or a pair of ints, got 1.5"),
    ],
)
def test_bad_dilation(backend, x_shape, w_shape, padding, dilation, message):
    x, w = np.zeros(x_shape), np.zeros(w_shape)
    with pytest.raises(ValueError) as info:
        run_op(backend, conv2d_forward, [x, w, None], {"padding": padding, "dilation": dilation})
    assert str(info.value) == f"conv2d_forward: {message}"
