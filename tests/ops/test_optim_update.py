"""The multi-tensor optimizer kernels (kernels/optim.cu) against the NumPy updates
`adam_update_cpu` / `sgd_update_cpu`, and dlcore.optim on a kernel backend against NumPy."""

import numpy as np
import pytest

from dlcore.backend import to_backend, to_numpy
from dlcore.ops import optim_update
from dlcore.ops.optim_update import (
    adam_update,
    adam_update_cpu,
    rmsprop_update,
    rmsprop_update_cpu,
    sgd_update,
    sgd_update_cpu,
)
from dlcore.optim import SGD, Adam, AdamW, RMSprop
from dlcore.parameter import Parameter

from .op_check import THREAD_ORDERS, assert_close, backend_context, random_array

# Backends that run optim.cu; each result is compared with the NumPy update.
KERNEL_BACKENDS = ("emu", pytest.param("cupy", marks=pytest.mark.gpu))
# Ragged on purpose: an empty tensor, a single element, sizes that fill no chunk or several.
SHAPES = [(3, 4), (0,), (1,), (5, 7, 3, 3), (301,)]
ADAM = {"lr": 1e-2, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8}


def _adam(lists, **penalties):
    """ADAM and `penalties` with a different step per parameter (1, 4, 7, ...): each tensor's own
    bias correction."""
    return {**ADAM, **penalties, "steps": [1 + 3 * i for i in range(len(lists[0]))]}


def _tensors(rng, shapes, dtype, count):
    """`count` lists of one array per shape: parameters, gradients, then states."""
    lists = [[random_array(rng, shape, dtype) for shape in shapes] for _ in range(count)]
    for state in lists[3:]:  # Adam's second moment is never negative
        state[:] = [np.abs(array) for array in state]
    return lists


def _on_backend(backend, update, lists, hyper):
    """update(*lists, **hyper) in place on copies (same memory layout) on `backend`; returns the
    updated lists as NumPy arrays."""
    with backend_context(backend):
        device = [[None if array is None else to_backend(array.copy(order="K")) for array in arrays] for arrays in lists]
        update(*device, **hyper)
    return [[None if array is None else to_numpy(array) for array in arrays] for arrays in device]


def _on_numpy(update_cpu, lists, hyper):
    copies = [[None if array is None else array.copy() for array in arrays] for arrays in lists]
    update_cpu(*copies, **hyper)
    return copies


def _assert_lists_close(actual, expected):
    for actual_arrays, expected_arrays in zip(actual, expected):
        for got, want in zip(actual_arrays, expected_arrays):
            if want is None:
                assert got is None
            else:
                assert got.dtype == want.dtype
                assert_close(got, want)


@pytest.fixture
def small_chunks(monkeypatch):
    """64-element chunks: the (5, 7, 3, 3) and (301,) tensors span several blocks each."""
    monkeypatch.setattr(optim_update, "CHUNK_SIZE", 64)


@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("penalties", [{}, {"weight_decay": 0.01}, {"l1": 0.003}, {"weight_decay": 0.02, "l1": 0.01}])
def test_adam_matches_numpy(backend, rng, small_chunks, dtype, penalties):
    lists = _tensors(rng, SHAPES, dtype, 4)
    hyper = _adam(lists, **penalties)
    _assert_lists_close(_on_backend(backend, adam_update, lists, hyper), _on_numpy(adam_update_cpu, lists, hyper))


@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("penalties", [{"decoupled_weight_decay": 0.5}, {"decoupled_weight_decay": 0.1, "l1": 0.01}])
def test_adamw_matches_numpy(backend, rng, small_chunks, dtype, penalties):
    lists = _tensors(rng, SHAPES, dtype, 4)
    hyper = _adam(lists, **penalties)
    _assert_lists_close(_on_backend(backend, adam_update, lists, hyper), _on_numpy(adam_update_cpu, lists, hyper))


def _rmsprop_tensors(rng, shapes, dtype, hyper):
    """params, grads, square_avgs, grad_avgs (None unless centered), momentum buffers (None without
    momentum); square_avg >= grad_avg^2, as the running means keep it."""
    params, grads, grad_avgs, buffers, extra = _tensors(rng, shapes, dtype, 5)
    square_avgs = [np.abs(e) + c * c for e, c in zip(extra, grad_avgs)]
    if not hyper.get("centered"):
        grad_avgs = [None] * len(params)
    if not hyper.get("momentum"):
        buffers = [None] * len(params)
    return [params, grads, square_avgs, grad_avgs, buffers]


