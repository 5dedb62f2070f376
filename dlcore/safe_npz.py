"""Read .npz archives that may be damaged or hostile: no pickle, bounded memory.

numpy.load trusts each member's .npy header and allocates the array it declares before
reading, so a tiny file can ask for terabytes. Here every member's header is checked
against the member's real size first, object arrays (which need pickle) are refused,
and the archive's declared total must fit in half the machine's memory.
"""
from __future__ import annotations

import os
import zipfile

import numpy as np
from numpy.lib import format as npy_format

_HEADER_READERS = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}


def memory_limit() -> int:
    """Bytes an archive may declare: half the physical memory."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2


def read_npz(file, limit: int | None = None) -> dict[str, np.ndarray]:
    """Every array of the .npz archive `file` (a path or binary file) by name.

    Raises ValueError naming the problem for a member that is not a plain .npy array,
    declares a size its bytes do not hold, or needs pickle; zipfile's own errors
    (BadZipFile, CRC mismatches) pass through.
    """
    limit = memory_limit() if limit is None else limit
    if _starts_with(file, npy_format.MAGIC_PREFIX):
        raise ValueError("a single .npy array, not an .npz archive")
    with zipfile.ZipFile(file) as archive:
        members = archive.infolist()
        declared = sum(member.file_size for member in members)
        if declared > limit:
            raise ValueError(f"the archive declares {declared} bytes of arrays, more than the {limit} allowed")
        return {member.filename.removesuffix(".npy"): _read_member(archive, member) for member in members}


def _starts_with(file, prefix: bytes) -> bool:
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as opened:
            return opened.read(len(prefix)) == prefix
    start = file.tell()
    head = file.read(len(prefix))
    file.seek(start)
    return head == prefix


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> np.ndarray:
    name = member.filename
    if not name.endswith(".npy"):
        raise ValueError(f"member {name!r} is not a .npy array")
    with archive.open(member) as stream:
        version = npy_format.read_magic(stream)
        if version not in _HEADER_READERS:
            raise ValueError(f"member {name!r} has .npy format version {version}")
        shape, fortran_order, dtype = _HEADER_READERS[version](stream)
        if dtype.hasobject:
            raise ValueError(f"member {name!r} holds Python objects, which only pickle could read")
        data_bytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if stream.tell() + data_bytes != member.file_size:
            raise ValueError(f"member {name!r} declares shape {shape} of {dtype} ({data_bytes} bytes) "
                             f"but holds {member.file_size - stream.tell()} bytes of data")
        data = stream.read(data_bytes)
    if len(data) != data_bytes:
        raise ValueError(f"member {name!r} ends after {len(data)} of {data_bytes} bytes")
    order = "F" if fortran_order else "C"
    return np.frombuffer(data, dtype=dtype).reshape(shape, order=order).copy(order="K")
