"""Reader for the IDX format of MNIST-like data sets, raw or gzip-compressed.

Layout, all big-endian:
  bytes 0-1  0x00 0x00
  byte  2    type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
  byte  3    number of dimensions, 1 to 4
  then       one uint32 size per dimension
  then       the data in C order: prod(sizes) items of that type

Compression is detected from the gzip magic bytes (1f 8b), not from the file name. The sizes
are checked against the bytes actually present before the declared amount is ever allocated,
and a gzip stream is never decompressed past the declared size + 1 byte, so neither an absurd
header nor a gzip bomb can make the reader allocate gigabytes.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from typing import BinaryIO

import numpy as np

from dlcore.data.errors import DataFileError

IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
MAX_DIMENSIONS = 4
GZIP_MAGIC = b"\x1f\x8b"
_FIXED_HEADER_BYTES = 4  # two zero bytes, type code, dimension count
_READ_CHUNK_BYTES = 1 << 20  # memory grows with the data actually read, 1 MiB at a time


def read_idx(path: str | os.PathLike, content_hash=None) -> np.ndarray:
    """Read an IDX file into an array of its declared shape and dtype, in native byte order.

    path          a raw or gzip-compressed IDX file
    content_hash  optional hashlib object; every decompressed byte (header and data) is fed
                  to it, so a caller checks the content's digest without a second pass
    Returns an array of shape (sizes[0], ..., sizes[ndim - 1]), e.g. (N, 28, 28) uint8.
    Raises DataFileError, naming the file and what was expected and found, for a malformed
    or truncated file or a corrupt gzip stream; OSError (e.g. FileNotFoundError) if the file
    cannot be opened.
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        compressed = file.read(len(GZIP_MAGIC)) == GZIP_MAGIC
        file.seek(0)
        if not compressed:
            return _parse_idx(path, file, os.fstat(file.fileno()).st_size, content_hash)
        try:
            with gzip.GzipFile(fileobj=file, mode="rb") as stream:
                return _parse_idx(path, stream, None, content_hash)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise DataFileError(path, f"corrupt or truncated gzip stream ({exc})") from exc


def _parse_idx(path: str, stream: BinaryIO, stream_bytes: int | None, content_hash) -> np.ndarray:
    """Parse header and data from `stream`; `stream_bytes` is its total length when known
    (a raw file) and None for a decompressing stream, whose length shows only by reading."""
    fixed = _read_at_most(stream, _FIXED_HEADER_BYTES)
    if len(fixed) < _FIXED_HEADER_BYTES:
        raise DataFileError(
            path, f"truncated header: expected {_FIXED_HEADER_BYTES} bytes, found {len(fixed)}"
        )
    if fixed[:2] != b"\x00\x00":
        found = fixed[:2].hex(" ")
        raise DataFileError(path, f"wrong magic: expected first two bytes 00 00, found {found}")
    type_code, ndim = fixed[2], fixed[3]
    if type_code not in IDX_DTYPES:
        known = ", ".join(f"0x{code:02X}" for code in IDX_DTYPES)
        raise DataFileError(
            path, f"unknown type code: expected one of {known}, found 0x{type_code:02X}"
        )
    if not 1 <= ndim <= MAX_DIMENSIONS:
        raise DataFileError(
            path, f"bad dimension count: expected 1 to {MAX_DIMENSIONS}, found {ndim}"
        )

    header_bytes = _FIXED_HEADER_BYTES + 4 * ndim
    size_fields = _read_at_most(stream, 4 * ndim)
    if len(size_fields) < 4 * ndim:
        found = _FIXED_HEADER_BYTES + len(size_fields)
        raise DataFileError(
            path,
            f"truncated header: expected {header_bytes} bytes for {ndim} dimensions, found {found}",
        )
    shape = struct.unpack(f">{ndim}I", size_fields)
    dtype = IDX_DTYPES[type_code]
    payload_bytes = math.prod(shape) * dtype.itemsize  # a Python int: no overflow

    if stream_bytes is not None and stream_bytes - header_bytes != payload_bytes:
        raise _size_mismatch(path, shape, dtype, payload_bytes, f"{stream_bytes - header_bytes}")
    payload = _read_at_most(stream, payload_bytes + 1)
    if len(payload) != payload_bytes:
        found = f"more than {payload_bytes}" if len(payload) > payload_bytes else f"{len(payload)}"
        raise _size_mismatch(path, shape, dtype, payload_bytes, found)

    if content_hash is not None:
        content_hash.update(fixed)
        content_hash.update(size_fields)
        content_hash.update(payload)
    array = np.frombuffer(payload, dtype=dtype).reshape(shape)
    return array if dtype.isnative else array.astype(dtype.newbyteorder("="))


def _size_mismatch(
    path: str, shape: tuple, dtype: np.dtype, expected: int, found: str
) -> DataFileError:
    return DataFileError(
        path,
        f"data size does not match the header: shape {shape} of {dtype.name} needs "
        f"{expected} bytes of data, found {found}",
    )


def _read_at_most(stream: BinaryIO, limit: int) -> bytearray:
    """Read until `limit` bytes or the end of the stream, in bounded chunks, so memory
    follows the bytes that exist rather than the bytes a header claims."""
    chunks = []
    remaining = limit
    while remaining > 0:
        chunk = stream.read(min(remaining, _READ_CHUNK_BYTES))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return bytearray().join(chunks)
