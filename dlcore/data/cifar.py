"""CIFAR-10 and CIFAR-100 in their binary version (fixed-length records, no pickle).

Record layout (https://www.cs.toronto.edu/~kriz/cifar.html), one per image:
  CIFAR-10   1 label byte (0..9), then 3072 pixel bytes
  CIFAR-100  1 coarse label byte (0..19), 1 fine label byte (0..99), then 3072 pixel bytes
The pixels are the 1024 red, then 1024 green, then 1024 blue values of a 32x32 image, each
channel row-major: exactly NCHW. Class names are the lines of the archive's text files.

Folder lookup, first match wins: the `data_dir` argument, DLCORE_DATA/<dataset>, then the
per-user cache $XDG_CACHE_HOME/dlcore/datasets/<dataset>; each may hold the .bin files
directly or in the archive's own folder (cifar-10-batches-bin, cifar-100-binary). Files
missing from the cache are fetched: the archive is downloaded from the authors' site with a
progress bar, checked against its published MD5, and only the known members are extracted.
"""
from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlcore.data.download import DownloadError, download_verified
from dlcore.data.errors import DataFileError, DatasetNotFoundError
from dlcore.data.locations import DATA_DIR_ENV, data_dir_from_env, user_cache_dir

PIXEL_BYTES = 3 * 32 * 32
IMAGE_SHAPE = (3, 32, 32)


@dataclass(frozen=True)
class CifarSource:
    """One CIFAR data set: its archive, member files and record layout."""

    title: str
    url: str
    archive_md5: str  # of the .tar.gz, as published on the authors' page
    archive_folder: str  # the folder the archive's members sit in
    split_files: dict[str, tuple[str, ...]]  # split -> .bin files, in order
    label_files: dict[str, str]  # label_mode -> text file of class names, one per line
    label_offsets: dict[str, int]  # label_mode -> position of its byte in a record
    num_classes: dict[str, int]  # label_mode -> number of classes

    @property
    def record_bytes(self) -> int:
        return len(self.label_offsets) + PIXEL_BYTES


