"""The graph engine: gradients of graphs with fan-out, shared layers, several inputs and
outputs (float64 central differences, numpy and emu), a residual block and a siamese pair
against explicit computations, pruning of backward work, and build-time errors."""
import numpy as np
import pytest

import dlcore
from dlcore.anomaly import AnomalyError
from dlcore.backend import to_backend, to_numpy
from dlcore.graph.tensor import Node
from dlcore.layers import Add, Concatenate, Conv2D, Dense, Flatten, GlobalAvgPool2D, MaxPool2D, ReLU, Tanh
from tests.ops.op_check import GRADIENT_TOLERANCE, OP_BACKENDS, numerical_gradient
from tests.robustness import rejects

F64 = dict(dtype=np.float64)


def _check_gradients(model, inputs, douts):
    """Engine gradients (inputs and parameters) against central differences of
    sum_k outputs_k * douts_k, all in float64 on the current backend."""
    model.needs_input_grad = True
    inputs = [to_backend(x) for x in inputs]
    douts = [to_backend(d) for d in douts]
    model(*inputs)
    grads = model.backward(*douts)
    grads = list(grads) if isinstance(grads, tuple) else [grads]
    params = model.parameters()

    def objective_outputs(*_):  # one array whose product with the stacked douts is the objective
        outputs = model(*inputs)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        return np.concatenate([to_numpy(o).ravel() for o in outputs])

    flat_dout = np.concatenate([to_numpy(d).ravel() for d in douts])
    arrays = [to_numpy(x) for x in inputs] + [to_numpy(p.data) for p in params]
    live = list(inputs) + [p.data for p in params]
    numeric = []
    for k, array in enumerate(arrays):  # perturb the live arrays (emu: host arrays too)
        numeric.append(numerical_gradient(objective_outputs, [live[k]], flat_dout)[0])
    for k, grad in enumerate(grads):
        np.testing.assert_allclose(to_numpy(grad), numeric[k], **GRADIENT_TOLERANCE, err_msg=f"input {k}")
    for p, expected in zip(params, numeric[len(inputs):]):
        np.testing.assert_allclose(to_numpy(p.grad), expected, **GRADIENT_TOLERANCE, err_msg=p.name)


def _fan_out_model():
    """x -> dense a -> tanh -+-> dense b ---+-> add -> out
                             +-> dense c ---+        (the tanh output fans out to two readers)"""
    x = dlcore.Input((3,))
    h = Tanh()(Dense(3, 4, rng=0, **F64)(x))
    return dlcore.Model(x, Add()([Dense(4, 2, rng=1, **F64)(h), Dense(4, 2, rng=2, **F64)(h)]))


def _shared_layer_model():
    """A siamese pair: one Dense (and one Tanh) applied to two inputs, outputs joined."""
    left, right = dlcore.Input((3,), name="left"), dlcore.Input((3,), name="right")
    encoder, squash = Dense(3, 2, rng=3, **F64), Tanh()
    return dlcore.Model([left, right], Concatenate()([squash(encoder(left)), squash(encoder(right))]))


def _two_in_two_out_model():
    """image (1, 5, 5) -> conv 3x3x2 'same' + ReLU -> global average (2,)  -+-> concat -> dense 3 (logits)
       features (3,) -> dense 2 ----------------------------------------+-> dense 1 of features (aux)"""
    image, features = dlcore.Input((1, 5, 5), name="image"), dlcore.Input((3,), name="features")
    pooled = GlobalAvgPool2D()(Conv2D(1, 2, 3, padding="same", activation="relu", rng=4, **F64)(image))
    hint = Dense(3, 2, rng=5, **F64)(features)
    logits = Dense(4, 3, rng=6, name="logits", **F64)(Concatenate()([pooled, hint]))
    aux = Dense(2, 1, rng=7, name="aux", **F64)(hint)
    return dlcore.Model([image, features], [logits, aux])


@pytest.mark.parametrize("backend", OP_BACKENDS)
def test_gradients_of_fan_out_shared_layers_and_two_inputs_two_outputs(backend):
    rng = np.random.default_rng(0)
    with dlcore.use_backend(backend):
        _check_gradients(_fan_out_model(), [rng.standard_normal((2, 3))], [rng.standard_normal((2, 2))])
        _check_gradients(_shared_layer_model(), [rng.standard_normal((2, 3)), rng.standard_normal((2, 3))],
                         [rng.standard_normal((2, 4))])
        _check_gradients(_two_in_two_out_model(),
                         [rng.standard_normal((2, 1, 5, 5)) + 0.1, rng.standard_normal((2, 3))],
                         [rng.standard_normal((2, 3)), rng.standard_normal((2, 1))])


