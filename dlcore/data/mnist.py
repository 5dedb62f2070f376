"""MNIST and Fashion-MNIST: find the IDX files, verify them, download them when absent, load.

Folder lookup, first match wins:
  1. the `data_dir` argument: the folder holding this data set's files
  2. the DLCORE_DATA environment variable: a root with one subfolder per data set
     (DLCORE_DATA/mnist, DLCORE_DATA/fashion_mnist, or Debian's name fashion-mnist); files
     directly in DLCORE_DATA (the flat layout) are used only when their checksums say they
     are the data set asked for, so a flat MNIST folder never stands in for Fashion-MNIST
  3. the per-user cache, $XDG_CACHE_HOME/dlcore/datasets/<dataset> (~/.cache/... by default)
Files missing from 1 or 2 are an error (the folder was chosen explicitly); files missing from
the cache are downloaded into it. Each file may be stored raw or gzip-compressed (name.gz).
Checksums are MD5s of the decompressed IDX content, so any faithful re-compression (such
as Debian's dataset-fashion-mnist package) verifies and any changed byte does not.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlcore.data.download import DownloadError, download_verified
from dlcore.data.errors import DataFileError, DatasetNotFoundError
from dlcore.data.idx import read_idx
from dlcore.data.locations import DATA_DIR_ENV, data_dir_from_env, find_stored_file, user_cache_dir

SPLIT_FILES = {  # split -> (images file, labels file), names without .gz
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_SIZE = (28, 28)
NUM_CLASSES = 10


@dataclass(frozen=True)
class DatasetSource:
    """Where a data set is downloaded from, where it sits under DLCORE_DATA, how it is verified."""

    title: str
    mirrors: tuple[str, ...]  # base URLs; a file's URL is mirror + name + ".gz"
    checksums: Mapping[str, str]  # file name without .gz -> MD5 hexdigest of the decompressed content
    folder_names: tuple[str, ...]  # its subfolder of DLCORE_DATA, first match wins
    class_names: tuple[str, ...]  # label i names class_names[i]


DATASETS = {
    "mnist": DatasetSource(
        title="MNIST",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        checksums={
            "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
            "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
            "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
            "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
        },
        folder_names=("mnist",),
        class_names=tuple(str(digit) for digit in range(10)),
    ),
    # Zalando publishes MD5s of its .gz files; these are of their decompressed content (as
    # torchvision's FashionMNIST lists them), which any re-compression keeps.
    "fashion_mnist": DatasetSource(
        title="Fashion-MNIST",
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        checksums={
            "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
            "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
            "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
        },
        folder_names=("fashion_mnist", "fashion-mnist"),
        class_names=(
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
        ),
    ),
}


def load_mnist(
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    dataset: str = "mnist",
    verify: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Load one split of MNIST or Fashion-MNIST.

    split     "train" (60,000 samples) or "test" (10,000)
    data_dir  folder holding the IDX files; default DLCORE_DATA/<dataset>, then the per-user
              cache (downloaded there when absent)
    dataset   "mnist" or "fashion_mnist"
    verify    check each file's MD5 (of the decompressed content) against the published
              value; files found flat in DLCORE_DATA are always checked, as that is how
              they are told apart
    Returns images float32 (N, 1, 28, 28) scaled to [0, 1] and labels int64 (N,) in 0..9;
    DATASETS[dataset].class_names names the labels.
    Raises DataFileError for a malformed or corrupt file, DatasetNotFoundError when the
    files are missing and cannot be downloaded.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, found {dataset!r}")
    if split not in SPLIT_FILES:
        raise ValueError(f"split must be one of {sorted(SPLIT_FILES)}, found {split!r}")
    names = SPLIT_FILES[split]
    paths, flat_layout_hint = _locate_files(dataset, names, data_dir)
    images, labels = (
        _read_checked(paths[name], dataset, name, verify or bool(flat_layout_hint), flat_layout_hint)
        for name in names
    )  # (N, 28, 28), (N,)
    _check_images_and_labels(images, labels, paths[names[0]], paths[names[1]])
    images = np.divide(images, np.float32(255), dtype=np.float32)  # uint8 0..255 -> [0, 1]
    return images.reshape(len(images), 1, *IMAGE_SIZE), labels.astype(np.int64)


def _locate_files(
    dataset: str, names: tuple[str, ...], data_dir: str | os.PathLike | None
) -> tuple[dict[str, Path], str]:
    """(path of each file by name, what to do if they are not this data set, "" unless
    they lie flat in DLCORE_DATA and must prove by checksum which data set they are): from
    the data_dir argument, else DLCORE_DATA, else the cache, downloading what it lacks."""
    source = DATASETS[dataset]
    if data_dir is not None:
        folder = Path(data_dir)
        return _files_in(folder, names, dataset, f"{folder} (given by the data_dir argument)"), ""
    env_dir = data_dir_from_env()
    if env_dir is not None:
        for folder_name in source.folder_names:
            folder = env_dir / folder_name
            if folder.is_dir():
                return _files_in(folder, names, dataset, f"{folder} (under {DATA_DIR_ENV})"), ""
        subfolders = " or ".join(str(env_dir / folder_name) for folder_name in source.folder_names)
        where = f"{subfolders} and from {env_dir} itself (the {DATA_DIR_ENV} environment variable)"
        hint = (
            f"; files directly in {DATA_DIR_ENV} are used only when their checksums identify the "
            f"data set: put the {source.title} files in {env_dir / source.folder_names[0]}"
        )
        return _files_in(env_dir, names, dataset, where), hint
    cache = user_cache_dir(dataset)
    found = {name: find_stored_file(cache, name) for name in names}
    for name in [name for name, path in found.items() if path is None]:
        found[name] = _download(dataset, name, cache, names)
    return found, ""


def _files_in(folder: Path, names: tuple[str, ...], dataset: str, where: str) -> dict[str, Path]:
    found = {name: find_stored_file(folder, name) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise DatasetNotFoundError(
            f"{DATASETS[dataset].title} files missing from {where}: "
            f"{', '.join(missing)} (each either raw or as .gz)"
        )
    return found


def _download(dataset: str, name: str, cache: Path, names: tuple[str, ...]) -> Path:
    urls = [f"{mirror}{name}.gz" for mirror in DATASETS[dataset].mirrors]
    try:
        return download_verified(
            urls, cache / f"{name}.gz", lambda path: _read_checked(path, dataset, name, verify=True)
        )
    except DownloadError as exc:
        raise DatasetNotFoundError(_not_found_message(dataset, names, cache, exc)) from exc


def _not_found_message(dataset: str, names: tuple[str, ...], cache: Path, error: DownloadError) -> str:
    source = DATASETS[dataset]
    attempts = "\n".join(f"  {url}: {reason}" for url, reason in error.failures)
    return (
        f"{source.title} files are not in the download cache {cache} and could not be downloaded.\n"
        f"Needed: {', '.join(f'{name}.gz' for name in names)} (or the same names without .gz).\n"
        f"Put them in one of:\n"
        f"  - a folder passed as load_mnist(data_dir=..., dataset={dataset!r})\n"
        f"  - the subfolder {source.folder_names[0]}/ of the folder named by the {DATA_DIR_ENV} "
        f"environment variable\n"
        f"  - the download cache {cache}\n"
        f"If a shared copy of the data set exists (e.g. a shared/datasets/{dataset} folder), "
        f"use it in place: export {DATA_DIR_ENV}=/path/to/shared/datasets\n"
        f"Download attempts:\n{attempts}"
    )


def _read_checked(path: Path, dataset: str, name: str, verify: bool, hint: str = "") -> np.ndarray:
    """read_idx, plus, when `verify`, the MD5 of the decompressed content (hashed while
    parsing) checked against the data set's; a mismatch names the data set the file is, if
    its digest is a known one, and ends with `hint`."""
    if not verify:
        return read_idx(path)
    content_hash = hashlib.md5(usedforsecurity=False)
    array = read_idx(path, content_hash)
    expected, found = DATASETS[dataset].checksums[name], content_hash.hexdigest()
    if found != expected:
        actually = [source.title for source in DATASETS.values() if source.checksums.get(name) == found]
        identity = f" (this is the {actually[0]} file {name})" if actually else ""
        raise DataFileError(
            path,
            f"MD5 mismatch of the decompressed content: expected {expected} "
            f"({DATASETS[dataset].title}), found {found}{identity}{hint}",
        )
    return array


def _check_images_and_labels(
    images: np.ndarray, labels: np.ndarray, images_path: Path, labels_path: Path
) -> None:
    """uint8 images (N, 28, 28) and as many uint8 labels (N,), each in 0..9."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SIZE:
        found = f"{images.dtype} {images.shape}"
        raise DataFileError(images_path, f"expected uint8 images (N, 28, 28), found {found}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        found = f"{labels.dtype} {labels.shape}"
        raise DataFileError(labels_path, f"expected uint8 labels of shape (N,), found {found}")
    if len(labels) != len(images):
        raise DataFileError(
            labels_path,
            f"expected {len(images)} labels (one per image in {images_path}), found {len(labels)}",
        )
    out_of_range = np.flatnonzero(labels >= NUM_CLASSES)
    if out_of_range.size:
        first = out_of_range[0]
        raise DataFileError(
            labels_path,
            f"expected labels in 0..{NUM_CLASSES - 1}, found {labels[first]} at index {first} "
            f"({out_of_range.size} out of range)",
        )
