"""load_cifar on small synthetic files in the CIFAR binary format, and its download from a local mirror."""
import dataclasses
import hashlib
import io
import tarfile

import numpy as np
import pytest

from dlcore.data import DataFileError, DatasetNotFoundError, load_cifar
from dlcore.data import cifar

CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def synthetic_images(n: int, start: int = 0) -> np.ndarray:
    """uint8 (n, 3, 32, 32), every image and channel different."""
    return ((np.arange(n * 3 * 32 * 32).reshape(n, 3, 32, 32) + 7 * start) % 256).astype(np.uint8)


def cifar10_files(n_per_batch=3) -> dict[str, bytes]:
    """{member name: bytes} of a small CIFAR-10: labels 0.. in order, images from synthetic_images."""
    files = {"batches.meta.txt": "\n".join(CIFAR10_NAMES).encode() + b"\n\n"}
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for index, name in enumerate(names):
        labels = (np.arange(n_per_batch) + index) % 10
        images = synthetic_images(n_per_batch, index)
        files[name] = np.concatenate([labels[:, None].astype(np.uint8), images.reshape(n_per_batch, -1)], 1).tobytes()
    return files


def cifar100_files(n=4) -> dict[str, bytes]:
    files = {"fine_label_names.txt": "\n".join(f"fine{i}" for i in range(100)).encode(),
             "coarse_label_names.txt": "\n".join(f"coarse{i}" for i in range(20)).encode()}
    for index, name in enumerate(("train.bin", "test.bin")):
        coarse, fine = np.arange(n) % 20, (np.arange(n) * 7 + index) % 100
        images = synthetic_images(n, index).reshape(n, -1)
        files[name] = np.concatenate([coarse[:, None], fine[:, None], images], 1).astype(np.uint8).tobytes()
    return files


def write_files(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder


def tar_gz(files, prefix) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(f"{prefix}/{name}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def test_cifar10_train_and_test(tmp_path):
    write_files(tmp_path, cifar10_files())
    images, labels, names = load_cifar("train", data_dir=tmp_path)
    assert images.shape == (15, 3, 32, 32) and images.dtype == np.float32
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1, 2, 1, 2, 3, 2, 3, 4, 3, 4, 5, 4, 5, 6]
    assert names == CIFAR10_NAMES
    np.testing.assert_array_equal(images[3:6] * 255, synthetic_images(3, 1))  # data_batch_2, channels R, G, B
    test_images, test_labels, _ = load_cifar("test", data_dir=tmp_path)
    assert test_labels.tolist() == [5, 6, 7]
    np.testing.assert_array_equal(test_images * 255, synthetic_images(3, 5))


def test_cifar100_fine_and_coarse_labels(tmp_path):
    write_files(tmp_path / "cifar-100-binary", cifar100_files())
    _, fine, fine_names = load_cifar("test", data_dir=tmp_path, dataset="cifar100")
    images, coarse, coarse_names = load_cifar("test", data_dir=tmp_path, dataset="cifar100", label_mode="coarse")
    assert fine.tolist() == [1, 8, 15, 22] and coarse.tolist() == [0, 1, 2, 3]
    assert len(fine_names) == 100 and coarse_names[3] == "coarse3"
    np.testing.assert_array_equal(images * 255, synthetic_images(4, 1))
    with pytest.raises(ValueError, match="label_mode"):
        load_cifar("test", data_dir=tmp_path, dataset="cifar10", label_mode="coarse")


def test_dlcore_data_subfolder(tmp_path, monkeypatch):
    write_files(tmp_path / "cifar10" / "cifar-10-batches-bin", cifar10_files())
    monkeypatch.setenv("DLCORE_DATA", str(tmp_path))
    assert load_cifar("test")[1].tolist() == [5, 6, 7]
    with pytest.raises(DatasetNotFoundError, match=f"{tmp_path / 'cifar100'}.*train.bin"):
        load_cifar("train", dataset="cifar100")


def test_a_file_of_the_wrong_length_is_named(tmp_path):
    files = cifar10_files()
    files["data_batch_3.bin"] = files["data_batch_3.bin"][:-1]
    write_files(tmp_path, files)
    with pytest.raises(DataFileError, match=r"data_batch_3.bin: wrong length .* multiple of 3073 bytes .* found 9218"):
        load_cifar("train", data_dir=tmp_path)
    files = cifar100_files()
    files["test.bin"] = b""
    write_files(tmp_path / "c100", files)
    with pytest.raises(DataFileError, match=r"test.bin: wrong length .* multiple of 3074 bytes"):
        load_cifar("test", data_dir=tmp_path / "c100", dataset="cifar100")


def test_out_of_range_labels_and_class_name_files(tmp_path):
    files = cifar10_files()
    broken = bytearray(files["test_batch.bin"])
    broken[3073] = 10  # the label of record 1
    files["test_batch.bin"] = bytes(broken)
    write_files(tmp_path, files)
    with pytest.raises(DataFileError, match=r"test_batch.bin: expected labels in 0..9, found 10 at record 1"):
        load_cifar("test", data_dir=tmp_path)
    (tmp_path / "batches.meta.txt").write_text("airplane\n")
    with pytest.raises(DataFileError, match="batches.meta.txt: expected 10 class names"):
        load_cifar("test", data_dir=tmp_path)


def point_at(monkeypatch, dataset, url, archive):
    source = dataclasses.replace(cifar.CIFAR_DATASETS[dataset], url=url,
                                 archive_md5=hashlib.md5(archive).hexdigest())
    monkeypatch.setitem(cifar.CIFAR_DATASETS, dataset, source)


def test_download_verifies_the_archive_and_extracts_only_the_known_files(isolated_env, tmp_path, monkeypatch):
    files = cifar10_files() | {"readme.html": b"<html>"}
    archive = tar_gz(files, "cifar-10-batches-bin")
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "cifar-10-binary.tar.gz").write_bytes(archive)
    point_at(monkeypatch, "cifar10", (tmp_path / "mirror" / "cifar-10-binary.tar.gz").as_uri(), archive)
    _, labels, names = load_cifar("test")
    assert labels.tolist() == [5, 6, 7] and names == CIFAR10_NAMES
    cache = isolated_env / "dlcore" / "datasets" / "cifar10"
    assert sorted(p.name for p in cache.rglob("*")) == sorted(
        ["cifar-10-batches-bin", *(name for name in files if name != "readme.html")])
    (tmp_path / "mirror" / "cifar-10-binary.tar.gz").unlink()
    assert load_cifar("train")[0].shape == (15, 3, 32, 32)  # from the cache


def test_a_corrupt_archive_is_refused_and_leaves_nothing(isolated_env, tmp_path, monkeypatch):
    archive = tar_gz(cifar10_files(), "cifar-10-batches-bin")
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(archive[:-1] + bytes([archive[-1] ^ 1]))
    point_at(monkeypatch, "cifar10", (tmp_path / "cifar-10-binary.tar.gz").as_uri(), archive)
    with pytest.raises(DatasetNotFoundError, match="MD5 mismatch of the CIFAR-10 archive"):
        load_cifar("test")
    assert list((isolated_env / "dlcore" / "datasets" / "cifar10").iterdir()) == []


def test_offline_error_says_where_to_put_the_files(isolated_env):
    with pytest.raises(DatasetNotFoundError) as info:
        load_cifar("test", dataset="cifar100")
    message = str(info.value)
    assert "cifar-100-binary" in message and "DLCORE_DATA" in message and "data_dir" in message