def test_residual_block_against_the_chain_rule_written_out():
    """out = relu(conv2(relu(conv1(x))) + x): the engine's forward and gradients equal the
    layers' own forward/backward composed by hand, with the shortcut's gradient summed in."""
    rng = np.random.default_rng(1)
    conv1 = Conv2D(4, 4, 3, padding="same", rng=1, **F64)
    conv2 = Conv2D(4, 4, 3, padding="same", rng=2, **F64)
    relu1, relu2, add = ReLU(), ReLU(), Add()
    x_in = dlcore.Input((4, 6, 6))
    out = relu2(add([conv2(relu1(conv1(x_in))), x_in]))
    model = dlcore.Model(x_in, out, needs_input_grad=True)
    model.fuse = False
    x, dout = rng.standard_normal((2, 4, 6, 6)), rng.standard_normal((2, 4, 6, 6))

    got = model(x)
    dx = model.backward(dout)
    got_grads = [p.grad.copy() for p in (conv1.weight, conv1.bias, conv2.weight, conv2.bias)]

    a, a_cache = conv1.forward(x)
    b, b_cache = relu1.forward(a)
    c, c_cache = conv2.forward(b)
    s = c + x
    y, y_cache = relu2.forward(s)
    np.testing.assert_array_equal(got, y)
    for p in (conv1.weight, conv1.bias, conv2.weight, conv2.bias):
        p.grad = None
    ds = relu2.backward(dout, y_cache)
    dc = ds  # d(c + x)/dc = 1
    db = conv2.backward(dc, c_cache)
    da = relu1.backward(db, b_cache)
    dx_expected = conv1.backward(da, a_cache) + ds  # the shortcut's gradient joins conv1's
    np.testing.assert_allclose(dx, dx_expected, rtol=1e-13, atol=1e-13)
    for grad, p in zip(got_grads, (conv1.weight, conv1.bias, conv2.weight, conv2.bias)):
        np.testing.assert_allclose(grad, p.grad, rtol=1e-13, atol=1e-13)


def test_a_shared_layer_gets_the_sum_of_both_calls_gradients():
    rng = np.random.default_rng(2)
    model = _shared_layer_model()
    encoder = model.layers[0]
    left, right = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    dout = rng.standard_normal((3, 4))
    model(left, right)
    model.backward(dout)
    assert model.node_names == ["dense", "tanh", "dense:1", "tanh:1", "concatenate"]

    expected = np.zeros_like(encoder.weight.data)
    for x, d in ((left, dout[:, :2]), (right, dout[:, 2:])):  # d/dW sum(tanh(x W + b) * d)
        z = x @ encoder.weight.data + encoder.bias.data
        expected += x.T @ (d * (1 - np.tanh(z) ** 2))
    np.testing.assert_allclose(encoder.weight.grad, expected, rtol=1e-12)


def test_backward_runs_only_where_a_gradient_is_needed():
    """A frozen branch and the input gradient of the first layers cost nothing; a branch
    whose only output gets no gradient does not run."""
    model = _two_in_two_out_model()
    calls = []
    for layer in model.layers:
        layer.backward = (lambda original, name: lambda dout, cache, needs_input_grad=True: calls.append(
            (name, needs_input_grad)) or original(dout, cache, needs_input_grad))(layer.backward, layer.name)
    rng = np.random.default_rng(3)
    x = [rng.standard_normal((2, 1, 5, 5)), rng.standard_normal((2, 3))]
    model.fuse = False
    model(*x)
    assert model.backward(rng.standard_normal((2, 3)), None) == (None, None)
    assert sorted(calls) == sorted([("logits", True), ("concatenate", True), ("global_avg_pool2d", True),
                                    ("conv2d", False), ("dense", False)])
    assert model.layer("aux").weight.grad is None  # no gradient reached it: the optimizer skips it
    calls.clear()
    model.freeze("conv2d")
    model(*x)
    model.backward(rng.standard_normal((2, 3)), rng.standard_normal((2, 1)))
    assert {name for name, _ in calls} == {"logits", "aux", "concatenate", "dense"}


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_anomaly_mode_names_the_node_of_a_shared_layer():
    x = dlcore.Input((2,))
    shared = Dense(2, 2, rng=0, name="shared")
    model = dlcore.Model(x, shared(ReLU()(shared(x))))
    model.layer("shared").bias.data[:] = [0.0, np.inf]
    with dlcore.detect_anomaly(), rejects(AnomalyError, match="forward output of Dense 'shared'"):
        model(np.ones((1, 2), np.float32))
    model.layer("shared").bias.data[:] = 0.0
    model.layer("shared").weight.data[:] = 1e20  # first call 2e30, finite; the second overflows
    with dlcore.detect_anomaly(), rejects(AnomalyError, match="forward output of Dense 'shared:1'"):
        model(np.full((1, 2), 1e10, np.float32))


