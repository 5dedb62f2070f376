"""Where load_mnist looks for files, and its checks on what it finds (synthetic files)."""
import gzip

import numpy as np
import pytest

from dlcore.data import DataFileError, DatasetNotFoundError, load_mnist
from dlcore.data.locations import user_cache_dir
from dlcore.data.mnist import DATASETS, SPLIT_FILES

from .synthetic_idx import (
    idx_bytes,
    set_source,
    synthetic_split,
    write_file,
    write_split,
)


TEST = SPLIT_FILES["test"]


def labels_loaded(**kwargs) -> int:
    """The (constant) label value of the synthetic split that load_mnist found."""
    _, labels = load_mnist("test", verify=False, **kwargs)
    return int(labels[0])


def test_argument_then_environment_then_cache(isolated_env, tmp_path, monkeypatch):
    write_split(tmp_path / "argument", "test", *synthetic_split(3, label_value=1))
    write_split(tmp_path / "environment" / "mnist", "test", *synthetic_split(3, label_value=2))
    cache = isolated_env / "dlcore" / "datasets" / "mnist"
    write_split(cache, "test", *synthetic_split(3, label_value=3))
    monkeypatch.setenv("DLCORE_DATA", str(tmp_path / "environment"))
    assert labels_loaded(data_dir=tmp_path / "argument") == 1
    assert labels_loaded() == 2
    monkeypatch.delenv("DLCORE_DATA")
    assert labels_loaded() == 3


def test_cache_under_home_without_an_absolute_xdg_cache_home(isolated_env, tmp_path, monkeypatch):
    home_cache = tmp_path / "home" / ".cache" / "dlcore" / "datasets" / "mnist"
    write_split(home_cache, "test", *synthetic_split(3, label_value=4))
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert labels_loaded() == 4
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert labels_loaded() == 4


def test_each_dataset_has_its_own_cache_folder(isolated_env):
    assert user_cache_dir("fashion_mnist") == isolated_env / "dlcore" / "datasets" / "fashion_mnist"
    assert user_cache_dir("mnist") == isolated_env / "dlcore" / "datasets" / "mnist"