CIFAR_DATASETS = {
    "cifar10": CifarSource(
        title="CIFAR-10",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        archive_md5="c32a1d4ab5d03f1284b67883e8d87530",
        archive_folder="cifar-10-batches-bin",
        split_files={"train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)), "test": ("test_batch.bin",)},
        label_files={"fine": "batches.meta.txt"},
        label_offsets={"fine": 0},
        num_classes={"fine": 10},
    ),
    "cifar100": CifarSource(
        title="CIFAR-100",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
        archive_md5="03b5dce01913d631647c71ecec9e9cb8",
        archive_folder="cifar-100-binary",
        split_files={"train": ("train.bin",), "test": ("test.bin",)},
        label_files={"fine": "fine_label_names.txt", "coarse": "coarse_label_names.txt"},
        label_offsets={"coarse": 0, "fine": 1},
        num_classes={"fine": 100, "coarse": 20},
    ),
}


def load_cifar(
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    dataset: str = "cifar10",
    label_mode: str = "fine",
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Load one split of CIFAR-10 or CIFAR-100.

    split       "train" (50,000 images) or "test" (10,000)
    data_dir    folder with the .bin files; default DLCORE_DATA/<dataset>, then the cache
    dataset     "cifar10" or "cifar100"
    label_mode  "fine" (CIFAR-100's 100 classes; CIFAR-10's only labels) or "coarse"
                (CIFAR-100's 20 superclasses)
    Returns images float32 (N, 3, 32, 32) in [0, 1], labels int64 (N,) and the class names.
    Raises DataFileError naming the file for one whose length is not a whole number of
    records or whose labels are out of range, DatasetNotFoundError when the files are
    missing and cannot be downloaded.
    """
    if dataset not in CIFAR_DATASETS:
        raise ValueError(f"dataset must be one of {sorted(CIFAR_DATASETS)}, found {dataset!r}")
    source = CIFAR_DATASETS[dataset]
    if split not in source.split_files:
        raise ValueError(f"split must be one of {sorted(source.split_files)}, found {split!r}")
    if label_mode not in source.label_offsets:
        raise ValueError(f"{source.title} label_mode must be one of {sorted(source.label_offsets)}, "
                         f"found {label_mode!r}")
    names = (*source.split_files[split], source.label_files[label_mode])
    folder = _locate_folder(dataset, names, data_dir)
    class_names = _read_class_names(folder / source.label_files[label_mode], source.num_classes[label_mode])
    offset = source.label_offsets[label_mode]
    records = np.concatenate([_read_records(folder / name, source, offset, len(class_names))
                              for name in source.split_files[split]])  # (N, record_bytes)
    labels = records[:, offset].astype(np.int64)  # (N,)
    pixels = records[:, len(source.label_offsets):].reshape(len(records), *IMAGE_SHAPE)  # (N, 3, 32, 32)
    return np.divide(pixels, np.float32(255), dtype=np.float32), labels, class_names


def _read_records(path: Path, source: CifarSource, label_offset: int, num_classes: int) -> np.ndarray:
    """uint8 (N, record_bytes): the file's records; its length must be N whole records and
    the label byte at `label_offset` below num_classes."""
    size = path.stat().st_size
    if size == 0 or size % source.record_bytes:
        raise DataFileError(path, f"wrong length for a {source.title} binary file: expected a positive "
                                  f"multiple of {source.record_bytes} bytes (one record per image, 10,000 "
                                  f"records in a full file), found {size} bytes")
    records = np.fromfile(path, dtype=np.uint8).reshape(-1, source.record_bytes)
    bad = np.flatnonzero(records[:, label_offset] >= num_classes)
    if bad.size:
        raise DataFileError(path, f"expected labels in 0..{num_classes - 1}, found {records[bad[0], label_offset]} "
                                  f"at record {bad[0]} ({bad.size} out of range)")
    return records


def _read_class_names(path: Path, count: int) -> tuple[str, ...]:
    names = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    if len(names) != count:
        raise DataFileError(path, f"expected {count} class names, one per line, found {len(names)}")
    return names


def _locate_folder(dataset: str, names: tuple[str, ...], data_dir) -> Path:
    """The folder holding every file of `names`: data_dir, DLCORE_DATA/<dataset> or the cache
    (downloading into it when it lacks them)."""
    source = CIFAR_DATASETS[dataset]
    env_dir = data_dir_from_env()
    if data_dir is not None or env_dir is not None:
        root = Path(data_dir) if data_dir is not None else env_dir / dataset
        origin = "the data_dir argument" if data_dir is not None else f"the {DATA_DIR_ENV} environment variable"
        for folder in (root, root / source.archive_folder):
            if all((folder / name).is_file() for name in names):
                return folder
        raise DatasetNotFoundError(f"{source.title} files missing from {root} (from {origin}), either directly "
                                   f"or in {root / source.archive_folder}: need {', '.join(names)}")
    folder = user_cache_dir(dataset) / source.archive_folder
    if not all((folder / name).is_file() for name in names):
        _download_and_extract(dataset, folder)
    return folder


def _download_and_extract(dataset: str, folder: Path) -> None:
    source = CIFAR_DATASETS[dataset]
    archive = folder.parent / Path(source.url).name
    try:
        download_verified([source.url], archive, lambda path: _check_archive_md5(path, source))
    except DownloadError as error:
        attempts = "\n".join(f"  {url}: {reason}" for url, reason in error.failures)
        raise DatasetNotFoundError(
            f"{source.title} is not in the download cache {folder} and could not be downloaded.\n"
            f"Download {source.url} elsewhere, unpack it and pass its {source.archive_folder} folder as "
            f"load_cifar(data_dir=..., dataset={dataset!r}), or put it under "
            f"${DATA_DIR_ENV}/{dataset}.\nDownload attempts:\n{attempts}") from error
    try:
        _extract_members(archive, source, folder)
    finally:
        archive.unlink()


def _check_archive_md5(path: Path, source: CifarSource) -> None:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != source.archive_md5:
        raise DataFileError(path, f"MD5 mismatch of the {source.title} archive: expected {source.archive_md5}, "
                                  f"found {digest.hexdigest()}")


def _extract_members(archive: Path, source: CifarSource, folder: Path) -> None:
    """Copy the known members (the .bin and class-name files, regular files only) into
    `folder`, each through a temporary file renamed into place; nothing else is unpacked."""
    wanted = {f"{source.archive_folder}/{name}": name for files in source.split_files.values() for name in files}
    wanted |= {f"{source.archive_folder}/{name}": name for name in source.label_files.values()}
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        members = {member.name: member for member in tar.getmembers() if member.isfile()}
        missing = sorted(set(wanted) - set(members))
        if missing:
            raise DataFileError(archive, f"archive lacks {', '.join(missing)}")
        for member_name, name in wanted.items():
            descriptor, temp_name = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
            try:
                with os.fdopen(descriptor, "wb") as target, tar.extractfile(members[member_name]) as data:
                    while chunk := data.read(1 << 20):
                        target.write(chunk)
                os.replace(temp_name, folder / name)
            finally:
                Path(temp_name).unlink(missing_ok=True)
