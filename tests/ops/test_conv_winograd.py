"""The NumPy path's Winograd convolution (ops/winograd.py), forced with
use_cpu_conv_algorithm("winograd"): against SciPy in float64 and float32, gradient checks,
chunked against unchunked work, against the im2col path, the "auto" choice, the cache's
life cycle and the exact 1-D transforms."""

import numpy as np
import pytest
from scipy.signal import correlate

from dlcore.ops import conv, conv2d_backward, conv2d_forward, winograd
from dlcore.ops.conv import (
    CPU_CONV_ALGORITHMS,
    WINOGRAD_MIN_CHANNELS,
    cpu_conv_algorithm,
    set_cpu_conv_algorithm,
    use_cpu_conv_algorithm,
)

from .op_check import assert_close, check_op_gradients, random_array, run_op
from .references import conv2d_reference

# Float32 Winograd against float64, as a fraction of the largest magnitude of the float64
# result: max|actual - expected| <= WINOGRAD_FLOAT32 * max|expected|. Elementwise rtol does
# not fit: the transforms' rounding is spread over every output of a tile (F(4, 5)'s B^T
# has entries up to 21, G down to 1/360, and each Winograd value sums up to 64 terms), so it
# scales with the layer's largest values, not with each output. Measured on these shapes
# and the notes' layers: up to 9e-6 (dw of 5x5 kernels; out and dx up to 5e-6), against
# 4e-7 for im2col. 3e-5 (about 250 float32 ulps of the largest value) leaves 3x headroom
# and still catches real bugs: one entry of G off by 1e-4 gives 6e-5 to 9e-5, transforms
# rounded to float16 1e-3, a wrong sign in B^T or a missing tile 0.3 to 1.
WINOGRAD_FLOAT32 = 3e-5

# (x shape, w shape, padding): r = 2..5, 'same' / 'valid' / int padding, outputs that are and
# are not multiples of the 4x4 tile, batch 1, C = 1, K = 1, non-square images, 1x1 outputs
GEOMETRIES = [
    ((2, 3, 8, 8), (4, 3, 3, 3), "same"),  # 8x8 output: whole tiles only
    ((1, 2, 7, 9), (3, 2, 3, 3), "same"),  # batch 1, partial tiles in both directions
    ((2, 1, 9, 6), (3, 1, 2, 2), "same"),  # C = 1, even kernel: the padding after only
    ((2, 3, 6, 10), (1, 3, 4, 4), "same"),  # K = 1, r = 4: one more padding after
    ((2, 2, 13, 11), (3, 2, 5, 5), "same"),
    ((1, 3, 12, 8), (2, 3, 5, 5), "valid"),  # 8x4 output: whole tiles, a 2-tile-row patch
    ((2, 2, 5, 7), (3, 2, 3, 3), "valid"),  # 3x5 output
    ((2, 2, 6, 5), (2, 2, 4, 4), 2),  # 7x6 output
    ((2, 2, 4, 17), (3, 2, 2, 2), 1),  # wide: 5x18
    ((2, 3, 16, 3), (2, 3, 3, 3), 0),  # tall: 14x1
    ((1, 1, 1, 1), (2, 1, 5, 5), "same"),  # a 1x1 image: one output in a tile of padding
    ((3, 2, 4, 4), (2, 2, 4, 4), "valid"),  # 1x1 output
]
IDS = [f"x{x}-w{w}-p{p}" for x, w, p in GEOMETRIES]


@pytest.fixture(autouse=True)
def _winograd():
    """Every test runs with Winograd forced, and leaves the previous choice behind."""
    with use_cpu_conv_algorithm("winograd"):
        yield


def forward_backward(x, w, b, dout, padding="same", activation=None, need_input_grad=True):
    """(out, (dx, dw, db), cache) of the NumPy path under the current algorithm."""
    out, cache = conv2d_forward(x, w, b, 1, padding, activation)
    return out, conv2d_backward(dout, cache, need_input_grad), cache


