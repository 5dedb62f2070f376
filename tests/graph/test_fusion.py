"""The conv + ReLU -> max pool pass: the ReLU's gradient applied on the pool's (kh*kw times
smaller) dout and the conv's mask skipped. It must be applied wherever the pattern occurs,
only where the conv's output has no other reader, and never change a gradient."""
import numpy as np
import pytest

import dlcore
from dlcore.backend import to_backend, to_numpy
from dlcore.graph.fusion import ConvReLUMaxPool
from dlcore.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU
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


def _fused_steps(model) -> list[str]:
    return [step.name for step in model.plan().steps if isinstance(step, ConvReLUMaxPool)]


def _gradients(model, x, dout, fuse):
    model.fuse = fuse
    model(x)
    dx = model.backward(dout)
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
        fused = _gradients(model, x_b, dout_b, fuse=True)
        assert _fused_steps(model) == ["conv2d+max_pool2d", "conv2d_1+max_pool2d_1"]
        unfused = _gradients(model, x_b, dout_b, fuse=False)
        assert _fused_steps(model) == []
    for got, expected in zip(fused, unfused):
        np.testing.assert_array_equal(got, expected)


def test_only_a_max_pool_after_a_relu_conv_is_fused():
    model = dlcore.Sequential([
        Conv2D(1, 2, 3, activation="relu", name="a"), MaxPool2D(name="pool_a"),  # fused
        Conv2D(2, 2, 3, name="b"), MaxPool2D(name="pool_b"),                     # no ReLU in the conv
        Conv2D(2, 2, 1, activation="relu", name="c"), ReLU(), MaxPool2D(name="pool_c"),  # not adjacent
    ])
    assert _fused_steps(model) == ["a+pool_a"]


def _branching(second_reader: bool):
    """x -> conv+ReLU -> pool -> dense; with second_reader, the conv output also feeds a
    second pool whose output is a second model output."""
    x = dlcore.Input((1, 6, 6))
    h = Conv2D(1, 3, 3, padding="same", activation="relu", rng=1, name="conv")(x)
    out = Dense(27, 2, rng=2, name="head")(Flatten()(MaxPool2D(2, name="pool")(h)))
    if not second_reader:
        return dlcore.Model(x, out, needs_input_grad=True)
    side = Flatten(name="side_flat")(MaxPool2D(3, name="side_pool")(h))
    return dlcore.Model(x, [out, side], needs_input_grad=True)


def test_not_fused_when_the_conv_output_has_a_second_reader_or_is_an_output():
    assert _fused_steps(_branching(second_reader=False)) == ["conv+pool"]
    assert _fused_steps(_branching(second_reader=True)) == []
    x = dlcore.Input((1, 6, 6))
    h = Conv2D(1, 3, 3, activation="relu", name="conv")(x)
    assert _fused_steps(dlcore.Model(x, [MaxPool2D(2)(h), h])) == []  # the conv output is an output
