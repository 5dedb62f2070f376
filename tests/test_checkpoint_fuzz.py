"""Property tests of checkpoint loading: random bytes, truncations, bit flips and hostile
.npy headers end in a CheckpointError within bounded memory, or load exactly the saved
values; nothing is ever unpickled and a failed load leaves the model unchanged.

HYPOTHESIS_PROFILE=fuzz python -m pytest tests/test_checkpoint_fuzz.py   runs a long search.
"""
import io
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dlcore
from dlcore import checkpoint
from dlcore.checkpoint import CheckpointError
from dlcore.layers import Dense, Dropout
from dlcore.optim import Adam
from tests.robustness import tried

MEMORY_BOUND = 32 << 20


def _model():
    dlcore.manual_seed(0)
    return dlcore.Sequential([Dense(6, 5, activation="relu", name="fc1"), Dropout(0.5, name="drop"),
                              Dense(5, 3, name="fc2")])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A valid checkpoint's bytes and the parameters it holds."""
    path = tmp_path_factory.mktemp("ckpt") / "good.npz"
    model = _model()
    checkpoint.save(path, model, Adam(model.parameters()))
    return path.read_bytes(), [p.data.copy() for p in model.parameters()]


def _load(tmp_path_factory, content: bytes):
    """checkpoint.load of `content` into a fresh model: the model, or the CheckpointError."""
    tried("fuzzed files")
    path = tmp_path_factory.mktemp("ckpt") / "fuzzed.npz"
    path.write_bytes(content)
    model = _model()
    before = [p.data.copy() for p in model.parameters()]
    tracemalloc.start()
    try:
        checkpoint.load(path, model)
        return model
    except CheckpointError as error:
        assert str(path) in str(error)
        for p, original in zip(model.parameters(), before):
            np.testing.assert_array_equal(p.data, original)  # a failed load changes nothing
        return error
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < MEMORY_BOUND + 4 * len(content), f"load allocated {peak} bytes"


@given(content=st.binary(max_size=2000))
def test_random_bytes_are_rejected(tmp_path_factory, content):
    assert isinstance(_load(tmp_path_factory, content), CheckpointError)


@given(data=st.data())
def test_truncated_checkpoints_are_rejected(tmp_path_factory, saved, data):
    content, _ = saved
    cut = data.draw(st.integers(0, len(content) - 1), label="kept bytes")
    assert isinstance(_load(tmp_path_factory, content[:cut]), CheckpointError)


@given(data=st.data())
def test_bit_flips_are_rejected_or_harmless(tmp_path_factory, saved, data):
    content, params = saved
    damaged = bytearray(content)
    for _ in range(data.draw(st.integers(1, 4), label="flips")):
        position = data.draw(st.integers(0, len(content) - 1), label="byte")
        damaged[position] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    result = _load(tmp_path_factory, bytes(damaged))
    if not isinstance(result, CheckpointError):  # the flip hit bytes no reader uses
        for p, expected in zip(result.parameters(), params):
            np.testing.assert_array_equal(p.data, expected)


def _npy_header(shape, descr="<f4") -> bytes:
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


@given(shape=st.lists(st.integers(1, 1 << 40), min_size=1, max_size=3).map(tuple),
       payload=st.binary(max_size=64), compress=st.booleans())
def test_hostile_npy_headers_fail_before_allocating(tmp_path_factory, shape, payload, compress):
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", method) as archive:
        archive.writestr("meta/format.npy", _npy_header((), "<i8") + struct.pack("<q", 1))
        archive.writestr("param/fc1.weight.npy", _npy_header(shape) + payload)
    assert isinstance(_load(tmp_path_factory, buffer.getvalue()), CheckpointError)


def test_object_arrays_are_never_unpickled(tmp_path_factory):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("meta/format.npy", _npy_header((), "<i8") + struct.pack("<q", 1))
        archive.writestr("param/fc1.weight.npy", _npy_header((1,), "|O") + b"\x80\x04K\x01.")
    error = _load(tmp_path_factory, buffer.getvalue())
    assert isinstance(error, CheckpointError) and "pickle" in str(error)