def inputs(rng, x_shape, w_shape, dtype=np.float64, bias=True):
    """x, w and b (None without bias) of `dtype`."""
    x, w = random_array(rng, x_shape, dtype), random_array(rng, w_shape, dtype)
    return x, w, (random_array(rng, w_shape[:1], dtype) if bias else None)


def largest_relative_error(actual, expected):
    """max|actual - expected| / max|expected|, in float64."""
    expected = np.asarray(expected, dtype=np.float64)
    return np.max(np.abs(np.asarray(actual, dtype=np.float64) - expected)) / np.max(np.abs(expected))


# ---------------------------------------------------------------- forward against SciPy


@pytest.mark.parametrize("x_shape, w_shape, padding", GEOMETRIES, ids=IDS)
def test_forward_matches_scipy_float64(rng, x_shape, w_shape, padding):
    x, w, b = inputs(rng, x_shape, w_shape)
    out, cache = conv2d_forward(x, w, b, 1, padding)
    assert isinstance(cache, winograd.WinogradCache)
    assert out.dtype == np.float64
    assert_close(out, conv2d_reference(x, w, b, 1, padding))


@pytest.mark.parametrize("x_shape, w_shape, padding", GEOMETRIES, ids=IDS)
def test_forward_matches_scipy_float32(rng, x_shape, w_shape, padding):
    x, w, b = inputs(rng, x_shape, w_shape, np.float32)
    out, cache = conv2d_forward(x, w, b, 1, padding)
    assert isinstance(cache, winograd.WinogradCache)
    assert out.dtype == np.float32
    assert largest_relative_error(out, conv2d_reference(x, w, b, 1, padding)) <= WINOGRAD_FLOAT32


def test_fused_relu_and_no_bias_match_scipy(rng):
    x, w, _ = inputs(rng, (2, 3, 9, 7), (4, 3, 5, 5), bias=False)
    out, cache = conv2d_forward(x, w, None, 1, "same", "relu")
    assert isinstance(cache, winograd.WinogradCache)
    assert_close(out, np.maximum(conv2d_reference(x, w, None, 1, "same"), 0))


# ---------------------------------------------------------------- float32 error bound


@pytest.mark.parametrize(
    "x_shape, w_shape",
    [((2, 16, 10, 10), (16, 16, 5, 5)), ((2, 8, 9, 11), (12, 8, 3, 3)), ((2, 8, 9, 11), (12, 8, 4, 4))],
    ids=["r5", "r3", "r4"],
)
def test_float32_error_bound(rng, x_shape, w_shape):
    """Float32 output and all three gradients within WINOGRAD_FLOAT32 of float64 im2col
    (independent of the Winograd transforms, so that a wrong one fails here too)."""
    x, w, b = inputs(rng, x_shape, w_shape)
    dout = random_array(rng, x_shape[:1] + w_shape[:1] + x_shape[2:])
    with use_cpu_conv_algorithm("im2col"):
        out64, grads64, _ = forward_backward(x, w, b, dout)
    as32 = [a.astype(np.float32) for a in (x, w, b, dout)]
    out32, grads32, cache = forward_backward(*as32)
    assert isinstance(cache, winograd.WinogradCache)
    assert out32.dtype == np.float32 and all(grad.dtype == np.float32 for grad in grads32)
    for name, actual, expected in zip(("out", "dx", "dw", "db"), (out32, *grads32), (out64, *grads64)):
        error = largest_relative_error(actual, expected)
        assert error <= WINOGRAD_FLOAT32, f"{name}: float32 error {error:.2e} of the largest value"


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize(
    "x_shape, w_shape, padding",
    [
        ((1, 2, 5, 6), (2, 2, 3, 3), "same"),
        ((2, 1, 4, 5), (2, 1, 5, 5), "same"),
        ((2, 2, 5, 6), (1, 2, 2, 2), "valid"),
        ((1, 2, 3, 5), (2, 2, 4, 4), 1),
    ],
    ids=["r3-same", "r5-same-C1", "r2-valid-K1", "r4-pad1"],
)
def test_gradients(rng, x_shape, w_shape, padding):
    x, w, b = inputs(rng, x_shape, w_shape)
    check_op_gradients(conv2d_forward, conv2d_backward, [x, w, b], {"stride": 1, "padding": padding})


