"""The ready-made networks: the notes' CNN with a class count and its batchnorm variant."""
import numpy as np

from dlcore.data import load_mnist
from dlcore.layers import BatchNorm1D, BatchNorm2D, Conv2D, Dense, ReLU
from dlcore.losses import SoftmaxCrossEntropy
from dlcore.optim import Adam
from dlcore.zoo import mnist_cnn, mnist_cnn_batchnorm


def test_batchnorm_variant_layout():
    model = mnist_cnn_batchnorm(rng=0)
    assert [layer.name for layer in model.layers] == [
        "conv1", "bn1", "relu1", "pool1", "conv2", "bn2", "relu2", "pool2", "flatten",
        "fc1", "bn3", "relu3", "dropout", "fc2"]
    kinds = [type(model.layer(name)) for name in ("conv1", "bn1", "relu1", "conv2", "bn2", "fc1", "bn3", "relu3")]
    assert kinds == [Conv2D, BatchNorm2D, ReLU, Conv2D, BatchNorm2D, Dense, BatchNorm1D, ReLU]
    for name in ("conv1", "conv2", "fc1"):  # BN's beta replaces the bias; BN comes before the ReLU
        assert model.layer(name).bias is None and model.layer(name).activation is None
    assert [p.shape for p in model.parameters()][-2:] == [(1024, 10), (10,)]
    assert model(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)


def test_num_classes_sets_the_logits():
    x = np.zeros((2, 1, 28, 28), np.float32)
    assert mnist_cnn(rng=0, num_classes=5)(x).shape == (2, 5)
    assert mnist_cnn_batchnorm(rng=0, num_classes=5)(x).shape == (2, 5)


def test_batchnorm_variant_trains_and_is_deterministic_in_eval(mnist_path):
    images, labels = load_mnist("train", data_dir=mnist_path)
    x, y = images[:8], labels[:8]
    model = mnist_cnn_batchnorm(rng=0)
    loss_fn, optimizer = SoftmaxCrossEntropy(), Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(3):
        losses.append(float(loss_fn(model(x), y)))
        model.backward(loss_fn.backward())
        optimizer.step()
    assert losses[-1] < 0.7 * losses[0]
    assert not np.allclose(model.layer("bn1").running_mean, 0)  # training updated the statistics

    model.eval()
    first = model(x)
    np.testing.assert_array_equal(model(x), first)
    # running stats: no batch effect (batch statistics would move logits by ~0.1; the
    # tolerance is float32 rounding, which differs between batches of 3 and 8 images as the
    # GEMMs are blocked differently, amplified by conv2's Winograd transforms)
    np.testing.assert_allclose(model(x[:3]), first[:3], rtol=1e-4, atol=1e-5)
