"""The layers of the graph contract (issue 13): Add, Concatenate, GlobalAvgPool2D,
GlobalMaxPool2D, LeakyReLU and Identity; and Conv2D's dilation argument.

They are called as the graph engine calls them, `out, cache = layer.forward(layer.check_input(x))`
and `layer.backward(dout, cache)`, on every backend, against references written from the
definitions, with float64 finite-difference gradients, per-sample output shapes and errors that
name the layer and the shapes."""

import numpy as np
import pytest

from dlcore.backend import to_backend, to_numpy
from dlcore.layers import Add, Concatenate, Conv2D, GlobalAvgPool2D, GlobalMaxPool2D, Identity, LeakyReLU
from tests.ops.conftest import _poisoned_kernel_outputs, backend, rng  # noqa: F401 (the op tests' fixtures)
from tests.ops.op_check import assert_close, backend_context, numerical_gradient, random_array


def _host(value):
    return [to_numpy(v) for v in value] if isinstance(value, list) else to_numpy(value)


def run_layer(backend, layer, inputs, dout):
    """(out, grads) of forward(check_input(inputs)) then backward(dout, cache) on `backend`, as NumPy;
    `inputs` is one array, or a list for a multi-input layer (grads then a list too)."""
    with backend_context(backend):
        xs = [to_backend(x) for x in inputs] if isinstance(inputs, list) else to_backend(inputs)
        out, cache = layer.forward(layer.check_input(xs))
        grads = layer.backward(to_backend(dout), cache)
        return _host(out), _host(grads)


def _away_from_zero(x):
    return x + np.where(x >= 0, 0.1, -0.1)


def _concatenate_reference(xs, axis):
    """The inputs copied one after another into a zero array along `axis`."""
    shape = list(xs[0].shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    out, start = np.zeros(shape), 0
    for x in xs:
        index = (slice(None),) * axis + (slice(start, start + x.shape[axis]),)
        out[index] = x
        start += x.shape[axis]
    return out


def _first_max_planes(x):
    """(N, C): the maximum of each plane, by loops."""
    return np.array([[max(x[n, c].ravel()) for c in range(x.shape[1])] for n in range(x.shape[0])])


# name: (layer factory, input shapes (a list for multi-input layers), reference of the forward pass)
CASES = {
    "leaky_relu": (lambda: LeakyReLU(0.2), (2, 3, 5, 7), lambda x: np.where(x > 0, x, 0.2 * x)),
    "leaky_relu_default": (LeakyReLU, (3, 5), lambda x: np.where(x > 0, x, 0.01 * x)),
    "identity": (Identity, (3, 5), lambda x: x),
    "global_avg": (GlobalAvgPool2D, (2, 3, 5, 7), lambda x: x.sum(axis=(2, 3)) / 35),
    "global_max": (GlobalMaxPool2D, (1, 5, 7, 9), _first_max_planes),
    "add_3": (Add, [(2, 3, 5, 7)] * 3, lambda xs: xs[0] + xs[1] + xs[2]),
    "add_2_features": (Add, [(4, 6)] * 2, lambda xs: xs[0] + xs[1]),
    "concatenate_channels": (
        Concatenate,
        [(2, 3, 5, 7), (2, 1, 5, 7), (2, 4, 5, 7)],
        lambda xs: _concatenate_reference(xs, 1),
    ),
    "concatenate_features": (Concatenate, [(3, 4), (3, 2), (3, 5)], lambda xs: _concatenate_reference(xs, 1)),
    "concatenate_width": (
        lambda: Concatenate(axis=-1),
        [(1, 2, 3, 4), (1, 2, 3, 1)],
        lambda xs: _concatenate_reference(xs, 3),
    ),
}


def _inputs(rng, shapes):
    if isinstance(shapes, list):
        return [_away_from_zero(random_array(rng, shape)) for shape in shapes]
    return _away_from_zero(random_array(rng, shapes))


@pytest.mark.parametrize("name", CASES)
def test_forward_backward_and_output_shape(backend, rng, name):
    make, shapes, reference = CASES[name]
    layer = make()
    inputs = _inputs(rng, shapes)
    expected = reference(inputs)
    dout = random_array(rng, expected.shape)
    out, grads = run_layer(backend, layer, inputs, dout)
    assert_close(out, expected)
    per_sample = [shape[1:] for shape in shapes] if isinstance(shapes, list) else shapes[1:]
    assert layer.output_shape(per_sample) == expected.shape[1:]

    def forward_on_numpy(*xs):
        return layer.forward(list(xs) if isinstance(shapes, list) else xs[0])[0]

    arrays = inputs if isinstance(shapes, list) else [inputs]
    numeric = numerical_gradient(forward_on_numpy, arrays, dout)
    for position, (grad, reference_grad) in enumerate(zip(grads if isinstance(shapes, list) else [grads], numeric)):
        assert grad.shape == arrays[position].shape and grad.dtype == np.float64
        np.testing.assert_allclose(grad, reference_grad, rtol=1e-5, atol=1e-6, err_msg=f"input {position}")


@pytest.mark.parametrize("name", ["leaky_relu", "global_avg", "global_max", "add_3", "concatenate_channels"])
def test_float32_stays_float32(backend, rng, name):
    make, shapes, _ = CASES[name]
    inputs = _inputs(rng, shapes)
    inputs = [x.astype(np.float32) for x in inputs] if isinstance(inputs, list) else inputs.astype(np.float32)
    layer = make()
    with backend_context("numpy"):
        out_shape = layer.forward(layer.check_input(inputs))[0].shape
    out, grads = run_layer(backend, layer, inputs, np.ones(out_shape, np.float32))
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in (grads if isinstance(grads, list) else [grads]))


