"""Property tests of the IDX parser: whatever the bytes, a clear DataFileError or the
exact array the header declares, in bounded time and memory; never a crash or a wrong array.

HYPOTHESIS_PROFILE=fuzz python -m pytest tests/data/test_idx_fuzz.py   runs a long search.
"""
import gzip
import struct
import tracemalloc

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from dlcore.data import DataFileError, read_idx
from dlcore.data.idx import IDX_DTYPES
from tests.robustness import tried

MEMORY_BOUND = 16 << 20  # bytes of Python allocations any single parse may reach


def _header(type_code: int, sizes) -> bytes:
    return bytes([0, 0, type_code, len(sizes)]) + b"".join(struct.pack(">I", s) for s in sizes)


def _parse(tmp_path, name: str, content: bytes, compress: bool):
    """read_idx of `content` written to a file; returns the array or the DataFileError."""
    tried("fuzzed files")
    path = tmp_path / name
    path.write_bytes(gzip.compress(content) if compress else content)
    tracemalloc.start()
    try:
        return read_idx(path)
    except DataFileError as error:
        assert str(path) in str(error), f"error does not name the file: {error}"
        return error
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < MEMORY_BOUND + 2 * len(content), f"parse allocated {peak} bytes"


def _expected_array(content: bytes):
    """The array a valid IDX byte string declares, or None if it is not valid."""
    if len(content) < 4 or content[:2] != b"\0\0" or content[2] not in IDX_DTYPES:
        return None
    ndim = content[3]
    if not 1 <= ndim <= 4 or len(content) < 4 + 4 * ndim:
        return None
    sizes = struct.unpack(f">{ndim}I", content[4:4 + 4 * ndim])
    dtype = IDX_DTYPES[content[2]]
    payload = content[4 + 4 * ndim:]
    if len(payload) != int(np.prod(sizes, dtype=object)) * dtype.itemsize:
        return None
    return np.frombuffer(payload, dtype=dtype).reshape(sizes).astype(dtype.newbyteorder("="))


@given(content=st.binary(max_size=600), compress=st.booleans())
def test_random_bytes_give_the_declared_array_or_a_clear_error(tmp_path_factory, content, compress):
    result = _parse(tmp_path_factory.mktemp("idx"), "random.idx", content, compress)
    expected = _expected_array(content)
    if expected is None:
        assert isinstance(result, DataFileError)
    else:
        np.testing.assert_array_equal(result, expected)
        assert result.dtype == expected.dtype


@given(
    type_code=st.sampled_from(sorted(IDX_DTYPES)),
    sizes=st.lists(st.integers(0, 7), min_size=1, max_size=4),
    data=st.data(),
    compress=st.booleans(),
)
def test_truncated_or_padded_payloads_are_rejected(tmp_path_factory, type_code, sizes, data, compress):
    dtype = IDX_DTYPES[type_code]
    exact = int(np.prod(sizes)) * dtype.itemsize
    length = data.draw(st.integers(0, exact + 16).filter(lambda n: n != exact), label="payload bytes")
    content = _header(type_code, sizes) + bytes(length)
    result = _parse(tmp_path_factory.mktemp("idx"), "sized.idx", content, compress)
    assert isinstance(result, DataFileError)


@given(
    sizes=st.lists(st.integers(1 << 16, (1 << 32) - 1), min_size=1, max_size=4),
    type_code=st.sampled_from(sorted(IDX_DTYPES)),
    tail=st.binary(max_size=64),
    compress=st.booleans(),
)
def test_absurd_declared_sizes_fail_fast_without_allocating(tmp_path_factory, sizes, type_code, tail, compress):
    result = _parse(tmp_path_factory.mktemp("idx"), "huge.idx", _header(type_code, sizes) + tail, compress)
    assert isinstance(result, DataFileError)


@given(
    magic=st.binary(min_size=4, max_size=4).filter(
        lambda b: b[:2] != b"\0\0" or b[2] not in IDX_DTYPES or not 1 <= b[3] <= 4),
    rest=st.binary(max_size=64),
)
def test_wrong_magic_type_or_dimension_count_is_rejected(tmp_path_factory, magic, rest):
    result = _parse(tmp_path_factory.mktemp("idx"), "magic.idx", magic + rest, compress=False)
    assert isinstance(result, DataFileError)


@given(cut=st.integers(0, 200), flip=st.integers(0, 10_000))
def test_damaged_gzip_streams_are_rejected_or_decode_exactly(tmp_path_factory, cut, flip):
    content = _header(0x08, [3, 4, 5]) + bytes(range(60))
    packed = bytearray(gzip.compress(content))
    packed[flip % len(packed)] ^= 0x5A
    damaged = bytes(packed[: len(packed) - cut])
    tried("fuzzed files")
    path = tmp_path_factory.mktemp("idx") / "damaged.idx.gz"
    path.write_bytes(damaged)
    try:
        array = read_idx(path)
    except DataFileError as error:
        assert str(path) in str(error)
        return
    np.testing.assert_array_equal(array, np.arange(60, dtype=np.uint8).reshape(3, 4, 5))