# ---- errors when a model is built or called
def test_build_errors_name_the_layers_and_shapes():
    x, other = dlcore.Input((3, 8, 8), name="image"), dlcore.Input((5,), name="hints")
    with rejects(ValueError, match=r"Conv2D: expected input of shape \(N, 4, H, W\), got \(N, 3, 8, 8\)"):
        Conv2D(4, 2, 3)(x)
    with rejects(ValueError, match=r"Dense: expected input of shape \(N, 3\), got \(N, 3, 8, 8\)"):
        Dense(3, 2)(x)
    with rejects(ValueError, match=r"Add.*one shape.*\(3, 8, 8\), \(2, 8, 8\)"):
        Add()([x, Conv2D(3, 2, 1)(x)])
    with rejects(ValueError, match="nothing uses the input.*hints"):
        dlcore.Model([x, other], Flatten()(x))
    with rejects(ValueError, match=r"reads an Input .*hints.* not among the model's inputs"):
        dlcore.Model(x, Add()([Flatten()(x), Dense(5, 192)(other)]))
    with rejects(ValueError, match="two layers are named 'a'"):
        dlcore.Model(x, Flatten(name="a")(MaxPool2D(name="a")(x)))
    with rejects(ValueError, match="input 0 must be a tensor made by dlcore.Input"):
        dlcore.Model(Flatten()(x), Flatten()(x))
    with rejects(TypeError, match="cannot mix symbolic tensors"):
        Add()([x, np.zeros((1, 3, 8, 8))])


def test_a_cycle_is_reported():
    x = dlcore.Input((2,))
    a = Dense(2, 2, name="a")(x)
    b = Dense(2, 2, name="b")(a)
    a.node.inputs = [b]  # only possible by editing nodes by hand
    with rejects(ValueError, match="cycle: Dense 'a' -> Dense 'b' -> Dense 'a'|cycle: Dense 'b' -> Dense 'a'"):
        dlcore.Model(x, b)


def test_calls_with_wrong_inputs_say_what_the_model_takes():
    model = _two_in_two_out_model()
    with rejects(ValueError, match=r"takes 2 input\(s\) \(image, features\), got 1"):
        model(np.zeros((1, 1, 5, 5)))
    with rejects(ValueError, match=r"input 'image' must have shape \(N, 1, 5, 5\), got \(1, 1, 6, 6\)"):
        model(np.zeros((1, 1, 6, 6)), np.zeros((1, 3)))
    with rejects(TypeError, match=r"runs on arrays; to build on its layers, use its tensors"):
        model(dlcore.Input((1, 5, 5)), dlcore.Input((3,)))
    with rejects(ValueError, match=r"different numbers of samples \[2, 1\]"):
        model(np.zeros((2, 1, 5, 5)), np.zeros((1, 3)))
    model(np.zeros((1, 1, 5, 5)), np.zeros((1, 3)))
    with rejects(ValueError, match=r"one gradient per output \(2: logits, aux\), got 1"):
        model.backward(np.zeros((1, 3)))


def test_a_wrong_image_size_names_the_models_input_shape():
    from dlcore.zoo import mnist_cnn

    with rejects(ValueError, match=r"input 'input' must have shape \(N, 1, 28, 28\), got \(2, 1, 32, 32\)"):
        mnist_cnn(rng=0)(np.zeros((2, 1, 32, 32), np.float32))
    unshaped = dlcore.Sequential(mnist_cnn(rng=0).layers)  # no input shape: the failing layer, then the input
    with rejects(ValueError, match=r"Dense 'fc1': expected input of shape \(N, 3136\), got \(2, 4096\) "
                                   r"\(in Sequential called on input shape \(2, 1, 32, 32\)\)"):
        unshaped(np.zeros((2, 1, 32, 32), np.float32))


def test_summary_lists_every_node_with_shape_inputs_and_parameters():
    text = _two_in_two_out_model().summary()
    rows = {line.split()[0]: line.split() for line in text.splitlines()[1:-2]}
    assert rows["conv2d"] == ["conv2d", "Conv2D", "(N,", "2,", "5,", "5)", "20", "image"]
    assert rows["concatenate"] == ["concatenate", "Concatenate", "(N,", "4)", "0", "global_avg_pool2d,", "dense"]
    assert rows["aux"][-2:] == ["3", "dense"]
    assert text.splitlines()[-2].split() == ["total", "parameters", "46"]


def test_a_layer_written_to_the_old_contract_gets_a_clear_error():
    class OldStyle(ReLU):
        def forward(self, x):
            return x

    model = dlcore.Sequential([OldStyle()])
    with rejects(TypeError, match=r"OldStyle.forward must return \(out, cache\)"):
        model(np.ones((1, 2), np.float32))