def test_gradients_fused_relu(rng):
    x, w, b = inputs(rng, (2, 2, 5, 6), (3, 2, 3, 3))
    params = {"stride": 1, "padding": "same", "activation": "relu"}
    out, cache = conv2d_forward(x, w, b, **params)
    assert isinstance(cache, winograd.WinogradCache)
    assert 0 < np.count_nonzero(out) < out.size  # the gate masks some outputs, not all
    check_op_gradients(conv2d_forward, conv2d_backward, [x, w, b], params)


def test_gradients_without_bias(rng):
    x, w, _ = inputs(rng, (2, 2, 5, 4), (3, 2, 3, 3), bias=False)
    check_op_gradients(lambda x, w: conv2d_forward(x, w, None, 1, "same"), conv2d_backward, [x, w])
    _, (_, _, db), cache = forward_backward(x, w, None, np.ones((2, 3, 5, 4)))
    assert isinstance(cache, winograd.WinogradCache)
    assert db is None


def test_input_gradient_can_be_skipped(rng):
    x, w, b = inputs(rng, (2, 3, 7, 6), (4, 3, 5, 5))
    dout = random_array(rng, (2, 4, 7, 6))
    _, full, _ = forward_backward(x, w, b, dout, activation="relu")
    _, skipped, _ = forward_backward(x, w, b, dout, activation="relu", need_input_grad=False)
    assert full[0] is not None and skipped[0] is None
    assert_close(skipped[1], full[1])
    assert_close(skipped[2], full[2])


def test_non_contiguous_arguments(rng):
    """Strided x and dout, Fortran-ordered w: the same as contiguous copies."""
    x = random_array(rng, (9, 5, 3, 2)).transpose(3, 2, 1, 0)[:, :, ::2]  # (2, 3, 3, 9), strided
    w = np.asfortranarray(random_array(rng, (4, 3, 3, 3)))
    dout = random_array(rng, (9, 3, 4, 2)).transpose(3, 2, 1, 0)  # (2, 4, 3, 9)
    out, grads, _ = forward_backward(x, w, None, dout)
    copies = [np.ascontiguousarray(a) for a in (x, w, dout)]
    expected_out, expected_grads, _ = forward_backward(copies[0], copies[1], None, copies[2])
    assert_close(out, expected_out)
    for grad, expected in zip(grads[:2], expected_grads[:2]):
        assert_close(grad, expected)


# ---------------------------------------------------------------- chunks


# (5, 3, 17, 11) x (4, 3, 5, 5), 'same': 5 x 3 tiles of 8x8 patches; a chunk's largest array
# (64, max(C, K) = 4, P) of float64 takes 2048 bytes per tile, 6144 per tile row of one image.
CHUNKED_X, CHUNKED_W = (5, 3, 17, 11), (4, 3, 5, 5)
ROW_BYTES = 64 * 4 * 8 * 3


@pytest.mark.parametrize(
    "chunk_bytes, image_slices, row_slices",
    [
        (2 * 5 * ROW_BYTES, [(0, 5)], [(0, 2), (2, 4), (4, 5)]),  # tile rows of the whole batch
        (2 * ROW_BYTES, [(0, 2), (2, 4), (4, 5)], [(i, i + 1) for i in range(5)]),  # batch slices
        (1, [(i, i + 1) for i in range(5)], [(i, i + 1) for i in range(5)]),  # one tile row of one image
    ],
    ids=["row-chunks", "batch-chunks", "smallest"],
)
def test_chunks_give_the_one_chunk_results(rng, monkeypatch, chunk_bytes, image_slices, row_slices):
    x, w, b = inputs(rng, CHUNKED_X, CHUNKED_W)
    dout = random_array(rng, (5, 4, 17, 11))
    out, grads, cache = forward_backward(x, w, b, dout, activation="relu")
    assert len(cache.chunks) == 1
    monkeypatch.setattr(winograd, "CHUNK_BYTES", chunk_bytes)
    chunked_out, chunked_grads, chunked = forward_backward(x, w, b, dout, activation="relu")
    assert sorted({(c.images.start, c.images.stop) for c in chunked.chunks}) == image_slices
    assert sorted({(c.row_tiles.start, c.row_tiles.stop) for c in chunked.chunks}) == row_slices
    assert len(chunked.chunks) == len(image_slices) * len(row_slices)
    assert_close(chunked_out, out)
    for chunked_grad, grad in zip(chunked_grads, grads):
        assert_close(chunked_grad, grad)
    inference_out, none = conv2d_forward(x, w, b, 1, "same", "relu", need_backward=False)
    assert none is None
    assert_close(inference_out, out)


