"""Softmax cross-entropy against a math.log/exp loop, gradients, stability, dtypes, errors."""

import numpy as np
import pytest

from dlcore.ops import softmax, softmax_cross_entropy

from .op_check import THREAD_ORDERS, assert_close, numerical_gradient, on_backend, random_array
from .references import softmax_cross_entropy_reference


def _one_hot(labels, classes):
    return np.eye(classes)[labels]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch, classes", [(1, 2), (5, 3), (7, 10)])
def test_integer_labels_match_loop_reference(backend, rng, batch, classes, dtype):
    logits, labels = random_array(rng, (batch, classes), dtype, scale=3.0), rng.integers(0, classes, batch)
    loss, dlogits = on_backend(backend, softmax_cross_entropy, logits, labels)
    assert loss.shape == () and loss.dtype == dtype and dlogits.dtype == dtype
    assert_close(loss, softmax_cross_entropy_reference(logits, _one_hot(labels, classes)), dtype)
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    assert_close(dlogits, (probabilities - _one_hot(labels, classes)) / batch, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_probability_targets_match_loop_reference(backend, rng, dtype):
    logits = random_array(rng, (6, 4), dtype)
    targets = rng.random((6, 4))
    targets /= targets.sum(1, keepdims=True)
    loss, _ = on_backend(backend, softmax_cross_entropy, logits, targets.astype(dtype))
    assert_close(loss, softmax_cross_entropy_reference(logits, targets), dtype)


def test_one_hot_and_integer_labels_agree(backend, rng):
    logits, labels = random_array(rng, (8, 5)), rng.integers(0, 5, 8)
    by_index = on_backend(backend, softmax_cross_entropy, logits, labels.astype(np.uint8))
    by_one_hot = on_backend(backend, softmax_cross_entropy, logits, _one_hot(labels, 5))
    by_int_one_hot = on_backend(backend, softmax_cross_entropy, logits, _one_hot(labels, 5).astype(np.int64))
    for other in (by_one_hot, by_int_one_hot):
        assert_close(other[0], by_index[0])
        assert_close(other[1], by_index[1])


@pytest.mark.parametrize("soft", [False, True])
def test_gradient_matches_central_differences(backend, rng, soft):
    logits = random_array(rng, (4, 6))
    labels = rng.dirichlet(np.ones(6), 4) if soft else rng.integers(0, 6, 4)
    _, dlogits = on_backend(backend, softmax_cross_entropy, logits, labels)
    (expected,) = numerical_gradient(lambda z: softmax_cross_entropy(z, labels)[0], [logits], 1.0)
    np.testing.assert_allclose(dlogits, expected, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_for_huge_logits(backend, dtype):
    logits = np.array([[1e4, 0.0, -1e4], [-5e3, 5e3, 5e3]], dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, dlogits = on_backend(backend, softmax_cross_entropy, logits, np.array([1, 2]))
        probabilities = on_backend(backend, softmax, logits)
    assert_close(loss, (1e4 + np.log(2)) / 2, dtype)
    assert np.all(np.isfinite(dlogits))
    assert_close(probabilities, [[1, 0, 0], [0, 0.5, 0.5]], dtype)


def test_softmax_rows_sum_to_one(backend, rng):
    probabilities = on_backend(backend, softmax, random_array(rng, (5, 7), np.float32, scale=10.0))
    assert probabilities.dtype == np.float32
    assert_close(probabilities.sum(axis=1), np.ones(5, np.float32))


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.array([0, 3, 1]), "labels must lie in [0, 3) for K=3 classes, got 3"),
        (np.array([0, -1, 1]), "labels must lie in [0, 3) for K=3 classes, got -1"),
        (np.array([0, 1]), "labels hold 2 samples but logits hold 3"),
        (np.array([0.0, 1.0, 2.0]), "labels of shape (N,) must be integer class indices, got dtype float64"),
        (
            np.zeros((3, 4)),
            "expected labels of shape (3, 3) (one-hot or probabilities per class), got shape (3, 4)",
        ),
        (np.zeros((2, 3)), "labels hold 2 samples but logits hold 3"),
        (np.zeros((3, 3, 1)), "expected labels of shape (3,) integer or (3, 3), got shape (3, 3, 1)"),
        (
            np.array([[0], [2], [1]]),
            "labels of shape (3, 1) look like class indices in a column: squeeze them to shape (3,), "
            "e.g. labels.reshape(-1); one-hot or probability labels have shape (3, 3)",
        ),
        (np.array([[0.0], [2.0], [1.0]]), "squeeze them to shape (3,), e.g. labels.reshape(-1).astype(int)"),
    ],
)
def test_bad_labels(labels, message):
    with pytest.raises(ValueError) as info:
        softmax_cross_entropy(np.zeros((3, 3)), labels)
    assert str(info.value).startswith("softmax_cross_entropy: ")
    assert message in str(info.value)


