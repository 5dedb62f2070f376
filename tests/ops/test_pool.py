"""Max and average pooling against scikit-image and a loop reference, gradients, ties,
dtypes and errors."""

import numpy as np
import pytest
from skimage.measure import block_reduce

from dlcore.ops import avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward
from dlcore.ops import pool as pool_ops

from .op_check import THREAD_ORDERS, assert_close, check_op_gradients, on_backend, random_array, run_op
from .references import explicit_pads, pool2d_reference

POOLS = {"max": (max_pool2d_forward, max_pool2d_backward), "avg": (avg_pool2d_forward, avg_pool2d_backward)}

# (x shape, kernel, stride, padding): overlapping, strided, odd sizes with "same", int and pair padding
GEOMETRIES = [
    ((2, 3, 7, 9), (3, 3), (2, 2), "same"),
    ((2, 3, 7, 9), (3, 3), (1, 1), "same"),
    ((1, 5, 13, 11), (2, 2), (2, 2), "same"),
    ((2, 3, 7, 9), (3, 2), (2, 1), "valid"),
    ((2, 3, 7, 9), (3, 3), (2, 2), 1),
    ((2, 2, 8, 8), (2, 2), (1, 1), "valid"),
    ((1, 3, 5, 5), (5, 5), (1, 1), "same"),
    ((2, 3, 6, 6), (2, 2), (2, 2), (0, 1)),
    ((2, 3, 7, 9), (1, 1), (2, 2), "valid"),
    ((2, 7, 14, 14), (2, 2), (2, 2), "same"),  # the notes' pooling: windows tile the input
]
IDS = [f"x{x}-k{k}-s{s}-p{p}" for x, k, s, p in GEOMETRIES]


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "x_shape, kernel", [((2, 3, 8, 8), 2), ((1, 5, 7, 9), 2), ((2, 7, 9, 12), 3), ((3, 1, 28, 28), (2, 4))]
)
def test_tiling_windows_match_block_reduce(backend, rng, x_shape, kernel, dtype, mode):
    x = random_array(rng, x_shape, dtype)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    out, _ = run_op(backend, POOLS[mode][0], [x], {"kernel_size": kernel})
    covered = x[:, :, : x_shape[2] // kh * kh, : x_shape[3] // kw * kw]  # "valid" drops the remainder
    expected = block_reduce(covered.astype(np.float64), (1, 1, kh, kw), np.max if mode == "max" else np.mean)
    assert out.dtype == dtype
    assert_close(out, expected, dtype)


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("x_shape, kernel, stride, padding", GEOMETRIES, ids=IDS)
def test_forward_and_backward_match_loop_reference(backend, rng, x_shape, kernel, stride, padding, mode):
    x = random_array(rng, x_shape)
    expected_out, expected_backward = pool2d_reference(x, kernel, stride, padding, mode)
    dout = random_array(rng, expected_out.shape)
    forward, backward = POOLS[mode]
    params = {"kernel_size": kernel, "stride": stride, "padding": padding}
    out, dx = run_op(backend, forward, [x], params, backward, dout)
    assert_close(out, expected_out)
    assert_close(dx, expected_backward(dout))


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("x_shape, kernel, stride, padding", GEOMETRIES[:8], ids=IDS[:8])
def test_gradients(backend, rng, x_shape, kernel, stride, padding, mode):
    x = random_array(rng, x_shape)
    params = {"kernel_size": kernel, "stride": stride, "padding": padding}
    check_op_gradients(*POOLS[mode], [x], params, backend=backend)


@pytest.mark.parametrize("x_shape, kernel, stride, padding", GEOMETRIES, ids=IDS)
def test_max_gradient_goes_to_the_first_of_tied_maxima(backend, rng, x_shape, kernel, stride, padding):
    x = rng.integers(0, 3, x_shape).astype(np.float64)  # many ties in every window
    expected_out, expected_backward = pool2d_reference(x, kernel, stride, padding, "max")
    dout = random_array(rng, expected_out.shape)
    params = {"kernel_size": kernel, "stride": stride, "padding": padding}
    out, dx = run_op(backend, max_pool2d_forward, [x], params, max_pool2d_backward, dout)
    np.testing.assert_array_equal(out, expected_out)
    assert_close(dx, expected_backward(dout))


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("kernel, stride", [(2, 2), (3, 2)])
def test_non_contiguous_input(backend, rng, mode, kernel, stride):
    x = random_array(rng, (9, 8, 3, 2)).transpose(3, 2, 1, 0)  # (2, 3, 8, 9), Fortran order
    expected_out, expected_backward = pool2d_reference(x, (kernel, kernel), (stride, stride), "same", mode)
    dout = random_array(rng, expected_out.shape)
    params = {"kernel_size": kernel, "stride": stride, "padding": "same"}
    forward, backward = POOLS[mode]
    out, dx = run_op(backend, forward, [x], params, backward, dout)
    assert_close(out, expected_out)
    assert_close(dx, expected_backward(dout))


# Memory orders of x's axes: NCHW, batch-innermost (what conv hands pooling: the NumPy backward
# compares whole tiling windows at once there) and channels-last.
LAYOUTS = {"nchw": (0, 1, 2, 3), "batch-innermost": (1, 2, 3, 0), "channels-last": (0, 2, 3, 1)}


def _laid_out(x, order):
    """x's values, laid out in memory in `order` of its axes."""
    return np.ascontiguousarray(x.transpose(order)).transpose(np.argsort(order))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dout_like_out", [True, False], ids=["dout-like-out", "dout-nchw"])
@pytest.mark.parametrize(
    "x_shape, kernel, stride",
    [((3, 4, 8, 8), (2, 2), (2, 2)), ((2, 3, 9, 11), (3, 2), (3, 2)), ((2, 3, 7, 9), (3, 3), (2, 2))],
    ids=["tiled", "tiled-remainder", "overlapping"],
)
def test_max_backward_in_every_memory_layout(backend, rng, layout, dout_like_out, x_shape, kernel, stride):
    x = _laid_out(rng.integers(0, 3, x_shape).astype(np.float64), LAYOUTS[layout])  # ties everywhere
    expected_out, expected_backward = pool2d_reference(x, kernel, stride, "valid", "max")
    dout = random_array(rng, expected_out.shape)
    if dout_like_out:
        dout = _laid_out(dout, LAYOUTS[layout])
    params = {"kernel_size": kernel, "stride": stride}
    out, dx = run_op(backend, max_pool2d_forward, [x], params, max_pool2d_backward, dout)
    np.testing.assert_array_equal(out, expected_out)
    assert_close(dx, expected_backward(dout))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_numpy_max_gradient_is_laid_out_like_x(layout, rng):
    x = _laid_out(random_array(rng, (3, 4, 8, 8)), LAYOUTS[layout])
    out, cache = max_pool2d_forward(x)
    dx = max_pool2d_backward(random_array(rng, out.shape), cache)
    assert dx.strides == x.strides


def test_numpy_tiled_max_gradient_is_the_same_in_slabs(monkeypatch, rng):
    x = _laid_out(rng.integers(0, 3, (5, 7, 8, 6)).astype(np.float32), LAYOUTS["batch-innermost"])
    out, cache = max_pool2d_forward(x)
    dout = random_array(rng, out.shape, np.float32)
    whole = max_pool2d_backward(dout, cache)
    monkeypatch.setattr(pool_ops, "SLAB_BYTES", x.nbytes // 3)  # slabs of 2 channels, the last of 1
    np.testing.assert_array_equal(max_pool2d_backward(dout, cache), whole)


def test_constant_window_sends_gradient_to_its_top_left(backend):
    x = np.ones((1, 1, 4, 4), np.float32)
    _, dx = run_op(
        backend, max_pool2d_forward, [x], {}, max_pool2d_backward, np.ones((1, 1, 2, 2), np.float32)
    )
    np.testing.assert_array_equal(dx[0, 0], [[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]])


def test_same_max_pooling_ignores_padding_even_below_zero(backend):
    x = -np.ones((1, 1, 3, 3))
    out, _ = run_op(backend, max_pool2d_forward, [x], {"kernel_size": 2, "padding": "same"})
    np.testing.assert_array_equal(out, -np.ones((1, 1, 2, 2)))


def test_same_avg_pooling_divides_by_real_cells(backend):
    x = np.ones((1, 1, 3, 3))
    out, _ = run_op(backend, avg_pool2d_forward, [x], {"kernel_size": 2, "padding": "same"})
    np.testing.assert_array_equal(out, np.ones((1, 1, 2, 2)))


def test_count_include_pad_counts_the_padding_as_zeros(backend):
    x = np.ones((1, 1, 3, 3))  # "same" pads one row below and one column to the right
    params = {"kernel_size": 2, "padding": "same", "count_include_pad": True}
    out, _ = run_op(backend, avg_pool2d_forward, [x], params)
    np.testing.assert_array_equal(out[0, 0], [[1.0, 0.5], [0.5, 0.25]])


def _is_padded(x_shape, kernel, stride, padding) -> bool:
    pads = padding if isinstance(padding, tuple) else (padding, padding)
    return any(any(explicit_pads(*args)) for args in zip(x_shape[2:], kernel, stride, pads))


# Average pooling with count_include_pad=True: every geometry with padding, and one without.
PADDED = [geometry for geometry in GEOMETRIES if _is_padded(*geometry)]
PADDED_IDS = [f"x{x}-k{k}-s{s}-p{p}" for x, k, s, p in PADDED]


@pytest.mark.parametrize("x_shape, kernel, stride, padding", PADDED + [GEOMETRIES[3]], ids=PADDED_IDS + [IDS[3]])
def test_count_include_pad_matches_loop_reference(backend, rng, x_shape, kernel, stride, padding):
    x = random_array(rng, x_shape)
    expected_out, expected_backward = pool2d_reference(x, kernel, stride, padding, "avg", count_include_pad=True)
    dout = random_array(rng, expected_out.shape)
    params = {"kernel_size": kernel, "stride": stride, "padding": padding, "count_include_pad": True}
    out, dx = run_op(backend, avg_pool2d_forward, [x], params, avg_pool2d_backward, dout)
    assert_close(out, expected_out)
    assert_close(dx, expected_backward(dout))
    if _is_padded(x_shape, kernel, stride, padding):  # the padding changes the result: the flag is not ignored
        excluding, _ = run_op(backend, avg_pool2d_forward, [x], {**params, "count_include_pad": False})
        assert np.max(np.abs(excluding - out)) > 1e-3


@pytest.mark.parametrize("x_shape, kernel, stride, padding", PADDED, ids=PADDED_IDS)
def test_count_include_pad_gradients(backend, rng, x_shape, kernel, stride, padding):
    x = random_array(rng, x_shape)
    params = {"kernel_size": kernel, "stride": stride, "padding": padding, "count_include_pad": True}
    check_op_gradients(avg_pool2d_forward, avg_pool2d_backward, [x], params, backend=backend)


def test_count_include_pad_matches_torch_when_installed(rng):
    torch = pytest.importorskip("torch")
    x = random_array(rng, (2, 3, 7, 9))
    out, _ = avg_pool2d_forward(x, (3, 3), (2, 2), 1, count_include_pad=True)
    expected = torch.nn.functional.avg_pool2d(torch.from_numpy(x), 3, 2, 1, count_include_pad=True)
    assert_close(out, expected.numpy())


def test_count_include_pad_must_be_a_bool():
    with pytest.raises(ValueError, match="count_include_pad must be True or False, got 'yes'"):
        avg_pool2d_forward(np.zeros((1, 1, 4, 4)), count_include_pad="yes")


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_float32_stays_float32(backend, rng, mode):
    x = random_array(rng, (2, 3, 7, 9), np.float32)
    forward, backward = POOLS[mode]
    out, dx = run_op(
        backend,
        forward,
        [x],
        {"kernel_size": 3, "stride": 2, "padding": "same"},
        backward,
        random_array(rng, (2, 3, 4, 5), np.float32),
    )
    assert out.dtype == np.float32 and dx.dtype == np.float32


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize(
    "x, params, message",
    [
        (np.zeros((3, 8, 8)), {}, "expected x of shape (N, C, H, W), got shape (3, 8, 8)"),
        (np.zeros((1, 3, 8, 8), np.int32), {}, "x must be float32 or float64, got dtype int32"),
        (
            np.zeros((1, 3, 8, 8)),
            {"kernel_size": 3, "padding": 3},
            "padding (3, 3) must be smaller than the kernel size 3",
        ),
        (np.zeros((1, 3, 2, 8)), {"kernel_size": 3}, "kernel 3 > size 2"),
        (np.zeros((1, 3, 8, 8)), {"kernel_size": 2, "stride": 0}, "stride must be >= 1, got 0"),
    ],
)
def test_bad_arguments(mode, x, params, message):
    op = f"{mode}_pool2d_forward"
    with pytest.raises(ValueError) as info:
        POOLS[mode][0](x, **params)
    assert str(info.value).startswith(f"{op}: ")
    assert message in str(info.value)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_bad_dout(mode):
    forward, backward = POOLS[mode]
    _, cache = forward(np.zeros((2, 3, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"expected dout of shape \(2, 3, 4, 4\).*got shape \(2, 3, 8, 8\)"):
        backward(np.zeros((2, 3, 8, 8), np.float32), cache)
    with pytest.raises(ValueError, match="dout must have the dtype of x .float32., got dtype float64"):
        backward(np.zeros((2, 3, 4, 4)), cache)


# ---------------------------------------------------------------- the CUDA kernels (emu, cupy)

# Backends that run pool.cu; each result is compared with the NumPy backend's.
KERNEL_BACKENDS = ("emu", pytest.param("cupy", marks=pytest.mark.gpu))
# (x shape, kernel, stride, padding) for every path of the kernels (256-thread blocks, one thread
# per output forward and per input cell backward).
KERNEL_GEOMETRIES = [
    ((1, 3, 9, 7), (4, 3), (3, 2), (2, 1)),  # windows overlap in both directions, pair padding
    ((2, 5, 11, 13), (2, 2), (3, 3), "valid"),  # gaps: cells no window covers get no gradient
    ((2, 3, 6, 5), (4, 2), (1, 1), "same"),  # "same" padding (1, 2) rows and (0, 1) columns
    ((1, 1, 5, 6), (5, 6), (1, 1), "valid"),  # one window as large as the plane
    ((3, 7, 17, 15), (3, 3), (2, 2), "same"),  # 1512 outputs, 5355 inputs: several blocks
]
KERNEL_IDS = [f"x{x}-k{k}-s{s}-p{p}" for x, k, s, p in KERNEL_GEOMETRIES]


def _on_backend_and_numpy(backend, rng, mode, geometry, dtype):
    """((out, dx) on `backend`, (out, dx) on the NumPy backend) for the same random x and dout;
    x holds small integers for max pooling, so that every window has ties. Mode "avg-include-pad"
    is average pooling with count_include_pad=True."""
    x_shape, kernel, stride, padding = geometry
    if mode == "max":
        x = rng.integers(0, 4, x_shape).astype(dtype)
    else:
        x = random_array(rng, x_shape, dtype)
    params = {"kernel_size": kernel, "stride": stride, "padding": padding}
    if mode == "avg-include-pad":
        mode, params["count_include_pad"] = "avg", True
    forward, backward = POOLS[mode]
    dout = random_array(rng, run_op("numpy", forward, [x], params)[0].shape, dtype)
    return tuple(run_op(name, forward, [x], params, backward, dout) for name in (backend, "numpy"))


@pytest.mark.parametrize("backend_order", THREAD_ORDERS)
@pytest.mark.parametrize("mode", ["max", "avg", "avg-include-pad"])
@pytest.mark.parametrize("geometry", KERNEL_GEOMETRIES, ids=KERNEL_IDS)
def test_kernels_under_thread_orders(rng, backend_order, mode, geometry):
    results = _on_backend_and_numpy(backend_order, rng, mode, geometry, np.float64)
    (out, dx), (expected_out, expected_dx) = results
    assert_close(out, expected_out)
    assert_close(dx, expected_dx)


@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
@pytest.mark.parametrize("mode", ["max", "avg", "avg-include-pad"])
@pytest.mark.parametrize("geometry", KERNEL_GEOMETRIES, ids=KERNEL_IDS)
def test_kernels_agree_with_numpy_in_float32(rng, backend, mode, geometry):
    (out, dx), (expected_out, expected_dx) = _on_backend_and_numpy(backend, rng, mode, geometry, np.float32)
    assert out.dtype == dx.dtype == np.float32
    if mode == "max":  # the maximum is one of the inputs: no rounding
        np.testing.assert_array_equal(out, expected_out)
    else:
        assert_close(out, expected_out)
    assert_close(dx, expected_dx)


def test_max_pooling_propagates_nan(backend):
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 1, 1] = np.nan
    out, _ = run_op(backend, max_pool2d_forward, [x], {"kernel_size": 2})
    np.testing.assert_array_equal(out[0, 0], [[np.nan, 7.0], [13.0, 15.0]])


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kernel, stride", [(2, 2), (3, 1)])
def test_numpy_max_pooling_passes_no_gradient_through_a_window_holding_nan(rng, layout, kernel, stride):
    """NumPy backend: no cell of a window holding NaN gets its gradient (the kernels send it to the NaN)."""
    x = _laid_out(random_array(rng, (2, 3, 6, 6)), LAYOUTS[layout])
    x[1, 2, 3, 4] = np.nan
    nan_cell = np.zeros(x.shape)
    nan_cell[1, 2, 3, 4] = 1
    geometry = ((kernel, kernel), (stride, stride), "valid")
    holds_nan = pool2d_reference(nan_cell, *geometry, "max")[0] > 0  # (N, C, OH, OW)
    expected_out, expected_backward = pool2d_reference(np.nan_to_num(x, nan=0.0), *geometry, "max")
    dout = random_array(rng, expected_out.shape)
    params = {"kernel_size": kernel, "stride": stride}
    out, dx = run_op("numpy", max_pool2d_forward, [x], params, max_pool2d_backward, dout)
    np.testing.assert_array_equal(np.isnan(out), holds_nan)
    assert_close(out[~holds_nan], expected_out[~holds_nan])
    assert_close(dx, expected_backward(np.where(holds_nan, 0.0, dout)))


@pytest.mark.parametrize("window", [(2, 2, "valid"), (3, 2, "same")], ids=["tiled", "overlapping"])
def test_max_backward_applies_a_relu_gate(backend, rng, window):
    """gate=out multiplies dout by (out > 0) first: the ReLU's gradient for a pooled ReLU output."""
    x = np.maximum(random_array(rng, (2, 3, 7, 7), np.float32) - 0.3, 0)  # a ReLU output: zero ties
    out, _ = max_pool2d_forward(x, *window)
    dout = random_array(rng, out.shape, np.float32)

    def gated_and_masked(x, dout):
        out, cache = max_pool2d_forward(x, *window)
        return max_pool2d_backward(dout, cache, gate=out), max_pool2d_backward(dout * (out > 0), cache)

    gated, masked = on_backend(backend, gated_and_masked, x, dout)
    assert (out == 0).any()
    np.testing.assert_array_equal(gated, masked)