def test_global_max_gradient_goes_to_the_first_maximum(backend):
    x = np.zeros((1, 2, 3, 3))
    x[0, 0, 1, 2] = x[0, 0, 2, 0] = 5.0  # tie: the first in row-major order wins
    x[0, 1] = -1.0  # constant plane: its first cell
    out, dx = run_layer(backend, GlobalMaxPool2D(), x, np.array([[2.0, 3.0]]))
    np.testing.assert_array_equal(out, [[5.0, -1.0]])
    expected = np.zeros(x.shape)
    expected[0, 0, 1, 2], expected[0, 1, 0, 0] = 2.0, 3.0
    np.testing.assert_array_equal(dx, expected)


def test_add_passes_dout_itself_to_every_input():
    layer = Add()
    out, cache = layer.forward(layer.check_input([np.ones((2, 3)), np.ones((2, 3))]))
    dout = np.ones_like(out)
    assert all(grad is dout for grad in layer.backward(dout, cache))


def test_identity_returns_a_view_and_passes_dout():
    layer, x, dout = Identity(), np.arange(6.0).reshape(2, 3), np.ones((2, 3))
    out, cache = layer.forward(layer.check_input(x))
    assert out is not x and np.shares_memory(out, x)
    np.testing.assert_array_equal(out, x)
    assert layer.backward(dout, cache) is dout


def test_concatenate_joins_features_of_two_dimensional_inputs():
    layer = Concatenate()
    a, b = np.arange(6.0).reshape(2, 3), 10 + np.arange(4.0).reshape(2, 2)
    out, cache = layer.forward(layer.check_input([a, b]))
    np.testing.assert_array_equal(out, [[0, 1, 2, 10, 11], [3, 4, 5, 12, 13]])
    da, db = layer.backward(out * 10, cache)
    np.testing.assert_array_equal(da, a * 10)
    np.testing.assert_array_equal(db, b * 10)


