"""Every conv2d kernel version (CONV_KERNEL_VERSIONS) against the NumPy reference on the
emulator: ragged shapes in float32 and float64, the fused ReLU, no bias, no input gradient,
split reductions, thread orders, and bit-identical results from run to run."""

import numpy as np
import pytest

from dlcore import emu
from dlcore.ops import conv, tiled_gemm
from dlcore.ops.conv import (
    CONV_KERNEL_VERSIONS,
    conv2d_backward,
    conv2d_backward_cpu,
    conv2d_forward,
    conv2d_forward_cpu,
    use_conv_kernel_version,
)

from .op_check import THREAD_ORDERS, TOLERANCES, assert_close, random_array, run_op

# (x shape, w shape, stride, padding): odd sizes, channels 1/2/3/5/7/33/66 (no multiple of a
# tile), batch 1, kernels 1/3/5 and even ones, strides 1/2/3, 'same'/'valid'/int/pair padding
CASES = [
    ((1, 3, 7, 9), (5, 3, 3, 3), 1, "same"),
    ((2, 5, 13, 11), (7, 5, 5, 5), 2, "valid"),
    ((2, 7, 9, 7), (3, 7, 3, 5), (2, 1), (1, 2)),
    ((3, 3, 11, 13), (4, 3, 1, 1), 1, 0),  # 429 pixels: the weight gradient splits its reduction
    ((2, 33, 6, 5), (33, 33, 3, 3), 1, 1),  # 297-long reductions: forward and data gradient split
    ((1, 66, 5, 4), (70, 66, 1, 3), 1, "same"),  # more than one 64-row tile in every pass
    ((2, 2, 9, 9), (3, 2, 3, 3), 3, 1),
    ((2, 3, 8, 6), (2, 3, 4, 4), 1, "same"),  # even kernel: more padding after than before
    ((1, 1, 28, 28), (32, 1, 5, 5), 1, "same"),  # the notes' first layer
]
IDS = [f"x{x}-w{w}-s{s}-p{p}" for x, w, s, p in CASES]


@pytest.fixture(params=CONV_KERNEL_VERSIONS)
def version(request):
    return request.param


def make_inputs(rng, x_shape, w_shape, stride, padding, dtype, bias=True):
    """x, w, b (None without bias) and a dout of the forward output's shape."""
    x, w = random_array(rng, x_shape, dtype), random_array(rng, w_shape, dtype)
    b = random_array(rng, w_shape[:1], dtype) if bias else None
    out, _ = conv2d_forward_cpu(x, w, b, stride, padding)
    return x, w, b, random_array(rng, out.shape, dtype)


def reference(x, w, b, dout, stride, padding, activation, need_input_grad=True):
    """(out, (dx, dw, db)) of the NumPy path in float64."""
    as64 = [None if a is None else a.astype(np.float64) for a in (x, w, b, dout)]
    out, cache = conv2d_forward_cpu(*as64[:3], stride, padding, activation)
    return out, conv2d_backward_cpu(as64[3], cache, need_input_grad)


def on_emu(version, x, w, b, dout, stride, padding, activation, need_input_grad=True, backend="emu"):
    params = {"stride": stride, "padding": padding, "activation": activation}
    with use_conv_kernel_version(version):
        return run_op(backend, conv2d_forward, [x, w, b], params, conv2d_backward, dout,
                      {"need_input_grad": need_input_grad})  # fmt: skip


