"""load_mnist on the real MNIST files (skipped where the shared copy is absent)."""
import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from dlcore.data import DataFileError, load_mnist, train_validation_split

TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist


def decompress_into(source, folder, name):
    with gzip.open(source / f"{name}.gz", "rb") as compressed, open(folder / name, "wb") as raw:
        shutil.copyfileobj(compressed, raw)


def test_train_split(mnist_path):
    images, labels = load_mnist("train", data_dir=mnist_path)
    assert images.shape == (60000, 1, 28, 28) and images.dtype == np.float32
    assert labels.shape == (60000,) and labels.dtype == np.int64
    assert images.min() == 0.0 and images.max() == 1.0
    assert labels[:5].tolist() == [5, 0, 4, 1, 9]
    class_counts = np.bincount(labels, minlength=10)
    assert len(class_counts) == 10 and class_counts.min() > 5000 and class_counts.max() < 7000

    (x_train, y_train), (x_val, y_val) = train_validation_split(images, labels)
    assert x_train.shape == (55000, 1, 28, 28) and y_train.shape == (55000,)
    assert x_val.shape == (5000, 1, 28, 28) and y_val.shape == (5000,)
    np.testing.assert_array_equal(y_val, labels[-5000:])


def test_test_split(mnist_path):
    images, labels = load_mnist("test", data_dir=mnist_path)
    assert images.shape == (10000, 1, 28, 28) and images.dtype == np.float32
    assert labels.shape == (10000,) and labels.dtype == np.int64
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert labels[:5].tolist() == [7, 2, 1, 0, 4]
    class_counts = np.bincount(labels, minlength=10)
    assert len(class_counts) == 10 and class_counts.min() > 850 and class_counts.max() < 1200


def test_dlcore_data_environment_variable(mnist_path, monkeypatch):
    monkeypatch.setenv("DLCORE_DATA", str(mnist_path))
    _, labels = load_mnist("test")
    assert labels[:5].tolist() == [7, 2, 1, 0, 4]


def test_flat_mnist_in_dlcore_data_is_not_taken_for_fashion_mnist(mnist_path, monkeypatch):
    monkeypatch.setenv("DLCORE_DATA", str(mnist_path))
    with pytest.raises(DataFileError, match="this is the MNIST file t10k-images-idx3-ubyte"):
        load_mnist("test", dataset="fashion_mnist", verify=False)


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
@pytest.mark.parametrize("split, first_labels", [("train", [9, 0, 0, 3, 0]), ("test", [9, 2, 1, 1, 6])])
def test_debian_fashion_mnist_loads_verified(split, first_labels):
    images, labels = load_mnist(split, data_dir=DEBIAN_FASHION_MNIST, dataset="fashion_mnist")
    assert images.shape == (60000 if split == "train" else 10000, 1, 28, 28)
    assert labels[:5].tolist() == first_labels
    assert np.bincount(labels).tolist() == [len(labels) // 10] * 10


def test_raw_and_gzip_files_load_alike(mnist_path, tmp_path):
    raw_images_dir, mixed_dir = tmp_path / "raw", tmp_path / "mixed"
    raw_images_dir.mkdir(), mixed_dir.mkdir()
    for name in TEST_FILES:
        decompress_into(mnist_path, raw_images_dir, name)
    decompress_into(mnist_path, mixed_dir, TEST_FILES[1])
    (mixed_dir / f"{TEST_FILES[0]}.gz").symlink_to(mnist_path / f"{TEST_FILES[0]}.gz")

    expected_images, expected_labels = load_mnist("test", data_dir=mnist_path)
    for folder in (raw_images_dir, mixed_dir):
        images, labels = load_mnist("test", data_dir=folder)
        np.testing.assert_array_equal(images, expected_images)
        np.testing.assert_array_equal(labels, expected_labels)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_checksum_mismatch_is_detected(mnist_path, tmp_path, compress):
    (tmp_path / f"{TEST_FILES[0]}.gz").symlink_to(mnist_path / f"{TEST_FILES[0]}.gz")
    content = bytearray(gzip.decompress((mnist_path / f"{TEST_FILES[1]}.gz").read_bytes()))
    content[8 + 100] = (content[8 + 100] + 1) % 10  # still a valid label: only the MD5 can tell
    tampered = tmp_path / (f"{TEST_FILES[1]}.gz" if compress else TEST_FILES[1])
    tampered.write_bytes(gzip.compress(bytes(content)) if compress else bytes(content))

    with pytest.raises(DataFileError) as info:
        load_mnist("test", data_dir=tmp_path)
    message = str(info.value)
    assert str(tampered) in message and "MD5 mismatch" in message
    assert "expected 27ae3e4e09519cfbb04c329615203637" in message
    _, labels = load_mnist("test", data_dir=tmp_path, verify=False)
    assert labels[100] == content[8 + 100]