@pytest.mark.parametrize("name", ["leaky_relu", "global_avg", "global_max", "add_3", "concatenate_channels"])
def test_eval_mode_keeps_no_cache(rng, name):
    make, shapes, reference = CASES[name]
    layer = make().eval()
    inputs = _inputs(rng, shapes)
    out, cache = layer.forward(layer.check_input(inputs))
    assert cache is None
    assert_close(out, reference(inputs))
    with pytest.raises(RuntimeError, match="backward needs the cache of a forward pass in training mode"):
        layer.backward(np.ones(out.shape), cache)


def test_needs_input_grad_leaves_out_unneeded_gradients(rng):
    xs = [random_array(rng, (2, 3)), random_array(rng, (2, 4))]
    layer = Concatenate()
    out, cache = layer.forward(layer.check_input(xs))
    dout = random_array(rng, out.shape)
    assert layer.backward(dout, cache, needs_input_grad=False) == [None, None]
    first, second = layer.backward(dout, cache, needs_input_grad=[False, True])
    assert first is None
    np.testing.assert_array_equal(second, dout[:, 3:])
    with pytest.raises(ValueError, match="needs_input_grad has 3 entries for 2 inputs"):
        layer.backward(dout, cache, needs_input_grad=[True, True, False])
    pool = GlobalAvgPool2D()
    out, cache = pool.forward(pool.check_input(random_array(rng, (2, 3, 4, 4))))
    assert pool.backward(np.ones(out.shape), cache, needs_input_grad=False) is None


@pytest.mark.parametrize(
    "layer, xs, message",
    [
        (
            Add(name="residual"),
            [np.zeros((2, 3, 4, 4)), np.zeros((2, 3, 4, 4)), np.zeros((2, 3, 4, 5))],
            "Add 'residual': the inputs must all have one shape, got shapes [(2, 3, 4, 4), (2, 3, 4, 4), (2, 3, 4, 5)]",
        ),
        (Add(), [np.zeros((2, 3))], "Add: expected a list of at least 2 arrays, got 1 arrays"),
        (Add(), np.zeros((2, 3)), "Add: expected a list of at least 2 arrays, got ndarray"),
        (Add(), [np.zeros((2, 3)), np.zeros((3, 3))], "Add: inputs have different batch sizes [2, 3]"),
        (
            Add(),
            [np.zeros((2, 3)), np.zeros((2, 3), np.float32)],
            "Add: the inputs must have one dtype, got ['float64', 'float32']",
        ),
        (
            Add(),
            [np.zeros((2, 3)), np.zeros((2, 3), np.int32)],
            "Add: expected a floating-point input, got dtype int32",
        ),
        (
            Concatenate(name="merge"),
            [np.zeros((2, 3, 5, 5)), np.zeros((2, 4, 5, 6))],
            "Concatenate 'merge': the inputs must match in every dimension but axis 1, "
            "got shapes [(2, 3, 5, 5), (2, 4, 5, 6)]",
        ),
        (
            Concatenate(),
            [np.zeros((2, 3, 5, 5)), np.zeros((2, 75))],
            "Concatenate: the inputs must all have one rank >= 2, got shapes [(2, 3, 5, 5), (2, 75)]",
        ),
        (
            Concatenate(axis=2),
            [np.zeros((2, 3)), np.zeros((2, 3))],
            "Concatenate: axis 2 does not exist in inputs of shapes [(2, 3), (2, 3)]",
        ),
        (Concatenate(), [np.zeros(2), np.zeros(2)], "Concatenate: the inputs must all have one rank >= 2"),
        (
            GlobalMaxPool2D(name="gmp"),
            np.zeros((2, 3, 4)),
            "GlobalMaxPool2D 'gmp': expected input of shape (N, C, H, W) with H, W >= 1, got (2, 3, 4)",
        ),
        (
            GlobalAvgPool2D(),
            np.zeros((2, 3, 0, 4)),
            "GlobalAvgPool2D: expected input of shape (N, C, H, W) with H, W >= 1, got (2, 3, 0, 4)",
        ),
        (LeakyReLU(), np.zeros((0, 3)), "LeakyReLU: got an empty batch of shape (0, 3)"),
    ],
)
def test_bad_inputs_name_the_layer_and_the_shapes(layer, xs, message):
    with pytest.raises(ValueError) as info:
        layer.check_input(xs)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    "layer, shapes, expected",
    [
        (Add(), [(3, 4, 4), (3, 4, 4)], (3, 4, 4)),
        (Concatenate(), [(3, 4, 4), (5, 4, 4)], (8, 4, 4)),
        (Concatenate(axis=-1), [(3, 4, 4), (3, 4, 1)], (3, 4, 5)),
        (Concatenate(), [(7,), (3,)], (10,)),
        (GlobalMaxPool2D(), (6, 5, 3), (6,)),
        (LeakyReLU(), (6, 5, 3), (6, 5, 3)),
        (Identity(), (4,), (4,)),
    ],
)
def test_output_shapes(layer, shapes, expected):
    assert layer.output_shape(shapes) == expected