def assert_matches(result, expected, dtype, x_shape, w_shape):
    """Outputs and gradients within the dtype's tolerance, the absolute one grown by the square
    root of the number of unit-size products each value sums (rounding errors add up like a
    random walk; a dw of the 28 x 28 layer sums 784 of them, and may cancel to near 0)."""
    (out, grads), (ref_out, ref_grads) = result, expected
    kernels, channels, kh, kw = w_shape
    terms = {"out": channels * kh * kw, "dx": kernels * kh * kw, "dw": out.size // kernels, "db": out.size // kernels}
    assert out.dtype == dtype
    for name, value, ref_value in zip(terms, (out, *grads), (ref_out, *ref_grads)):
        if ref_value is None:
            assert value is None, f"{name} should be None"
            continue
        assert value.dtype == dtype, name
        atol = TOLERANCES[np.dtype(dtype)]["atol"] * np.sqrt(terms[name])
        assert_close(value, ref_value, dtype, atol=atol, err_msg=name)


@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CASES, ids=IDS)
def test_matches_numpy(version, rng, x_shape, w_shape, stride, padding, dtype, activation):
    x, w, b, dout = make_inputs(rng, x_shape, w_shape, stride, padding, dtype)
    result = on_emu(version, x, w, b, dout, stride, padding, activation)
    assert_matches(result, reference(x, w, b, dout, stride, padding, activation), dtype, x_shape, w_shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_without_bias_and_without_input_gradient(version, rng, dtype):
    x, w, _, dout = make_inputs(rng, (2, 5, 9, 8), (6, 5, 3, 3), 1, "same", dtype, bias=False)
    result = on_emu(version, x, w, None, dout, 1, "same", "relu", need_input_grad=False)
    assert result[1][0] is None and result[1][2] is None
    expected = reference(x, w, None, dout, 1, "same", "relu", need_input_grad=False)
    assert_matches(result, expected, dtype, x.shape, w.shape)


@pytest.mark.parametrize("order", THREAD_ORDERS)
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", [CASES[1], CASES[5]], ids=[IDS[1], IDS[5]])
def test_thread_orders(version, rng, order, x_shape, w_shape, stride, padding):
    """A missing __syncthreads shows up as a wrong result under reverse or shuffled order."""
    x, w, b, dout = make_inputs(rng, x_shape, w_shape, stride, padding, np.float64)
    result = on_emu(version, x, w, b, dout, stride, padding, "relu", backend=order)
    assert_matches(result, reference(x, w, b, dout, stride, padding, "relu"), np.float64, x_shape, w_shape)


def test_many_splits_match_one(rng, monkeypatch):
    """Split every reduction as finely as the plan allows (one stage per slice): partial
    slices and their fixed-order sums give the reference result."""
    monkeypatch.setattr(tiled_gemm, "MIN_TILES_PER_SPLIT", 1)
    monkeypatch.setattr(tiled_gemm, "TARGET_BLOCKS", 10**6)
    x_shape, w_shape, stride, padding = CASES[4]
    assert tiled_gemm.plan_tiles(33, 2 * 6 * 5, 33 * 9).splits == 38
    x, w, b, dout = make_inputs(rng, x_shape, w_shape, stride, padding, np.float64)
    result = on_emu("implicit_gemm", x, w, b, dout, stride, padding, "relu")
    assert_matches(result, reference(x, w, b, dout, stride, padding, "relu"), np.float64, x_shape, w_shape)


def test_bit_identical_runs(version, rng):
    """No atomics: every output element is summed in a fixed order, so the bits do not depend
    on the run, the number of emulator workers or the order threads run in."""
    x, w, b, dout = make_inputs(rng, (3, 3, 11, 13), (4, 3, 3, 3), 1, "same", np.float32)
    runs = []
    for settings in ({"deterministic": True}, {"deterministic": True}, {"workers": 2, "order": "shuffled"}):
        with emu.configured(**settings):
            out, grads = on_emu(version, x, w, b, dout, 1, "same", "relu")
        runs.append([out, *grads])
    for run in runs[1:]:
        for first, again in zip(runs[0], run):
            assert first.tobytes() == again.tobytes()


def test_version_selection(monkeypatch):
    assert conv.conv_kernel_version() in CONV_KERNEL_VERSIONS
    with use_conv_kernel_version("direct"):
        assert conv.conv_kernel_version() == "direct"
        assert conv.set_conv_kernel_version("implicit_gemm") == "direct"
    with pytest.raises(ValueError, match="conv kernel version must be one of direct, implicit_gemm, got 'fast'"):
        conv.set_conv_kernel_version("fast")
    conv.kernel_version.reset()
    monkeypatch.setenv("DLCORE_CONV_KERNEL", "direct")
    assert conv.conv_kernel_version() == "direct"
    conv.kernel_version.reset()
    monkeypatch.setenv("DLCORE_CONV_KERNEL", "winograd")
    with pytest.raises(ValueError, match="DLCORE_CONV_KERNEL must be one of"):
        conv.conv_kernel_version()
    conv.kernel_version.reset()
    monkeypatch.delenv("DLCORE_CONV_KERNEL")
    assert conv.conv_kernel_version() == "implicit_gemm"