# ---------------------------------------------------------------- against im2col


def test_matches_im2col_on_the_notes_second_layer(rng):
    """The notes' conv2, batch scaled down: (4, 32, 14, 14) x (64, 32, 5, 5), 'same', ReLU."""
    x, w, b = inputs(rng, (4, 32, 14, 14), (64, 32, 5, 5))
    dout = random_array(rng, (4, 64, 14, 14))
    out, grads, cache = forward_backward(x, w, b, dout, activation="relu")
    assert isinstance(cache, winograd.WinogradCache)
    with use_cpu_conv_algorithm("im2col"):
        expected_out, expected_grads, im2col_cache = forward_backward(x, w, b, dout, activation="relu")
    assert not isinstance(im2col_cache, winograd.WinogradCache)
    assert_close(out, expected_out)
    for grad, expected in zip(grads, expected_grads):
        assert_close(grad, expected)


# ---------------------------------------------------------------- the algorithm choice


@pytest.mark.parametrize(
    "algorithm, x_shape, w_shape, stride, winograd_expected",
    [
        ("auto", (2, 32, 14, 14), (64, 32, 5, 5), 1, True),  # the notes' conv2
        ("auto", (2, 1, 28, 28), (32, 1, 5, 5), 1, False),  # the notes' conv1: C = 1
        ("auto", (2, 32, 14, 14), (64, 32, 5, 5), 2, False),  # stride 2
        ("auto", (1, 32, 8, 8), (64, 32, 3, 5), 1, False),  # not square
        ("auto", (1, 32, 8, 8), (64, 32, 7, 7), 1, False),  # 7x7: past KERNEL_SIZES
        ("auto", (1, WINOGRAD_MIN_CHANNELS, 8, 8), (WINOGRAD_MIN_CHANNELS, WINOGRAD_MIN_CHANNELS, 3, 3), 1, True),
        ("auto", (1, WINOGRAD_MIN_CHANNELS - 1, 8, 8), (32, WINOGRAD_MIN_CHANNELS - 1, 3, 3), 1, False),
        ("auto", (1, 32, 8, 8), (WINOGRAD_MIN_CHANNELS - 1, 32, 3, 3), 1, False),
        ("winograd", (2, 1, 28, 28), (32, 1, 5, 5), 1, True),  # forced: any channel count
        ("winograd", (2, 32, 14, 14), (64, 32, 5, 5), 2, False),  # forced, but does not apply
        ("im2col", (2, 32, 14, 14), (64, 32, 5, 5), 1, False),
    ],
)
def test_algorithm_choice(rng, algorithm, x_shape, w_shape, stride, winograd_expected):
    x, w, b = inputs(rng, x_shape, w_shape, np.float32)
    with use_cpu_conv_algorithm(algorithm):
        assert cpu_conv_algorithm() == algorithm
        out, cache = conv2d_forward(x, w, b, stride, "same")
    assert isinstance(cache, winograd.WinogradCache) == winograd_expected
    assert out.shape == (x_shape[0], w_shape[0], -(-x_shape[2] // stride), -(-x_shape[3] // stride))


def test_choice_is_restored_and_checked(monkeypatch):
    assert cpu_conv_algorithm() == "winograd"
    with use_cpu_conv_algorithm("im2col"):
        assert set_cpu_conv_algorithm("auto") == "im2col"
        assert cpu_conv_algorithm() == "auto"
    assert cpu_conv_algorithm() == "winograd"
    with pytest.raises(ValueError, match="CPU convolution algorithm must be one of auto, im2col, winograd, got 'fft'"):
        set_cpu_conv_algorithm("fft")
    with pytest.raises(ValueError, match="got 'fft'"):
        with use_cpu_conv_algorithm("fft"):
            pass
    assert cpu_conv_algorithm() == "winograd"
    assert CPU_CONV_ALGORITHMS == ("auto", "im2col", "winograd")
    try:
        conv.cpu_algorithm.reset()
        monkeypatch.setenv("DLCORE_CPU_CONV", "im2col")
        assert cpu_conv_algorithm() == "im2col"
        conv.cpu_algorithm.reset()
        monkeypatch.setenv("DLCORE_CPU_CONV", "fft")
        with pytest.raises(ValueError, match="DLCORE_CPU_CONV must be one of auto, im2col, winograd, got 'fft'"):
            cpu_conv_algorithm()
    finally:
        monkeypatch.undo()
        conv.cpu_algorithm.reset()  # the fixture then restores the choice from before the test


# ---------------------------------------------------------------- the cache


def test_second_backward_on_one_cache_gives_the_same_results(rng):
    """The cache keeps its Winograd-domain arrays until it is dropped (they are recycled
    only then), so a second backward pass reads them intact."""
    x, w, b = inputs(rng, (3, 4, 9, 10), (5, 4, 5, 5))
    dout = random_array(rng, (3, 5, 9, 10))
    out, cache = conv2d_forward(x, w, b, 1, "same", "relu")
    assert isinstance(cache, winograd.WinogradCache)
    first = conv2d_backward(dout, cache)
    conv2d_forward(x[:1] * 2, w, b, 1, "same", "relu")  # another pass between the two
    second = conv2d_backward(dout, cache)
    for again, grad in zip(second, first):
        np.testing.assert_array_equal(again, grad)


def test_inference_keeps_no_cache(rng):
    x, w, b = inputs(rng, (3, 4, 9, 10), (5, 4, 3, 3))
    out, cache = conv2d_forward(x, w, b, 1, "same", "relu")
    assert isinstance(cache, winograd.WinogradCache)
    inference_out, none = conv2d_forward(x, w, b, 1, "same", "relu", need_backward=False)
    assert none is None
    np.testing.assert_array_equal(inference_out, out)
    _, bound = run_op("numpy", conv2d_forward, [x, w, b], {"padding": "same", "need_backward": False})
    assert bound is None


# ---------------------------------------------------------------- the transforms


@pytest.mark.parametrize("r", list(winograd.KERNEL_SIZES))
def test_transforms_compute_1d_correlation(rng, r):
    """F(4, r) in 1-D: A^T [(G g) * (B^T d)] = correlate(d, g, 'valid') for any d of a = 4 + r - 1
    values and g of r, in float64 to rounding."""
    a_t, g_matrix, b_t = winograd.transforms(r, np.dtype(np.float64))
    a = winograd.TILE + r - 1
    assert (a_t.shape, g_matrix.shape, b_t.shape) == ((winograd.TILE, a), (a, r), (a, a))
    assert not any(matrix.flags.writeable for matrix in (a_t, g_matrix, b_t))
    for _ in range(5):
        d, g = random_array(rng, (a,)), random_array(rng, (r,))
        assert_close(a_t @ ((g_matrix @ g) * (b_t @ d)), correlate(d, g, mode="valid"))
    float32 = winograd.transforms(r, np.dtype(np.float32))
    for single, double in zip(float32, (a_t, g_matrix, b_t)):
        assert single.dtype == np.float32
        np.testing.assert_array_equal(single, double.astype(np.float32))


def test_applies_to_stride_1_square_kernels_of_2_to_5():
    assert list(winograd.KERNEL_SIZES) == [2, 3, 4, 5]
    window = conv.window_2d("test", (8, 8), (3, 3), 1, "same")
    assert winograd.applies(window)
    for kernel, stride in (((1, 1), 1), ((6, 6), 1), ((3, 5), 1), ((3, 3), 2), ((3, 3), (1, 2))):
        assert not winograd.applies(conv.window_2d("test", (8, 8), kernel, stride, "same"))
