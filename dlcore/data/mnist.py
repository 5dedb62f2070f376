"""MNIST and Fashion-MNIST: find the IDX files, verify them, download them when absent, load.

Folder lookup, first match wins:
  1. the `data_dir` argument
  2. the DLCORE_DATA environment variable
  3. the per-user cache, $XDG_CACHE_HOME/dlcore/datasets/<dataset> (~/.cache/... by default)
Files missing from 1 or 2 are an error (the folder was chosen explicitly); files missing from
the cache are downloaded into it. Each file may be stored raw or gzip-compressed (name.gz).
"""
from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlcore.data.download import DownloadError, download_verified
from dlcore.data.errors import DataFileError, DatasetNotFoundError
from dlcore.data.idx import is_gzip_file, read_idx
from dlcore.data.locations import DATA_DIR_ENV, data_dir_from_env, find_stored_file, user_cache_dir

SPLIT_FILES = {  # split -> (images file, labels file), names without .gz
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_SIZE = (28, 28)
NUM_CLASSES = 10


@dataclass(frozen=True)
class Md5:
    """A published MD5 digest: of the decompressed IDX content (usable whichever way the
    file is stored), or, with of_gzip_file, of the bytes of the .gz file itself."""

    hexdigest: str
    of_gzip_file: bool = False


@dataclass(frozen=True)
class DatasetSource:
    """Where a data set is downloaded from and how its files are verified."""

    title: str
    mirrors: tuple[str, ...]  # base URLs; a file's URL is mirror + name + ".gz"
    checksums: Mapping[str, Md5]  # by file name without .gz


DATASETS = {
    "mnist": DatasetSource(
        title="MNIST",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        checksums={
            "train-images-idx3-ubyte": Md5("6bbc9ace898e44ae57da46a324031adb"),
            "train-labels-idx1-ubyte": Md5("a25bea736e30d166cdddb491f175f624"),
            "t10k-images-idx3-ubyte": Md5("2646ac647ad5339dbf082846283269ea"),
            "t10k-labels-idx1-ubyte": Md5("27ae3e4e09519cfbb04c329615203637"),
        },
    ),
    # Zalando publishes MD5s of the .gz files only (README of zalandoresearch/fashion-mnist),
    # so Fashion-MNIST is verified on .gz files; a decompressed copy loads with a warning.
    "fashion_mnist": DatasetSource(
        title="Fashion-MNIST",
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        checksums={
            "train-images-idx3-ubyte": Md5("8d4fb7e6c68d591d4c3dfef9ec88bf0d", of_gzip_file=True),
            "train-labels-idx1-ubyte": Md5("25c81989df183df01b3e8a0aad5dffbe", of_gzip_file=True),
            "t10k-images-idx3-ubyte": Md5("bef4ecab320f06d8554ea6380940ec79", of_gzip_file=True),
            "t10k-labels-idx1-ubyte": Md5("bb300cfdad3c16e7a12a480ee83cd310", of_gzip_file=True),
        },
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
    data_dir  folder holding the IDX files; default DLCORE_DATA, then the per-user cache
              (downloaded there when absent)
    dataset   "mnist" or "fashion_mnist"
    verify    check each file's MD5 against the published value
    Returns images float32 (N, 1, 28, 28) scaled to [0, 1] and labels int64 (N,) in 0..9.
    Raises DataFileError for a malformed or corrupt file, DatasetNotFoundError when the
    files are missing and cannot be downloaded.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, found {dataset!r}")
    if split not in SPLIT_FILES:
        raise ValueError(f"split must be one of {sorted(SPLIT_FILES)}, found {split!r}")
    source = DATASETS[dataset]
    images_name, labels_name = SPLIT_FILES[split]
    paths = _locate_files(dataset, source, (images_name, labels_name), data_dir)
    images = _read_checked(paths[images_name], source.checksums[images_name], verify)  # (N, 28, 28)
    labels = _read_checked(paths[labels_name], source.checksums[labels_name], verify)  # (N,)
    _check_images_and_labels(images, labels, paths[images_name], paths[labels_name])
    images = np.divide(images, np.float32(255), dtype=np.float32)  # uint8 0..255 -> [0, 1]
    return images.reshape(len(images), 1, *IMAGE_SIZE), labels.astype(np.int64)


def _locate_files(
    dataset: str, source: DatasetSource, names: tuple[str, ...], data_dir: str | os.PathLike | None
) -> dict[str, Path]:
    """Path of each file by name: from the explicit folder (argument, then DLCORE_DATA), or
    from the cache, downloading what the cache lacks."""
    env_dir = data_dir_from_env()
    if data_dir is not None:
        folder, origin = Path(data_dir), "the data_dir argument"
    elif env_dir is not None:
        folder, origin = env_dir, f"the {DATA_DIR_ENV} environment variable"
    else:
        folder, origin = user_cache_dir(dataset), None

    found = {name: find_stored_file(folder, name) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing and origin is not None:
        raise DatasetNotFoundError(
            f"{source.title} files missing from {folder} (given by {origin}): "
            f"{', '.join(missing)} (each either raw or as .gz)"
        )
    for name in missing:
        found[name] = _download(dataset, source, name, folder, names)
    return found


def _download(
    dataset: str, source: DatasetSource, name: str, cache: Path, names: tuple[str, ...]
) -> Path:
    urls = [f"{mirror}{name}.gz" for mirror in source.mirrors]
    checksum = source.checksums[name]
    try:
        return download_verified(
            urls, cache / f"{name}.gz", lambda path: _verify_download(path, checksum)
        )
    except DownloadError as exc:
        raise DatasetNotFoundError(_not_found_message(dataset, source, names, cache, exc)) from exc


def _not_found_message(
    dataset: str, source: DatasetSource, names: tuple[str, ...], cache: Path, error: DownloadError
) -> str:
    attempts = "\n".join(f"  {url}: {reason}" for url, reason in error.failures)
    return (
        f"{source.title} files are not in the download cache {cache} and could not be downloaded.\n"
        f"Needed: {', '.join(f'{name}.gz' for name in names)} (or the same names without .gz).\n"
        f"Put them in one of:\n"
        f"  - a folder passed as load_mnist(data_dir=..., dataset={dataset!r})\n"
        f"  - a folder named by the {DATA_DIR_ENV} environment variable\n"
        f"  - the download cache {cache}\n"
        f"If a shared copy of the data set exists (e.g. a shared/datasets/{dataset} folder), "
        f"use it in place: export {DATA_DIR_ENV}=/path/to/that/folder\n"
        f"Download attempts:\n{attempts}"
    )


def _verify_download(path: Path, checksum: Md5) -> None:
    """A download must be verifiable: where only the .gz file's MD5 is published, raw data
    (which _read_checked would accept with a warning) is refused."""
    if checksum.of_gzip_file and not is_gzip_file(path):
        raise DataFileError(
            path, "expected gzip data (the published MD5 is of the .gz file), found raw data"
        )
    _read_checked(path, checksum, verify=True)


def _read_checked(path: Path, checksum: Md5, verify: bool) -> np.ndarray:
    """read_idx, plus the MD5 check when `verify`: on the decompressed content, hashed while
    parsing, or on the .gz file's bytes where only that digest is published."""
    if not verify:
        return read_idx(path)
    if not checksum.of_gzip_file:
        content_hash = hashlib.md5(usedforsecurity=False)
        array = read_idx(path, content_hash)
        _check_md5(path, checksum, content_hash.hexdigest(), "decompressed content")
        return array
    if is_gzip_file(path):
        _check_md5(path, checksum, _file_md5(path), ".gz file")
    else:
        warnings.warn(
            f"{path}: only the .gz file's MD5 is published, so this decompressed file is loaded "
            f"unverified (keep the .gz file to have it checked)",
            stacklevel=3,
        )
    return read_idx(path)


def _check_md5(path: Path, checksum: Md5, found: str, hashed: str) -> None:
    if found != checksum.hexdigest:
        raise DataFileError(
            path, f"MD5 mismatch of the {hashed}: expected {checksum.hexdigest}, found {found}"
        )


def _file_md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


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