def test_loaded_arrays_are_scaled_nchw_float32_and_int64(tmp_path):
    images, labels = synthetic_split(12)
    write_split(tmp_path, "train", images, labels, compress=False)
    x, y = load_mnist("train", data_dir=tmp_path, verify=False)
    assert x.shape == (12, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (12,) and y.dtype == np.int64
    np.testing.assert_array_equal(x[:, 0] * 255, images)
    np.testing.assert_array_equal(y, labels)


@pytest.mark.parametrize("origin", ["argument", "environment"])
def test_files_missing_from_an_explicit_folder_are_listed_not_downloaded(
    isolated_env, tmp_path, monkeypatch, origin
):
    folder = tmp_path / "partial"
    write_split(folder, "test", *synthetic_split(3))
    (folder / f"{SPLIT_FILES['test'][1]}.gz").unlink()
    if origin == "environment":
        monkeypatch.setenv("DLCORE_DATA", str(folder))
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist("test", data_dir=folder if origin == "argument" else None)
    message = str(info.value)
    assert SPLIT_FILES["test"][1] in message and SPLIT_FILES["test"][0] not in message
    assert str(folder) in message
    assert ("data_dir" if origin == "argument" else "DLCORE_DATA") in message
    assert "download" not in message
    assert not (isolated_env / "dlcore").exists()


def test_verified_synthetic_files(tmp_path, monkeypatch):
    digests = write_split(tmp_path, "test", *synthetic_split(5))
    set_source(monkeypatch, checksums=digests)
    assert load_mnist("test", data_dir=tmp_path)[1].tolist() == [0, 1, 2, 3, 4]


def test_any_faithful_recompression_verifies_and_any_changed_byte_does_not(tmp_path, monkeypatch):
    images, labels = synthetic_split(5)
    digests = write_split(tmp_path / "gz", "test", images, labels)
    set_source(monkeypatch, "fashion_mnist", checksums=digests)
    stored = tmp_path / "recompressed"
    stored.mkdir()
    for name in TEST:  # the same content, compressed differently (level 1, no file name)
        content = gzip.decompress((tmp_path / "gz" / f"{name}.gz").read_bytes())
        (stored / f"{name}.gz").write_bytes(gzip.compress(content, compresslevel=1, mtime=0))
        assert (stored / f"{name}.gz").read_bytes() != (tmp_path / "gz" / f"{name}.gz").read_bytes()
    np.testing.assert_array_equal(load_mnist("test", data_dir=stored, dataset="fashion_mnist")[1], labels)

    content = bytearray(gzip.decompress((stored / f"{TEST[0]}.gz").read_bytes()))
    content[-1] ^= 1
    (stored / f"{TEST[0]}.gz").write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(DataFileError, match=f"MD5 mismatch of the decompressed content: expected {digests[TEST[0]]}"):
        load_mnist("test", data_dir=stored, dataset="fashion_mnist")


def test_a_mismatch_names_the_data_set_the_file_is(tmp_path, monkeypatch):
    digests = write_split(tmp_path, "test", *synthetic_split(4))
    set_source(monkeypatch, "mnist", checksums=digests)
    with pytest.raises(DataFileError, match=r"\(Fashion-MNIST\), found [0-9a-f]{32} \(this is the MNIST file"):
        load_mnist("test", data_dir=tmp_path, dataset="fashion_mnist")


@pytest.mark.parametrize("folder_name", ["fashion_mnist", "fashion-mnist"])
def test_each_dataset_has_its_own_subfolder_of_dlcore_data(tmp_path, monkeypatch, folder_name):
    write_split(tmp_path / "mnist", "test", *synthetic_split(3, label_value=1))
    write_split(tmp_path / folder_name, "test", *synthetic_split(3, label_value=2))
    monkeypatch.setenv("DLCORE_DATA", str(tmp_path))
    assert labels_loaded() == 1
    assert labels_loaded(dataset="fashion_mnist") == 2


def test_flat_dlcore_data_is_used_when_its_checksums_identify_the_data_set(tmp_path, monkeypatch):
    digests = write_split(tmp_path, "test", *synthetic_split(3, label_value=7))
    set_source(monkeypatch, "mnist", checksums=digests)
    monkeypatch.setenv("DLCORE_DATA", str(tmp_path))
    assert labels_loaded() == 7  # verify=False: still identified by checksum
    with pytest.raises(DataFileError) as info:
        load_mnist("test", dataset="fashion_mnist", verify=False)
    message = str(info.value)
    assert "this is the MNIST file" in message
    assert f"put the Fashion-MNIST files in {tmp_path / 'fashion_mnist'}" in message


def test_flat_dlcore_data_of_unknown_files_is_refused(tmp_path, monkeypatch):
    write_split(tmp_path, "test", *synthetic_split(3))
    monkeypatch.setenv("DLCORE_DATA", str(tmp_path))
    with pytest.raises(DataFileError, match=f"put the MNIST files in {tmp_path / 'mnist'}") as info:
        load_mnist("test", verify=False)
    assert "this is the" not in str(info.value)


def test_files_missing_from_dlcore_data_name_the_subfolder_and_the_root(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCORE_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist("test", dataset="fashion_mnist")
    message = str(info.value)
    for where in ("fashion_mnist", "fashion-mnist", f"from {tmp_path} itself"):
        assert where in message


def test_fashion_mnist_class_names():
    assert DATASETS["fashion_mnist"].class_names[0] == "T-shirt/top" and len(DATASETS["fashion_mnist"].class_names) == 10
    assert DATASETS["mnist"].class_names == tuple("0123456789")


def test_image_and_label_counts_must_agree(tmp_path):
    images, labels = synthetic_split(5)
    write_split(tmp_path, "test", images, labels[:4])
    with pytest.raises(DataFileError, match=r"labels-idx1-ubyte.gz: expected 5 labels .* found 4"):
        load_mnist("test", data_dir=tmp_path, verify=False)


def test_labels_must_be_digits(tmp_path):
    images, labels = synthetic_split(5)
    labels[3] = 10
    write_split(tmp_path, "test", images, labels)
    with pytest.raises(DataFileError, match=r"expected labels in 0..9, found 10 at index 3"):
        load_mnist("test", data_dir=tmp_path, verify=False)


def test_images_must_be_28_by_28_uint8(tmp_path):
    write_split(tmp_path, "test", np.zeros((2, 28, 27), np.uint8), np.zeros(2, np.uint8))
    with pytest.raises(DataFileError, match=r"images-idx3-ubyte.gz: expected uint8 images \(N, 28"):
        load_mnist("test", data_dir=tmp_path, verify=False)
    int16_images = idx_bytes(np.zeros((2, 28, 28), np.int16))
    write_file(tmp_path / f"{TEST[0]}.gz", int16_images, compress=True)
    with pytest.raises(DataFileError, match="int16"):
        load_mnist("test", data_dir=tmp_path, verify=False)


def test_unknown_split_or_dataset(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_mnist("validation", data_dir=tmp_path)
    with pytest.raises(ValueError, match="dataset"):
        load_mnist("train", data_dir=tmp_path, dataset="cifar10")
