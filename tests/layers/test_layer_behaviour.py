"""Layer modes, parameters, dtype handling and bad-input errors."""
import numpy as np
import pytest

from dlcore.init import Constant, TruncatedNormal
from dlcore.layers import BatchNorm1D, BatchNorm2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU
from tests.robustness import rejects


def test_conv_and_dense_expose_parameters_and_gradients_by_name():
    conv = Conv2D(3, 8, 5, weight_init=TruncatedNormal(0.1), bias_init=Constant(0.1), rng=0)
    assert conv.weight.shape == (8, 3, 5, 5) and conv.bias.shape == (8,)
    np.testing.assert_array_equal(conv.bias.data, np.float32(0.1))
    assert np.abs(conv.weight.data).max() <= 0.2
    dense = Dense(10, 4, rng=0)
    assert set(dense.parameters()) == {"weight", "bias"} and dense.weight.shape == (10, 4)
    x = np.random.default_rng(0).standard_normal((2, 10)).astype(np.float32)
    out, cache = dense.forward(x)
    dense.backward(np.ones_like(out), cache)
    grads = dense.gradients()
    np.testing.assert_allclose(grads["bias"], [2, 2, 2, 2])
    np.testing.assert_allclose(grads["weight"], x.sum(axis=0)[:, None].repeat(4, axis=1), rtol=1e-6)


def test_batchnorm_training_uses_batch_statistics_and_eval_uses_running_ones():
    rng = np.random.default_rng(0)
    bn = BatchNorm2D(3, momentum=0.5)
    x = (rng.standard_normal((8, 3, 4, 4)) * 3 + 5).astype(np.float32)
    out = bn(x)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, atol=1e-3)
    batch_mean = x.mean(axis=(0, 2, 3))
    batch_var = x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_mean, 0.5 * batch_mean, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var, 0.5 + 0.5 * batch_var, rtol=1e-5)
    bn.eval()
    expected = (x - bn.running_mean[None, :, None, None]) / np.sqrt(bn.running_var[None, :, None, None] + bn.eps)
    np.testing.assert_allclose(bn(x), expected, rtol=1e-4, atol=1e-5)
    running_before = bn.running_mean.copy()
    bn(x)
    np.testing.assert_array_equal(bn.running_mean, running_before)  # eval leaves the statistics alone


def test_batchnorm1d_normalizes_features():
    x = np.random.default_rng(1).standard_normal((16, 5)).astype(np.float32) * 4 - 2
    out = BatchNorm1D(5)(x)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-5)


def test_dropout_is_identity_in_eval_and_reproducible_by_seed():
    x = np.ones((4, 100), dtype=np.float32)
    first, second = Dropout(0.5, seed=3), Dropout(0.5, seed=3)
    mask = first(x)
    np.testing.assert_array_equal(mask, second(x))
    assert mask.dtype == np.float32
    assert not np.array_equal(mask, Dropout(0.5, seed=4)(x))
    assert not np.array_equal(mask, first(x))  # the next call draws a new mask
    np.testing.assert_array_equal(second.eval()(x), x)


def test_float64_input_is_converted_to_the_layer_dtype():
    dense = Dense(3, 2, rng=0)
    assert dense(np.ones((2, 3))).dtype == np.float32


@pytest.mark.parametrize("layer,x,expected", [
    (Conv2D(1, 4, 3, name="conv1"), np.zeros((2, 3, 8, 8), np.float32), r"Conv2D 'conv1': expected input of shape \(N, 1, H, W\), got \(2, 3, 8, 8\)"),
    (Conv2D(1, 4, 3), np.zeros((8, 8), np.float32), r"expected input of shape \(N, 1, H, W\), got \(8, 8\)"),
    (Dense(3136, 10, name="fc"), np.zeros((4, 3000), np.float32), r"Dense 'fc': expected input of shape \(N, 3136\), got \(4, 3000\)"),
    (MaxPool2D(2), np.zeros((4, 10), np.float32), r"MaxPool2D: expected input of shape \(N, C, H, W\), got \(4, 10\)"),
    (BatchNorm2D(3), np.zeros((2, 4, 5, 5), np.float32), r"expected input of shape \(N, 3, H, W\), got \(2, 4, 5, 5\)"),
    (Flatten(), np.zeros((5,), np.float32), r"expected input of shape"),
    (ReLU(), np.zeros((0, 3), np.float32), r"empty batch"),
    (Dense(3, 2), np.zeros((2, 3), np.int64), r"floating-point input, got dtype int64"),
])
def test_bad_input_names_the_layer_and_both_shapes(layer, x, expected):
    with rejects(ValueError, match=expected):
        layer(x)


@pytest.mark.parametrize("make,expected", [
    (lambda: Conv2D(0, 4, 3), "in_channels must be a positive int"),
    (lambda: Conv2D(1, 4, (3, 0)), "kernel_size must be a positive int or a pair"),
    (lambda: Conv2D(1, 4, 3, padding="full"), "padding must be 'same', 'valid'"),
    (lambda: Dense(3, 2, activation="gelu"), "activation must be one of"),
    (lambda: Dropout(1.0), r"rate must be in \[0, 1\)"),
    (lambda: BatchNorm2D(3, momentum=2), r"momentum must be in \[0, 1\]"),
    (lambda: MaxPool2D(2, stride=0), "stride must be a positive int"),
])
def test_bad_layer_arguments_are_rejected(make, expected):
    with rejects(ValueError, match=expected):
        make()


def test_freeze_stops_gradients_reaching_parameters():
    dense = Dense(3, 2, rng=0).freeze()
    assert dense.frozen
    _, cache = dense.forward(np.ones((1, 3), np.float32))
    dense.backward(np.ones((1, 2), np.float32), cache)
    assert dense.weight.grad is None and dense.bias.grad is None


@pytest.mark.gpu
def test_arrays_on_the_wrong_device_are_clear_errors():
    import cupy

    import dlcore

    with dlcore.use_backend("cupy"):
        dense = Dense(3, 2, rng=0)
        with rejects(TypeError, match=r"Dense: got a NumPy \(host\) array, but the 'cupy' backend"):
            dense(np.ones((2, 3), np.float32))
    with rejects(TypeError, match=r"ReLU: got a CuPy \(GPU\) array, but the 'numpy' backend"):
        ReLU()(cupy.ones((2, 3), cupy.float32))
