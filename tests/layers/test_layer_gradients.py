"""Every layer's backward against central differences of its forward, in float64,
for the input and every parameter."""
import numpy as np
import pytest

from dlcore.layers import (
    AvgPool2D, BatchNorm1D, BatchNorm2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sigmoid, Tanh,
)
from tests.ops.op_check import GRADIENT_TOLERANCE, numerical_gradient

F64 = dict(dtype=np.float64)


def _layer_cases():
    return [
        ("conv_same_relu", lambda: Conv2D(3, 4, 3, padding="same", activation="relu", rng=0, **F64), (2, 3, 7, 6)),
        ("conv_valid_stride2", lambda: Conv2D(2, 3, (3, 2), stride=2, padding="valid", rng=1, **F64), (1, 2, 9, 8)),
        ("conv_int_padding_no_bias", lambda: Conv2D(3, 2, 5, padding=1, use_bias=False, rng=2, **F64), (2, 3, 6, 7)),
        ("dense_relu", lambda: Dense(7, 5, activation="relu", rng=3, **F64), (4, 7)),
        ("dense", lambda: Dense(3, 2, rng=4, **F64), (1, 3)),
        ("batchnorm2d", lambda: BatchNorm2D(3, **F64), (3, 3, 4, 5)),
        ("batchnorm1d", lambda: BatchNorm1D(6, **F64), (5, 6)),
        ("maxpool_same", lambda: MaxPool2D(2, 2, padding="same"), (2, 3, 5, 7)),
        ("maxpool_overlap", lambda: MaxPool2D(3, 1), (1, 2, 5, 5)),
        ("avgpool_same_stride2", lambda: AvgPool2D(3, 2, padding="same"), (2, 2, 7, 6)),
        ("flatten", lambda: Flatten(), (2, 3, 2, 2)),
        ("relu", lambda: ReLU(), (3, 5)),
        ("tanh", lambda: Tanh(), (2, 3, 4)),
        ("sigmoid", lambda: Sigmoid(), (4, 4)),
    ]


@pytest.mark.parametrize("make,shape", [c[1:] for c in _layer_cases()], ids=[c[0] for c in _layer_cases()])
def test_layer_backward_matches_finite_differences(make, shape):
    rng = np.random.default_rng(0)
    layer = make().train()
    # keep inputs away from ReLU/max-pool kinks, where finite differences are undefined
    x = rng.standard_normal(shape) + 0.05 * np.sign(rng.standard_normal(shape))
    params = layer.parameters()
    for p in params.values():
        p.data[...] = p.data + 0.3 * rng.standard_normal(p.shape)
    dout = rng.standard_normal(layer(x).shape)

    _, cache = layer.forward(layer.check_input(x))  # the contract: the cache belongs to the call
    dx = layer.backward(dout, cache)
    arrays = [x] + [p.data for p in params.values()]
    numeric = numerical_gradient(lambda *_: layer(x), arrays, dout)
    np.testing.assert_allclose(dx, numeric[0], **GRADIENT_TOLERANCE, err_msg="input gradient")
    for (name, p), expected in zip(params.items(), numeric[1:]):
        np.testing.assert_allclose(p.grad, expected, **GRADIENT_TOLERANCE, err_msg=f"gradient of {name}")


def test_dropout_backward_applies_the_forward_mask():
    layer = Dropout(0.4, seed=7)
    x = np.ones((6, 50))
    out, cache = layer.forward(layer.check_input(x))
    kept = out != 0
    assert 0.45 < kept.mean() < 0.75
    np.testing.assert_allclose(out[kept], 1 / 0.6)
    dout = np.arange(300.0).reshape(6, 50)
    np.testing.assert_allclose(layer.backward(dout, cache), np.where(kept, dout / 0.6, 0.0))