@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "hyper",
    [
        {"lr": 0.01, "alpha": 0.99, "eps": 1e-8},
        {"lr": 0.01, "alpha": 0.9, "eps": 1e-6, "momentum": 0.9, "weight_decay": 0.01},
        {"lr": 0.02, "alpha": 0.99, "eps": 1e-8, "centered": True, "l1": 0.003},
        {"lr": 0.01, "alpha": 0.95, "eps": 1e-8, "centered": True, "momentum": 0.5, "weight_decay": 0.02},
    ],
)
def test_rmsprop_matches_numpy(backend, rng, small_chunks, dtype, hyper):
    lists = _rmsprop_tensors(rng, SHAPES, dtype, hyper)
    _assert_lists_close(_on_backend(backend, rmsprop_update, lists, hyper), _on_numpy(rmsprop_update_cpu, lists, hyper))


def test_rmsprop_centered_needs_gradient_averages(rng):
    hyper = {"lr": 0.01, "alpha": 0.99, "eps": 1e-8, "centered": True}
    lists = _rmsprop_tensors(rng, [(3,)], np.float32, {})
    with pytest.raises(TypeError, match=r"grad_avgs\[0\] must be an array, got NoneType"):
        _on_backend("emu", rmsprop_update, lists, hyper)


@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "hyper",
    [
        {"lr": 0.1},
        {"lr": 0.1, "momentum": 0.9},
        {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.001},
        {"lr": 0.1, "l1": 0.01, "weight_decay": 0.01},
    ],
)
def test_sgd_matches_numpy(backend, rng, small_chunks, dtype, hyper):
    params, grads, buffers = _tensors(rng, SHAPES, dtype, 3)
    if not hyper.get("momentum"):
        buffers = [None] * len(params)  # ignored without momentum, as Optimizer passes them
    lists = [params, grads, buffers]
    _assert_lists_close(_on_backend(backend, sgd_update, lists, hyper), _on_numpy(sgd_update_cpu, lists, hyper))


@pytest.mark.parametrize("backend_order", THREAD_ORDERS)
def test_kernels_under_thread_orders(rng, small_chunks, backend_order):
    lists = _tensors(rng, SHAPES, np.float32, 4)
    hyper = _adam(lists, weight_decay=0.01, l1=0.001)
    _assert_lists_close(_on_backend(backend_order, adam_update, lists, hyper), _on_numpy(adam_update_cpu, lists, hyper))
    hyper = {"lr": 0.1, "momentum": 0.9, "nesterov": True}
    lists = lists[:3]
    _assert_lists_close(_on_backend(backend_order, sgd_update, lists, hyper), _on_numpy(sgd_update_cpu, lists, hyper))


def test_default_chunks_span_a_large_tensor(rng):
    """A tensor of 2.5 chunks of the default size next to a small one: three blocks, then one."""
    shapes = [(optim_update.CHUNK_SIZE * 5 // 2,), (9,)]
    lists = _tensors(rng, shapes, np.float32, 4)
    _assert_lists_close(_on_backend("emu", adam_update, lists, _adam(lists)), _on_numpy(adam_update_cpu, lists, _adam(lists)))


def test_mixed_dtypes_are_updated_in_one_launch_per_dtype(rng):
    float32_lists, float64_lists = _tensors(rng, [(4, 3), (5,)], np.float32, 4), _tensors(rng, [(6,)], np.float64, 4)
    lists = [[a32[0], a64[0], a32[1]] for a32, a64 in zip(float32_lists, float64_lists)]  # float32, float64, float32
    _assert_lists_close(_on_backend("emu", adam_update, lists, _adam(lists)), _on_numpy(adam_update_cpu, lists, _adam(lists)))


def test_empty_parameter_list_is_a_no_op():
    assert _on_backend("emu", adam_update, [[], [], [], []], {**ADAM, "steps": []}) == [[], [], [], []]
    assert _on_backend("emu", sgd_update, [[], [], []], {"lr": 0.1}) == [[], [], []]


def test_non_contiguous_gradients_are_copied_but_parameters_must_be_contiguous(rng):
    params, _, states, squares = _tensors(rng, [(4, 6)], np.float32, 4)
    grads = [random_array(rng, (6, 4), np.float32).T]  # (4, 6), Fortran order
    lists = [params, grads, states, squares]
    _assert_lists_close(_on_backend("emu", adam_update, lists, _adam(lists)), _on_numpy(adam_update_cpu, lists, _adam(lists)))
    with pytest.raises(ValueError, match=r"sgd_update: params\[0\] must be C-contiguous"):
        _on_backend("emu", sgd_update, [[np.asfortranarray(params[0])], grads, [None]], {"lr": 0.1})
    with pytest.raises(ValueError, match=r"adam_update: exp_avgs\[0\] must be C-contiguous"):
        _on_backend("emu", adam_update, [params, grads, [np.asfortranarray(states[0])], squares], _adam(lists))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda lists: lists[1].__setitem__(0, np.zeros((4, 3), np.float32)), r"expected grads\[0\] of shape \(3, 4\)"),
        (lambda lists: lists[2].__setitem__(1, np.zeros(5)), r"exp_avgs\[1\] must have the dtype of params\[1\] \(float32\)"),
        (lambda lists: lists[3].pop(), "got 2 params but 1 exp_avg_sqs"),
        (lambda lists: lists[0].__setitem__(0, np.zeros((3, 4), np.int64)), r"params\[0\] must be float32 or float64"),
    ],
)
def test_mismatched_lists_are_rejected_before_launch(rng, change, message):
    lists = _tensors(rng, [(3, 4), (5,)], np.float32, 4)
    hyper = _adam(lists)
    change(lists)
    with pytest.raises(ValueError, match=message):
        _on_backend("emu", adam_update, lists, hyper)


