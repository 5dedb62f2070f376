"""What layers and ops accept: one dtype rule for both, and other frameworks' arrays refused with
how to convert them."""
import numpy as np
import pytest

from dlcore.backend import foreign_array_advice
from dlcore.layers import Dense
from dlcore.losses import SoftmaxCrossEntropy
from dlcore.ops import dense_forward, relu_forward
from tests.robustness import rejects


class FakeTorchTensor:
    """What a torch.Tensor shows dlcore's checks (its module, a shape, a torch dtype, DLPack),
    so the messages are tested where PyTorch is not installed."""

    __module__ = "torch"
    shape = (2, 3)
    dtype = "torch.float64"
    ndim = 2

    def __dlpack__(self, stream=None):
        raise NotImplementedError


TORCH_ADVICE = (r"got a torch.Tensor; dlcore computes on NumPy arrays \(numpy and emu backends\) and CuPy arrays "
                r"\(cupy backend\): convert it with x.detach\(\).cpu\(\).numpy\(\), or share its memory through "
                r"DLPack with numpy.from_dlpack\(x\) \(CPU memory\) or cupy.from_dlpack\(x\) \(GPU memory\)")


def test_a_torch_tensor_given_to_a_layer_says_how_to_convert_it():
    with rejects(TypeError, match=f"^Dense 'fc': {TORCH_ADVICE}$"):
        Dense(3, 2, name="fc")(FakeTorchTensor())


def test_a_torch_tensor_given_to_an_op_or_a_loss_says_how_to_convert_it():
    with rejects(TypeError, match=f"^relu_forward: x: {TORCH_ADVICE}$"):
        relu_forward(FakeTorchTensor())
    with rejects(TypeError, match=f"^softmax_cross_entropy: labels: {TORCH_ADVICE}$"):
        SoftmaxCrossEntropy()(np.zeros((2, 3), np.float32), FakeTorchTensor())


def test_numpy_arrays_and_plain_values_are_not_foreign():
    assert foreign_array_advice(np.zeros(3)) is None
    assert foreign_array_advice([1, 2]) is None and foreign_array_advice(3.0) is None


def test_a_real_torch_tensor_when_installed():
    torch = pytest.importorskip("torch")
    x = torch.zeros((2, 3), dtype=torch.float64)
    with rejects(TypeError, match=TORCH_ADVICE):
        Dense(3, 2)(x)
    out = Dense(3, 2, dtype=np.float64, rng=0)(np.from_dlpack(x))  # the advice works
    assert out.shape == (2, 2)


# ---- one dtype rule: the parameters decide; layers cast their input, ops never convert


@pytest.mark.parametrize("layer_dtype, input_dtype", [(np.float32, np.float64), (np.float64, np.float32)])
def test_layers_cast_float_input_to_their_parameters_dtype(layer_dtype, input_dtype):
    layer = Dense(3, 2, dtype=layer_dtype, rng=0)
    x = np.arange(6, dtype=input_dtype).reshape(2, 3)
    out = layer(x)
    assert out.dtype == layer_dtype
    np.testing.assert_array_equal(out, layer(x.astype(layer_dtype)))


def test_ops_refuse_mismatched_dtypes_and_say_how_to_convert():
    x, w, b = np.ones((2, 3), np.float32), np.ones((3, 2), np.float64), np.ones(2, np.float64)
    message = (r"^dense_forward: w must have the dtype of x \(float32\), got dtype float64; ops do not convert: "
               r"cast one first, e.g. w.astype\(x.dtype\) \(layers cast their input to their parameters' dtype\)$")
    with rejects(ValueError, match=message):
        dense_forward(x, w, b)