@pytest.mark.parametrize(
    "layer, shapes, message",
    [
        (Add(name="sum"), [(3, 4, 4), (3, 4, 5)], "Add 'sum': the inputs must all have one shape, "
         "got per-sample shapes [(3, 4, 4), (3, 4, 5)]"),
        (Add(), [(3, 4)], "Add: expected a list of at least 2 input shapes, got [(3, 4)]"),
        (Concatenate(), [(3, 4, 4), (5, 4, 2)], "Concatenate: the inputs must match in every dimension but axis 1, "
         "got per-sample shapes [(3, 4, 4), (5, 4, 2)]"),
        (Concatenate(), [(3, 4, 4), (12,)], "Concatenate: the inputs must all have one rank >= 2, "
         "got per-sample shapes [(3, 4, 4), (12,)]"),
        (Concatenate(axis=3), [(3, 4), (3, 4)], "Concatenate: axis 3 does not exist in inputs of per-sample shapes"),
        (GlobalAvgPool2D(), (12,), "GlobalAvgPool2D: expected input of shape (N, C, H, W) with H, W >= 1, "
         "got per-sample shape (12,)"),
    ],
)
def test_output_shape_errors_name_the_layer_and_the_shapes(layer, shapes, message):
    with pytest.raises(ValueError) as info:
        layer.output_shape(shapes)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: LeakyReLU(-0.1), "LeakyReLU: negative_slope must be a finite number >= 0, got -0.1"),
        (lambda: LeakyReLU(float("nan")), "LeakyReLU: negative_slope must be a finite number >= 0, got nan"),
        (lambda: Concatenate(axis=0), "Concatenate: axis must be a non-zero int (0 is the batch), got 0"),
        (lambda: Concatenate(axis=1.0), "Concatenate: axis must be a non-zero int (0 is the batch), got 1.0"),
    ],
)
def test_bad_layer_arguments(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value) == message


@pytest.mark.parametrize(
    "padding, dilation, expected",
    [("same", 2, (3, 9, 10)), ("valid", (2, 3), (3, 5, 4)), (1, 2, (3, 7, 8))],
)
def test_conv2d_output_shape_counts_the_dilated_span(padding, dilation, expected):
    """A 3x3 kernel with dilation d spans 2d + 1 cells: 'valid' (2, 3) leaves 9 - 4 rows, 10 - 6 columns."""
    layer = Conv2D(2, 3, 3, padding=padding, dilation=dilation)
    assert layer.output_shape((2, 9, 10)) == expected
    out, _ = layer.forward(layer.check_input(np.zeros((1, 2, 9, 10), np.float32)))
    assert out.shape[1:] == expected


def test_conv2d_rejects_a_bad_dilation():
    with pytest.raises(ValueError, match=r"Conv2D: dilation must be a positive int or a pair of them, got 0"):
        Conv2D(2, 3, 3, dilation=0)
    with pytest.raises(ValueError, match=r"Conv2D 'c': .*got kernel 11 > size 9"):
        Conv2D(2, 3, 3, padding="valid", dilation=5, name="c").output_shape((2, 9, 10))