@pytest.mark.parametrize(
    "steps, message",
    [([1], "got 2 params but 1 steps"), ([1, 0], r"steps\[1\] must be an int >= 1"), ([2.0, 1], r"steps\[0\] must be an int")],
)
@pytest.mark.parametrize("backend", ["numpy", "emu"])
def test_bad_step_counts_are_rejected(rng, backend, steps, message):
    lists = _tensors(rng, [(3, 4), (5,)], np.float32, 4)
    with pytest.raises(ValueError, match=message):
        _on_backend(backend, adam_update, lists, {**ADAM, "steps": steps})


def test_sgd_momentum_needs_buffers():
    with pytest.raises(TypeError, match=r"momentum_buffers\[0\] must be an array, got NoneType"):
        _on_backend("emu", sgd_update, [[np.ones(3)], [np.ones(3)], [None]], {"lr": 0.1, "momentum": 0.9})


# ---------------------------------------------------------------- dlcore.optim on a kernel backend


def _train(backend, optimizer_class, steps=3, **kwargs):
    """Parameters after `steps` optimizer steps on `backend` (NumPy arrays), from the same start,
    with a frozen parameter and one without a gradient that must stay as they are, and one with a
    gradient on every other step only (its own step count differs from the optimizer's)."""
    rng = np.random.default_rng(5)
    start = [random_array(rng, shape, np.float32) for shape in [(3, 4), (7,), (2, 3, 3, 3), (5,), (6,), (4,)]]
    gradients = [[random_array(rng, array.shape, np.float32) for array in start] for _ in range(steps)]
    with backend_context(backend):
        params = [Parameter(to_backend(array.copy())) for array in start]
        params[3].trainable = False
        optimizer = optimizer_class(params, **kwargs)
        for step, step_gradients in enumerate(gradients):
            for index, (param, gradient) in enumerate(zip(params, step_gradients)):
                gradless = index == 4 or (index == 5 and step % 2 == 1)
                param.grad = None if gradless else to_backend(gradient)
            optimizer.step()
        return [to_numpy(param.data) for param in params], start


@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
@pytest.mark.parametrize(
    "optimizer_class, kwargs",
    [
        (Adam, {"lr": 1e-2, "weight_decay": 0.01, "l1": 0.001}),
        (AdamW, {}),
        (AdamW, {"lr": 1e-2, "weight_decay": 0.1}),
        (RMSprop, {}),
        (RMSprop, {"momentum": 0.9, "centered": True, "weight_decay": 0.01}),
        (SGD, {"lr": 0.1}),
        (SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.001}),
    ],
)
def test_optimizer_steps_match_numpy_backend(backend, optimizer_class, kwargs):
    updated, start = _train(backend, optimizer_class, **kwargs)
    expected, _ = _train("numpy", optimizer_class, **kwargs)
    for got, want in zip(updated, expected):
        assert got.dtype == np.float32
        assert_close(got, want)
    np.testing.assert_array_equal(updated[3], start[3])  # frozen
    np.testing.assert_array_equal(updated[4], start[4])  # no gradient
    assert not np.array_equal(updated[0], start[0])
