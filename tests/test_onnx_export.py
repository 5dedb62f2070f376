"""dlcore.onnx.export: every zoo model and every layer's conventions, run in ONNX Runtime on
real MNIST images and compared with dlcore's eval-mode output; names, dynamic batch, opsets,
and the errors (nothing written)."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx not installed (pip install -e '.[dev]')")

import dlcore  # noqa: E402
from dlcore import zoo  # noqa: E402
from dlcore.layers import (  # noqa: E402
    Add, AvgPool2D, BatchNorm2D, Concatenate, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool2D, GlobalMaxPool2D,
    Identity, Layer, LeakyReLU, MaxPool2D, ReLU, Sigmoid, Tanh,
)
from dlcore.onnx import MINIMUM_OPSET, OnnxExportError, export  # noqa: E402
from tests.model_fixtures import mnist_test_images, randomize_batch_norm  # noqa: E402
from tests.onnx_checks import compare_with_dlcore, onnxruntime_outputs  # noqa: E402

ZOO = {
    "mnist_cnn": lambda: zoo.mnist_cnn(rng=0),
    "mnist_cnn_batchnorm": lambda: zoo.mnist_cnn_batchnorm(rng=0),
    "resnet8": lambda: zoo.resnet(8, input_shape=(1, 28, 28), rng=0),
}


@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_matches_dlcore_in_onnxruntime(name, mnist_path, tmp_path):
    model = ZOO[name]()
    randomize_batch_norm(model)
    model.eval()
    path = export(model, tmp_path / f"{name}.onnx")
    onnx.checker.check_model(onnx.load(path), full_check=True)
    compare_with_dlcore(model, path, [mnist_test_images(mnist_path, 128)])


def _single_layer_model(layer, shape=(1, 27, 25), head=True):
    """Input (1, 27, 25) (odd sizes: 'same' with stride 2 pads one cell more after than before)
    -> layer -> flatten -> dense 10, so the classes are compared too."""
    x = dlcore.Input(shape, name="image")
    y = layer(x)
    if head:
        y = Dense(int(np.prod(y.shape)), 10, rng=1, name="logits")(Flatten()(y))
    return dlcore.Model(x, y).eval()


def _crops(mnist_path, count=64):
    return mnist_test_images(mnist_path, count)[:, :, :27, 1:26]  # (count, 1, 27, 25)


CONVOLUTIONS = [
    dict(kernel_size=3, padding="same"),
    dict(kernel_size=4, padding="same", stride=2),            # asymmetric: one more cell after
    dict(kernel_size=5, padding="SAME", stride=(2, 3)),
    dict(kernel_size=3, padding="valid", stride=2),
    dict(kernel_size=3, padding=1),
    dict(kernel_size=(3, 5), padding=(0, 2)),
    dict(kernel_size=3, padding="same", dilation=2, activation="relu"),
    dict(kernel_size=(2, 3), padding=2, stride=2, dilation=(2, 1), activation="relu"),
    dict(kernel_size=3, padding="same", use_bias=False),
]


@pytest.mark.parametrize("options", CONVOLUTIONS, ids=str)
def test_conv2d_paddings(options, mnist_path, tmp_path):
    model = _single_layer_model(Conv2D(1, 6, rng=0, name="conv", **options))
    compare_with_dlcore(model, export(model, tmp_path / "conv.onnx"), [_crops(mnist_path)])


POOLS = [
    (MaxPool2D, dict(kernel_size=2)),
    (MaxPool2D, dict(kernel_size=3, stride=2, padding="same")),
    (MaxPool2D, dict(kernel_size=2, stride=2, padding="same")),    # pads (0, 1) on 27 and 25
    (MaxPool2D, dict(kernel_size=(3, 2), stride=1, padding=(1, 1))),
    (AvgPool2D, dict(kernel_size=2, stride=2, padding="same")),
    (AvgPool2D, dict(kernel_size=3, stride=2, padding="same")),
    (AvgPool2D, dict(kernel_size=3, stride=1, padding=1)),
    (AvgPool2D, dict(kernel_size=3, stride=2, padding=1, count_include_pad=True)),
    (AvgPool2D, dict(kernel_size=(2, 3), stride=2, padding="same", count_include_pad=True)),
]


@pytest.mark.parametrize("pool, options", POOLS, ids=str)
def test_pooling_paddings(pool, options, mnist_path, tmp_path):
    image = _crops(mnist_path)
    conv = Conv2D(1, 4, 3, padding="same", rng=0)  # signed values: zeros in the padding would be visible to max
    model = _single_layer_model(lambda x: pool(name="pool", **options)(conv(x)))
    compare_with_dlcore(model, export(model, tmp_path / "pool.onnx"), [image])


def test_same_padding_becomes_explicit_asymmetric_pads(tmp_path):
    model = _single_layer_model(MaxPool2D(2, 2, padding="same", name="pool"), head=False)
    proto = onnx.load(export(model, tmp_path / "pool.onnx"))
    (node,) = proto.graph.node
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    # 27 rows: out 14, (14 - 1) * 2 + 2 - 27 = 1 cell of padding, after; 25 columns: 13, 1, after
    assert attributes["pads"] == [0, 0, 1, 1] and "auto_pad" not in attributes


def test_average_pool_divides_by_real_cells_by_default(tmp_path):
    ones = np.ones((1, 1, 3, 3), np.float32)
    for count_include_pad, corner in ((False, 1.0), (True, 4 / 9)):
        model = _single_layer_model(AvgPool2D(3, 1, padding=1, count_include_pad=count_include_pad),
                                    shape=(1, 3, 3), head=False)
        (got,) = onnxruntime_outputs(export(model, tmp_path / "avg.onnx"), {"image": ones})
        assert got[0, 0, 0, 0] == pytest.approx(corner)


def test_activations_norms_merges_and_multiple_outputs(mnist_path, tmp_path):
    """Every other layer type in one graph of two inputs and two outputs, with a shared layer."""
    image, shifted = dlcore.Input((1, 28, 28), name="image"), dlcore.Input((1, 28, 28), name="shifted")
    shared = Conv2D(1, 4, 3, padding="same", rng=0, name="shared")
    a, b = shared(image), shared(shifted)                          # two nodes, one set of weights
    h = BatchNorm2D(8, name="bn")(Concatenate(name="channels")([a, b]))
    h = Add(name="sum3")([ReLU()(h), LeakyReLU(0.2)(h), Tanh()(h)])
    h = Dropout(0.5, rng=0)(Sigmoid()(Identity()(Add(name="sum2")([h, Tanh()(h)]))))
    classes = Dense(8, 10, rng=0, name="classes")(GlobalAvgPool2D()(h))
    aux = Dense(8, 3, rng=0, name="aux")(Dropout(0.3, rng=1)(GlobalMaxPool2D()(h)))
    model = dlcore.Model([image, shifted], [classes, aux])
    randomize_batch_norm(model)
    model.eval()
    proto = onnx.load(export(model, tmp_path / "graph.onnx"))
    assert [i.name for i in proto.graph.input] == ["image", "shifted"]
    assert [o.name for o in proto.graph.output] == ["classes", "aux"]
    assert "Dropout" not in {node.op_type for node in proto.graph.node}
    assert sorted(i.name for i in proto.graph.initializer) == sorted(
        [*model.named_parameters(), *model.named_buffers()])         # the shared conv's weights once
    images = mnist_test_images(mnist_path, 65)
    compare_with_dlcore(model, tmp_path / "graph.onnx", [images[:64], images[1:]])


def test_multi_input_model(mnist_path, tmp_path):
    model = dlcore.MultiInput(
        [[Conv2D(1, 3, 3, stride=2, padding="same", rng=0), MaxPool2D(2)], [Flatten(), Dense(784, 5, rng=0)]],
        [Dense(3 * 7 * 7 + 5, 10, activation="relu", rng=0), Dense(10, 10, rng=0)]).eval()
    images = mnist_test_images(mnist_path, 33)
    inputs = [images[:32], images[1:]]
    compare_with_dlcore(model, export(model, tmp_path / "multi.onnx", input_shapes=dict.fromkeys(
        model.input_names, (1, 28, 28))), inputs)


def test_layers_map_to_the_expected_onnx_nodes(tmp_path):
    proto = onnx.load(export(zoo.mnist_cnn(rng=0).eval(), tmp_path / "m.onnx"))
    assert [node.op_type for node in proto.graph.node] == [
        "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Relu", "Gemm"]
    gemm = proto.graph.node[-1]
    assert list(gemm.input) == ["fc1", "fc2.weight", "fc2.bias"]  # the dropout between them is gone
    assert all(a.name != "transB" or a.i == 0 for a in gemm.attribute)  # dlcore's (in, out) weight as is


def test_a_removed_layer_as_output_becomes_identity(mnist_path, tmp_path):
    model = dlcore.Sequential([Flatten(), Dense(784, 10, rng=0), Dropout(0.5, rng=0, name="last")],
                              input_shape=(1, 28, 28)).eval()
    proto = onnx.load(export(model, tmp_path / "m.onnx"))
    assert [(node.op_type, list(node.input), list(node.output)) for node in proto.graph.node][-1] == (
        "Identity", ["dense"], ["last"])
    compare_with_dlcore(model, tmp_path / "m.onnx", [mnist_test_images(mnist_path, 16)])


def test_batch_dimension_is_dynamic_and_opset_chosen(mnist_path, tmp_path):
    model = zoo.mnist_cnn(rng=0).eval()
    images = mnist_test_images(mnist_path, 7)
    for opset in (MINIMUM_OPSET, 13, 21):
        proto = onnx.load(export(model, tmp_path / f"m{opset}.onnx", opset=opset))
        assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [opset]
        assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
        for batch in (images[:1], images):
            compare_with_dlcore(model, tmp_path / f"m{opset}.onnx", [batch])


def test_sequential_without_input_shape_needs_input_shapes(tmp_path):
    model = dlcore.Sequential([Flatten(), Dense(784, 10, rng=0)]).eval()
    with pytest.raises(OnnxExportError, match=r"shape of input 'input' is not known.*input_shapes="):
        export(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    export(model, tmp_path / "m.onnx", input_shapes={"input": (1, 28, 28)})
    with pytest.raises(OnnxExportError, match="not inputs of"):
        export(model, tmp_path / "m.onnx", input_shapes={"image": (1, 28, 28)})


class Square(Layer):
    def forward(self, x):
        return x * x, x

    def backward(self, dout, cache, needs_input_grad=True):
        return 2 * cache * dout


def _only_old_file_left(tmp_path):
    return [p.name for p in tmp_path.iterdir()] == ["m.onnx"] and (tmp_path / "m.onnx").read_bytes() == b"old"


def test_errors_name_the_problem_and_write_nothing(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"old")
    training = zoo.mnist_cnn(rng=0)
    with pytest.raises(OnnxExportError, match=r"training mode \(8 layer\(s\): conv1, .*call model.eval\(\) first"):
        export(training, tmp_path / "m.onnx")
    custom = dlcore.Sequential([Conv2D(1, 2, 3, rng=0), Square(name="square")], input_shape=(1, 8, 8)).eval()
    with pytest.raises(OnnxExportError, match=r"cannot export 'square' \(Square\): no ONNX converter"):
        export(custom, tmp_path / "m.onnx")
    float64 = dlcore.Sequential([Flatten(), Dense(4, 2, dtype=np.float64, name="fc")], input_shape=(4,)).eval()
    with pytest.raises(OnnxExportError, match="fc.weight, fc.bias"):
        export(float64, tmp_path / "m.onnx")
    image = dlcore.Input((4,), name="fc")
    clash = dlcore.Model(image, Dense(4, 2, name="fc")(image)).eval()
    with pytest.raises(OnnxExportError, match=r"share the name\(s\) fc: rename"):
        export(clash, tmp_path / "m.onnx")
    for opset in (MINIMUM_OPSET - 1, onnx.defs.onnx_opset_version() + 1, "17"):
        with pytest.raises(OnnxExportError, match="opset must be an int"):
            export(training.eval(), tmp_path / "m.onnx", opset=opset)
    assert _only_old_file_left(tmp_path)
