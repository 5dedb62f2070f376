"""add (the element-wise sum of several arrays) and concatenate: values against references
written from the definitions, gradients, kernels under thread orders, errors."""

import numpy as np
import pytest

from dlcore.ops import add_backward, add_forward, concatenate_backward, concatenate_forward
from dlcore.ops import merge as merge_ops

from .op_check import THREAD_ORDERS, assert_close, check_op_gradients, random_array, run_op


def add_of(*xs):
    """add_forward on separate arguments (op_check passes inputs one by one)."""
    return add_forward(list(xs))


def add_grads(dout, cache):
    return tuple(add_backward(dout, cache))


def concatenate_of(*xs, axis=1):
    return concatenate_forward(list(xs), axis=axis)


def concatenate_grads(dout, cache):
    return tuple(concatenate_backward(dout, cache))


# ---------------------------------------------------------------- add

# Any rank >= 1, ragged sizes that fill no block, 2 to 5 inputs.
ADD_CASES = [((3, 5), 2), ((2, 3, 5, 7), 3), ((1, 4, 3), 5), ((1, 1), 2), ((3, 7, 1, 9), 4)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, count", ADD_CASES)
def test_add_matches_the_sum_and_passes_dout_to_every_input(backend, rng, shape, count, dtype):
    xs = [random_array(rng, shape, dtype) for _ in range(count)]
    dout = random_array(rng, shape, dtype)
    out, grads = run_op(backend, add_of, xs, {}, add_grads, dout)
    assert out.dtype == dtype and len(grads) == count
    expected = np.zeros(shape)
    for x in xs:
        expected += x.astype(np.float64)
    assert_close(out, expected, dtype)
    for grad in grads:
        assert grad.dtype == dtype
        np.testing.assert_array_equal(grad, dout)


def test_add_backward_hands_out_dout_itself():
    xs = [np.ones((2, 3)) for _ in range(3)]
    _, cache = add_forward(xs)
    dout = np.ones((2, 3))
    assert all(grad is dout for grad in add_backward(dout, cache))


@pytest.mark.parametrize("count", [2, 3])
def test_add_gradients(backend, rng, count):
    xs = [random_array(rng, (2, 3, 4, 5)) for _ in range(count)]
    check_op_gradients(add_of, add_grads, xs, backend=backend)


def test_add_takes_non_contiguous_inputs(backend, rng):
    a = random_array(rng, (5, 4, 3)).transpose(2, 1, 0)  # (3, 4, 5), Fortran order
    b = random_array(rng, (3, 4, 10))[:, :, ::2]  # (3, 4, 5), strided
    out, _ = run_op(backend, add_of, [a, b])
    assert_close(out, a + b)


@pytest.mark.parametrize(
    "xs, message",
    [
        ([np.zeros((2, 3))], "expected a list of at least 2 arrays, got 1 arrays"),
        (np.zeros((2, 3)), "expected a list of at least 2 arrays, got ndarray"),
        (
            [np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 4))],
            "the inputs must all have one shape, got shapes [(2, 3), (2, 3), (2, 4)]",
        ),
        ([np.zeros((2, 3)), np.zeros((2, 3), np.float32)], "input 1 must have the dtype of input 0 (float64)"),
        ([np.zeros((2, 3)), np.zeros((2, 3), np.int64)], "input 1 must be float32 or float64, got dtype int64"),
    ],
)
def test_add_bad_inputs(xs, message):
    with pytest.raises(ValueError) as info:
        add_forward(xs)
    assert str(info.value).startswith(f"add_forward: {message}")


def test_add_bad_dout():
    _, cache = add_forward([np.zeros((2, 3)), np.zeros((2, 3))])
    with pytest.raises(ValueError, match=r"add_backward: expected dout of shape \(2, 3\).*got shape \(3, 2\)"):
        add_backward(np.zeros((3, 2)), cache)
    with pytest.raises(ValueError, match=r"add_backward: dout must have the dtype of the inputs \(float64\)"):
        add_backward(np.zeros((2, 3), np.float32), cache)


@pytest.mark.parametrize("backend_order", THREAD_ORDERS)
@pytest.mark.parametrize("shape, count", ADD_CASES)
def test_add_kernel_under_thread_orders(rng, backend_order, shape, count):
    xs = [random_array(rng, shape, np.float32) for _ in range(count)]
    out, _ = run_op(backend_order, add_of, xs)
    expected, _ = run_op("numpy", add_of, xs)
    np.testing.assert_array_equal(out, expected)  # the same additions in the same order


