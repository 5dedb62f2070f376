"""Sequential applies a fused conv ReLU's gradient on the following max pool's dout (a
kh*kw times smaller array) and lets the conv skip its mask: the gradients must not change."""
import numpy as np
import pytest

import dlcore
from dlcore.backend import to_backend, to_numpy
from dlcore.layers import Conv2D, Dense, Flatten, MaxPool2D
from dlcore.ops import conv
from tests.ops.op_check import OP_BACKENDS


def _network(seed, pool_args):
    return dlcore.Sequential(
        [
            Conv2D(2, 6, 3, padding="same", activation="relu", rng=seed),
            MaxPool2D(*pool_args),
            Conv2D(6, 16, 3, padding="same", activation="relu", rng=seed),
            MaxPool2D(2),
            Flatten(),
            Dense(16 * 2 * 2, 3, rng=seed),
        ],
        needs_input_grad=True,
    )


def _unfused_backward(model, dout):
    """Each layer's own backward, in reverse, with no options: the reference."""
    for layer in reversed(model.layers):
        dout = layer.run_backward(dout)
    return dout


def _gradients(model, x, dout, backward):
    model(x)
    dx = backward(model, dout)
    return [to_numpy(dx)] + [to_numpy(p.grad) for p in model.parameters()]


@pytest.mark.parametrize("backend", OP_BACKENDS)
@pytest.mark.parametrize("pool_args", [(2,), (3, 2, "same")], ids=["tiled", "overlapping"])
@pytest.mark.parametrize("algorithm", ["im2col", "winograd"])
def test_fused_relu_gradient_is_the_unfused_one(backend, pool_args, algorithm):
    rng = np.random.default_rng(0)
    # many negative inputs: many ReLU zeros, so windows with tied (zero) maxima
    x = rng.standard_normal((4, 2, 8, 8)).astype(np.float32) - 0.5
    dout = rng.standard_normal((4, 3)).astype(np.float32)
    with dlcore.use_backend(backend), conv.use_cpu_conv_algorithm(algorithm):
        model = _network(0, pool_args)
        x_b, dout_b = to_backend(x), to_backend(dout)
        fused = _gradients(model, x_b, dout_b, lambda m, d: m.backward(d))
        unfused = _gradients(model, x_b, dout_b, _unfused_backward)
    assert model._relu_pools(0) == {1, 3}
    for got, expected in zip(fused, unfused):
        np.testing.assert_array_equal(got, expected)


def test_only_max_pools_after_a_relu_conv_in_the_backward_range_are_fused():
    layers = [
        Conv2D(1, 2, 3, activation="relu"),  # 0
        MaxPool2D(),  # 1: fused
        Conv2D(2, 2, 3),  # 2: no ReLU
        MaxPool2D(),  # 3: not fused
    ]
    model = dlcore.Sequential(layers)
    assert model._relu_pools(0) == {1}
    assert model._relu_pools(1) == set()  # the conv does not run backward
