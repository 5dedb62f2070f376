"""The notes' networks trained in PyTorch, loaded into dlcore through safetensors (PyTorch's
state_dict names) and back: the same predictions. Skipped where torch is not installed."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed (its CPU build: pip install torch "
                                            "--index-url https://download.pytorch.org/whl/cpu)")
safetensors_torch = pytest.importorskip("safetensors.torch", reason="safetensors not installed")

from torch import nn  # noqa: E402

from dlcore import zoo  # noqa: E402
from dlcore.data import load_mnist  # noqa: E402
from dlcore.safetensors_io import load_safetensors, save_safetensors  # noqa: E402


class NotesCNN(nn.Module):
    """The twin of dlcore.zoo.mnist_cnn: modules named as its layers; 5x5 'same' is padding 2,
    and the 2x2 'same' pools of 28 and 14 rows pad nothing."""

    def __init__(self):
        super().__init__()
        self.conv1, self.pool1 = nn.Conv2d(1, 32, 5, padding=2), nn.MaxPool2d(2)
        self.conv2, self.pool2 = nn.Conv2d(32, 64, 5, padding=2), nn.MaxPool2d(2)
        self.fc1, self.dropout, self.fc2 = nn.Linear(3136, 1024), nn.Dropout(0.5), nn.Linear(1024, 10)

    def forward(self, x):
        x = self.pool2(torch.relu(self.conv2(self.pool1(torch.relu(self.conv1(x))))))
        return self.fc2(self.dropout(torch.relu(self.fc1(x.flatten(1)))))


class NotesCNNBatchNorm(nn.Module):
    """The twin of dlcore.zoo.mnist_cnn_batchnorm."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 32, 5, padding=2, bias=False), nn.BatchNorm2d(32)
        self.conv2, self.bn2 = nn.Conv2d(32, 64, 5, padding=2, bias=False), nn.BatchNorm2d(64)
        self.fc1, self.bn3 = nn.Linear(3136, 1024, bias=False), nn.BatchNorm1d(1024)
        self.dropout, self.fc2 = nn.Dropout(0.5), nn.Linear(1024, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        x = nn.functional.max_pool2d(torch.relu(self.bn2(self.conv2(x))), 2)
        return self.fc2(self.dropout(torch.relu(self.bn3(self.fc1(x.flatten(1))))))


TWINS = {"mnist_cnn": (NotesCNN, zoo.mnist_cnn), "mnist_cnn_batchnorm": (NotesCNNBatchNorm, zoo.mnist_cnn_batchnorm)}


def _trained_in_pytorch(twin, images, labels, steps=15):
    torch.manual_seed(0)
    net = twin()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for step in range(steps):
        batch = slice(32 * step, 32 * step + 32)
        loss = nn.functional.cross_entropy(net(torch.from_numpy(images[batch])), torch.from_numpy(labels[batch]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net.eval()


@pytest.mark.parametrize("name", TWINS)
def test_weights_trained_in_pytorch_load_into_dlcore_and_back(name, mnist_path, tmp_path):
    twin, build = TWINS[name]
    train_images, train_labels = load_mnist("train", data_dir=mnist_path)
    net = _trained_in_pytorch(twin, train_images, train_labels)
    safetensors_torch.save_file(net.state_dict(), str(tmp_path / "torch.safetensors"))

    model = build(rng=1)
    load_safetensors(model, tmp_path / "torch.safetensors", layout="pytorch")
    images = load_mnist("test", data_dir=mnist_path)[0][:256]
    with torch.no_grad():
        expected = net(torch.from_numpy(images)).numpy()
    got = model.eval()(images)
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()
    np.testing.assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1))

    save_safetensors(model, tmp_path / "back.safetensors", layout="pytorch")
    back = twin()
    back.load_state_dict(safetensors_torch.load_file(str(tmp_path / "back.safetensors")), strict=True)
    with torch.no_grad():
        assert torch.equal(back.eval()(torch.from_numpy(images)), torch.from_numpy(expected))