def test_add_grid_stride_loop_covers_every_element(rng, monkeypatch):
    """With at most 2 blocks of 256 threads, 1061 elements need 3 passes."""
    monkeypatch.setattr(merge_ops, "MAX_GRID_BLOCKS", 2)
    xs = [random_array(rng, (1061,), np.float32) for _ in range(3)]
    out, _ = run_op("emu", add_of, xs)
    np.testing.assert_array_equal(out, (xs[0] + xs[1]) + xs[2])


# ---------------------------------------------------------------- concatenate


def concatenate_reference(xs, axis):
    """The inputs copied one after another into a zero array, along `axis`."""
    shape = list(xs[0].shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    out = np.zeros(shape)
    start = 0
    for x in xs:
        for offset in range(x.shape[axis]):
            index = (slice(None),) * axis + (start + offset,)
            out[index] = np.take(x, offset, axis=axis)
        start += x.shape[axis]
    return out


# (input shapes, axis): channels of feature maps (odd sizes, batch 1), features, other axes
CONCATENATE_CASES = [
    ([(2, 3, 5, 7), (2, 1, 5, 7), (2, 4, 5, 7)], 1),
    ([(1, 2, 3, 3), (1, 5, 3, 3)], 1),
    ([(3, 4), (3, 1), (3, 6)], 1),
    ([(3, 4), (3, 2)], -1),
    ([(2, 3, 5, 7), (2, 3, 5, 2)], -1),
    ([(2, 3, 1, 7), (2, 3, 4, 7)], 2),
    ([(2, 3, 5)], 1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shapes, axis", CONCATENATE_CASES)
def test_concatenate_forward_and_backward(backend, rng, shapes, axis, dtype):
    xs = [random_array(rng, shape, dtype) for shape in shapes]
    expected = concatenate_reference(xs, axis % len(shapes[0]))
    dout = random_array(rng, expected.shape, dtype)
    out, grads = run_op(backend, concatenate_of, xs, {"axis": axis}, concatenate_grads, dout)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, expected)
    start = 0
    for x, grad in zip(xs, grads):
        width = x.shape[axis]
        assert grad.shape == x.shape and grad.dtype == dtype
        np.testing.assert_array_equal(grad, np.take(dout, range(start, start + width), axis=axis))
        start += width


@pytest.mark.parametrize("shapes, axis", CONCATENATE_CASES[:3])
def test_concatenate_gradients(backend, rng, shapes, axis):
    xs = [random_array(rng, shape) for shape in shapes]
    check_op_gradients(concatenate_of, concatenate_grads, xs, {"axis": axis}, backend=backend)


@pytest.mark.parametrize(
    "shapes, axis, message",
    [
        (
            [(2, 3, 5, 7), (2, 3, 5, 6)],
            1,
            "the inputs must match in every dimension but axis 1, got shapes [(2, 3, 5, 7), (2, 3, 5, 6)]",
        ),
        ([(2, 3), (3, 3)], 1, "the inputs must match in every dimension but axis 1, got shapes [(2, 3), (3, 3)]"),
        ([(2, 3, 5, 7), (2, 3)], 1, "the inputs must all have one rank >= 2, got shapes [(2, 3, 5, 7), (2, 3)]"),
        ([(3,), (3,)], 1, "the inputs must all have one rank >= 2, got shapes [(3,), (3,)]"),
        ([(2, 3), (2, 3)], 0, "axis 0 is not a non-batch axis of inputs of rank 2"),
        ([(2, 3), (2, 3)], -2, "axis -2 is not a non-batch axis of inputs of rank 2"),
        ([(2, 3), (2, 3)], 2, "axis 2 is not a non-batch axis of inputs of rank 2"),
        ([(2, 3), (2, 3)], 1.0, "axis must be an int, got 1.0"),
        ([], 1, "expected a list of at least 1 arrays, got 0 arrays"),
    ],
)
def test_concatenate_bad_inputs(shapes, axis, message):
    with pytest.raises(ValueError) as info:
        concatenate_forward([np.zeros(shape) for shape in shapes], axis=axis)
    assert str(info.value) == f"concatenate_forward: {message}"


def test_concatenate_bad_dout():
    _, cache = concatenate_forward([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ValueError, match=r"expected dout of shape \(2, 7\).*got shape \(2, 6\)"):
        concatenate_backward(np.zeros((2, 6)), cache)