@pytest.mark.parametrize("as_sequence", [list, tuple], ids=["list", "tuple"])
def test_labels_may_be_a_list_as_pytorch_users_pass_them(backend, rng, as_sequence):
    logits = random_array(rng, (4, 3), np.float32)
    indices, one_hot = [2, 0, 1, 2], [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    expected = softmax_cross_entropy_reference(logits, _one_hot(np.array(indices), 3))
    for labels in (indices, one_hot):
        loss, _ = on_backend(backend, softmax_cross_entropy, logits, as_sequence(labels))
        assert_close(loss, expected, np.float32)


def test_bad_logits():
    with pytest.raises(ValueError, match=r"expected logits of shape \(N, K\), got shape \(3,\)"):
        softmax_cross_entropy(np.zeros(3), np.zeros(3, int))
    with pytest.raises(ValueError, match="logits must be float32 or float64, got dtype int64"):
        softmax_cross_entropy(np.zeros((3, 2), int), np.zeros(3, int))


# ---------------------------------------------------------------- the CUDA kernels (emu, cupy)

# Backends that run loss.cu; each result is compared with the NumPy backend's.
KERNEL_BACKENDS = ("emu", pytest.param("cupy", marks=pytest.mark.gpu))


def _labels(rng, kind, batch, classes, dtype):
    """Integer class indices, one-hot rows or probability rows."""
    indices = rng.integers(0, classes, batch)
    if kind == "indices":
        return indices
    if kind == "one-hot":
        return _one_hot(indices, classes).astype(dtype)
    return rng.dirichlet(np.ones(classes), batch).astype(dtype)


def _kernel_and_numpy(backend, function, *args):
    return on_backend(backend, function, *args), on_backend("numpy", function, *args)


@pytest.mark.parametrize("backend_order", THREAD_ORDERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["indices", "one-hot", "probabilities"])
@pytest.mark.parametrize("batch, classes", [(1, 1), (7, 3), (5, 37), (9, 70)])
def test_kernels_under_thread_orders(rng, backend_order, kind, batch, classes, dtype):
    """K = 3 leaves lanes without a column; 37 and 70 give lanes two or three columns; 7 and 9
    rows leave warps of the last block without a row."""
    logits, labels = random_array(rng, (batch, classes), dtype, scale=4.0), _labels(rng, kind, batch, classes, dtype)
    (loss, dlogits), (expected_loss, expected_dlogits) = _kernel_and_numpy(
        backend_order, softmax_cross_entropy, logits, labels
    )
    assert loss.shape == () and loss.dtype == dlogits.dtype == dtype
    assert_close(loss, expected_loss)
    assert_close(dlogits, expected_dlogits)
    probabilities, expected_probabilities = _kernel_and_numpy(backend_order, softmax, logits)
    assert_close(probabilities, expected_probabilities)


@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
@pytest.mark.parametrize("kind", ["indices", "probabilities"])
def test_kernels_agree_with_numpy_in_float32(backend, rng, kind):
    logits, labels = random_array(rng, (32, 10), np.float32, scale=3.0), _labels(rng, kind, 32, 10, np.float32)
    (loss, dlogits), (expected_loss, expected_dlogits) = _kernel_and_numpy(backend, softmax_cross_entropy, logits, labels)
    assert_close(loss, expected_loss)
    assert_close(dlogits, expected_dlogits)
    probabilities, expected_probabilities = _kernel_and_numpy(backend, softmax, logits)
    assert_close(probabilities, expected_probabilities)


def test_batch_mean_of_more_rows_than_threads(rng):
    """300 rows: batch_mean's 256 threads each sum up to two row losses, over 8 warps."""
    logits, labels = random_array(rng, (300, 4), np.float32), rng.integers(0, 4, 300)
    (loss, dlogits), (expected_loss, expected_dlogits) = _kernel_and_numpy("emu", softmax_cross_entropy, logits, labels)
    assert_close(loss, expected_loss)
    assert_close(dlogits, expected_dlogits)


def test_kernels_take_non_contiguous_inputs(rng):
    logits = random_array(rng, (6, 5), np.float32).T  # (5, 6), Fortran order
    labels = np.array([[0, 9], [3, 9], [5, 9], [1, 9], [2, 9]], np.uint8)[:, 0]  # strided (5,)
    (loss, dlogits), (expected_loss, expected_dlogits) = _kernel_and_numpy("emu", softmax_cross_entropy, logits, labels)
    assert_close(loss, expected_loss)
    assert_close(dlogits, expected_dlogits)


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.array([0, 3, 1]), "labels must lie in [0, 3) for K=3 classes, got 3"),
        (np.array([0, -1, 1], np.int8), "labels must lie in [0, 3) for K=3 classes, got -1"),
        (np.array([0.0, 1.0, 2.0]), "labels of shape (N,) must be integer class indices, got dtype float64"),
        (np.zeros((3, 4)), "expected labels of shape (3, 3)"),
    ],
)
def test_kernel_path_checks_labels_before_launch(labels, message):
    with pytest.raises(ValueError) as info:
        on_backend("emu", softmax_cross_entropy, np.zeros((3, 3), np.float32), labels)
    assert str(info.value).startswith("softmax_cross_entropy: ")
    assert message in str(info.value)
