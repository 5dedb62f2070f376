"""Synthetic IDX files and DATASETS-table patches for the data tests."""
import dataclasses
import gzip
import hashlib
import struct

import numpy as np

from dlcore.data import mnist
from dlcore.data.idx import IDX_DTYPES
from dlcore.data.mnist import SPLIT_FILES

UNREACHABLE_MIRROR = "http://127.0.0.1:9/"  # the discard port: connection refused at once
TYPE_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of `array`: header, then big-endian data."""
    array = np.asarray(array)
    code = TYPE_CODES[array.dtype.newbyteorder("=")]
    return idx_header(code, array.shape) + array.astype(IDX_DTYPES[code]).tobytes()


def idx_header(type_code: int, shape: tuple) -> bytes:
    """Two zero bytes, the type code, the dimension count, then the sizes, big-endian."""
    sizes = struct.pack(f">{len(shape)}I", *shape)
    return struct.pack(">BBBB", 0, 0, type_code, len(shape)) + sizes


def write_file(path, content: bytes, compress: bool):
    """Write `content` to `path` (gzip-compressed when `compress`) and return the path."""
    path.write_bytes(gzip.compress(content) if compress else content)
    return path


def synthetic_split(n_samples: int, label_value: int | None = None):
    """uint8 images (N, 28, 28) with a per-sample pattern and uint8 labels (N,)."""
    images = (np.arange(n_samples * 28 * 28) % 251).astype(np.uint8).reshape(n_samples, 28, 28)
    if label_value is None:
        return images, np.arange(n_samples, dtype=np.uint8) % 10
    return images, np.full(n_samples, label_value, np.uint8)


def write_split(folder, split: str, images, labels, compress: bool = True) -> dict:
    """Store a split in `folder` as MNIST names; returns {name: md5 of the decompressed content}."""
    folder.mkdir(parents=True, exist_ok=True)
    digests = {}
    for name, array in zip(SPLIT_FILES[split], (images, labels)):
        content = idx_bytes(array)
        write_file(folder / (f"{name}.gz" if compress else name), content, compress)
        digests[name] = hashlib.md5(content).hexdigest()
    return digests


def set_source(monkeypatch, dataset="mnist", **changes):
    """Replace fields (mirrors, checksums) of a data set's entry in the DATASETS table."""
    patched = dataclasses.replace(mnist.DATASETS[dataset], **changes)
    monkeypatch.setitem(mnist.DATASETS, dataset, patched)

