"""IDX parsing: every type code, raw and gzip; a clear DataFileError for every malformed file."""
import gzip
import hashlib
import tracemalloc

import numpy as np
import pytest

from dlcore.data import DataFileError, read_idx
from dlcore.data.idx import IDX_DTYPES

from .synthetic_idx import idx_bytes, idx_header, write_file

MiB = 1 << 20


def read_error(path) -> str:
    with pytest.raises(DataFileError) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert info.value.path == str(path)
    return str(info.value)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("type_code", sorted(IDX_DTYPES), ids=lambda code: f"0x{code:02X}")
def test_round_trip_of_every_type_code(tmp_path, type_code, compress):
    dtype = IDX_DTYPES[type_code].newbyteorder("=")
    expected = (np.arange(2 * 3 * 5) - 7).astype(dtype).reshape(2, 3, 5)
    array = read_idx(write_file(tmp_path / "data", idx_bytes(expected), compress))
    assert array.dtype == dtype and array.dtype.isnative
    assert array.shape == (2, 3, 5)
    np.testing.assert_array_equal(array, expected)


@pytest.mark.parametrize("shape", [(7,), (2, 3), (2, 3, 4), (1, 2, 3, 4), (0, 28, 28)])
def test_one_to_four_dimensions_and_empty_arrays(tmp_path, shape):
    expected = np.arange(int(np.prod(shape)), dtype=np.uint8).reshape(shape)
    path = write_file(tmp_path / "data", idx_bytes(expected), compress=False)
    np.testing.assert_array_equal(read_idx(path), expected)


def test_compression_is_detected_from_content_not_name(tmp_path):
    expected = np.arange(12, dtype=np.int32).reshape(3, 4)
    gz_named_raw = write_file(tmp_path / "looks-compressed.gz", idx_bytes(expected), compress=False)
    raw_named_gz = write_file(tmp_path / "looks-raw-ubyte", idx_bytes(expected), compress=True)
    np.testing.assert_array_equal(read_idx(gz_named_raw), expected)
    np.testing.assert_array_equal(read_idx(raw_named_gz), expected)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_content_hash_covers_the_decompressed_bytes(tmp_path, compress):
    content = idx_bytes(np.arange(100, dtype=np.uint8))
    content_hash = hashlib.md5()
    read_idx(write_file(tmp_path / "data", content, compress), content_hash)
    assert content_hash.hexdigest() == hashlib.md5(content).hexdigest()


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_wrong_magic(tmp_path, compress):
    content = b"\x00\x01" + idx_bytes(np.zeros(4, np.uint8))[2:]
    message = read_error(write_file(tmp_path / "data", content, compress))
    assert "magic" in message and "00 00" in message and "00 01" in message


def test_unknown_type_code(tmp_path):
    message = read_error(write_file(tmp_path / "data", idx_header(0x0A, (4,)) + bytes(4), False))
    assert "type code" in message and "0x0A" in message and "0x08" in message


@pytest.mark.parametrize("ndim", [0, 5, 255])
def test_dimension_count_out_of_range(tmp_path, ndim):
    content = idx_header(0x08, (1,) * ndim) + b"\x00"
    message = read_error(write_file(tmp_path / "data", content, False))
    assert "dimension" in message and "1 to 4" in message and f"found {ndim}" in message


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("extra_bytes", [-1, 1, 100])
def test_data_size_must_match_the_header(tmp_path, compress, extra_bytes):
    content = idx_bytes(np.zeros((3, 4), np.int16))  # 24 data bytes
    content = content[:extra_bytes] if extra_bytes < 0 else content + bytes(extra_bytes)
    message = read_error(write_file(tmp_path / "data", content, compress))
    assert "(3, 4)" in message and "int16" in message and "24 bytes" in message
    found = "more than 24" if compress and extra_bytes > 0 else f"found {24 + extra_bytes}"
    assert found in message


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_every_truncation_of_a_valid_file_is_a_data_file_error(tmp_path, compress):
    content = idx_bytes(np.arange(30, dtype=np.float32).reshape(5, 6))
    full = gzip.compress(content) if compress else content
    path = tmp_path / "data"
    for length in range(len(full)):
        path.write_bytes(full[:length])
        read_error(path)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_absurd_declared_size_fails_fast_without_allocating(tmp_path, compress):
    # 2**31 images of 28x28 declared (1.7 TB), 100 bytes present
    content = idx_header(0x08, (2**31, 28, 28)) + bytes(100 - 16)
    path = write_file(tmp_path / "data", content, compress)
    tracemalloc.start()
    try:
        message = read_error(path)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(2**31 * 28 * 28) in message and "found 84" in message
    assert peak_bytes < 2 * MiB  # at most one 1 MiB read chunk


def test_gzip_bomb_is_not_decompressed_past_the_declared_size(tmp_path):
    bomb = gzip.compress(idx_header(0x08, (10,)) + bytes(64 * MiB))  # 10 bytes declared, 64 MiB in
    path = write_file(tmp_path / "bomb", bomb, compress=False)
    tracemalloc.start()
    try:
        message = read_error(path)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "more than 10" in message
    assert peak_bytes < 4 * MiB


def test_corrupt_gzip_stream(tmp_path):
    compressed = bytearray(gzip.compress(idx_bytes(np.arange(5000, dtype=np.int32))))
    compressed[len(compressed) // 2] ^= 0xFF
    message = read_error(write_file(tmp_path / "data", bytes(compressed), compress=False))
    assert "gzip" in message


def test_gzip_checksum_trailer_mismatch(tmp_path):
    compressed = bytearray(gzip.compress(idx_bytes(np.arange(50, dtype=np.uint8))))
    compressed[-8] ^= 0xFF  # the CRC32 of the trailer
    message = read_error(write_file(tmp_path / "data", bytes(compressed), compress=False))
    assert "gzip" in message and "CRC" in message


def test_truncated_gzip_stream_names_gzip(tmp_path):
    compressed = gzip.compress(idx_bytes(np.arange(5000, dtype=np.int32)))
    truncated = compressed[: len(compressed) // 2]
    message = read_error(write_file(tmp_path / "data", truncated, compress=False))
    assert "gzip" in message and "truncated" in message


def test_data_file_error_is_a_value_error_and_missing_file_is_not_one(tmp_path):
    assert issubclass(DataFileError, ValueError)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "absent")
