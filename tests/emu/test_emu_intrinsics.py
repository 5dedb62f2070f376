"""CUDA built-ins of the emulator header against NumPy models of their definitions."""
import numpy as np
import pytest

from dlcore import emu


def lanes_model(op, values, arg, width):
    """Expected __shfl_*_sync result per thread: CUDA's definition, in NumPy."""
    out = np.empty_like(values)
    for t in range(values.size):
        warp0, lane = t // 32 * 32, t % 32
        base = lane // width * width
        if op == "idx":
            src = base + (arg & (width - 1))
        elif op == "up":
            src = lane - arg if lane - base >= arg else lane
        elif op == "down":
            src = lane + arg if lane - base + arg < width else lane
        else:
            src = lane ^ arg if (lane ^ arg) < base + width else lane
        out[t] = values[warp0 + src]
    return out


@pytest.mark.parametrize("width", [32, 16, 8])
def test_warp_shuffles(intrinsics, width):
    n = 64
    values = np.arange(100, 100 + n, dtype=np.int32)
    out = np.zeros(4 * n, np.int32)
    intrinsics.get_function("warp_shuffles")((1,), (n,), (values, out, np.int32(width)))
    for row, (op, arg) in enumerate([("idx", 3), ("up", 2), ("down", 5), ("xor", 6)]):
        np.testing.assert_array_equal(out[row * n : (row + 1) * n], lanes_model(op, values, arg, width), err_msg=op)


def test_shuffle_moves_64_bit_values(intrinsics):
    values = np.linspace(-1, 1, 64) + 1e-12
    out = np.zeros(64)
    intrinsics.get_function("shuffle_doubles")((2,), (32,), (values, out))
    np.testing.assert_array_equal(out, values.reshape(-1, 2)[:, ::-1].ravel())


def test_warp_votes_and_reductions(intrinsics):
    n = 64
    predicate = np.zeros(n, np.int32)
    predicate[[0, 3, 31]] = 1  # warp 0: some lanes; warp 1: every lane
    predicate[32:] = np.arange(1, 33)
    out = np.zeros(6 * n, np.uint32)
    intrinsics.get_function("warp_votes")((1,), (n,), (predicate, out))
    rows = out.reshape(6, 2, 32)
    assert (rows[0, 0] == (1 | 1 << 3 | 1 << 31)).all() and (rows[0, 1] == 0xFFFFFFFF).all()
    assert (rows[1] == 1).all()
    assert (rows[2, 0] == 0).all() and (rows[2, 1] == 1).all()
    assert (rows[3, 0] == 3).all() and (rows[3, 1] == sum(range(1, 33))).all()
    assert (rows[4, 0].view(np.int32) == -5).all() and (rows[4, 1].view(np.int32) == -4).all()
    assert (rows[5, 0] == 1).all() and (rows[5, 1] == 32).all()


def test_block_votes(intrinsics):
    predicate = np.array([1] * 40 + [0] * 8, np.int32)
    out = np.zeros((48, 3), np.int32)
    intrinsics.get_function("block_votes")((1,), (48,), (predicate, out))
    assert (out == [40, 0, 1]).all()


def test_atomics(intrinsics):
    blocks, threads = 4, 64
    total = blocks * threads
    ints = np.array([0, 0, -(10**6), 10**6, -1, 0], np.int32)
    uints = np.array([0, 0, 0, 0xFFFFFFFF, 0], np.uint32)
    ulls = np.zeros(1, np.uint64)
    floats = np.zeros(2, np.float32)
    doubles = np.zeros(1, np.float64)
    with emu.configured(workers=2):
        intrinsics.get_function("atomics")((blocks,), (threads,), (ints, uints, ulls, floats, doubles))
    assert ints.tolist()[:4] == [total, -2 * total, total - 1, -(total - 1)]
    assert ints[5] == 1 and 0 <= ints[4] < total
    assert uints.tolist() == [3 * total, total % 10, 0xFFFFFFFF, 0xFFFF0000, 0]
    assert ulls[0] == total << 33
    assert floats.tolist() == [0.5 * total, 7.0] and doubles[0] == 0.25 * total


def test_integer_intrinsics(intrinsics):
    x = np.array([0, 1, 2, 0x80000000, 0xFFFFFFFF, 12345, 0x0F0F0000, 7 << 20], np.uint32)
    n = x.size
    out = np.zeros(9 * n, np.uint32)
    intrinsics.get_function("integer_intrinsics")((1,), (32,), (x, out, np.int32(n)))
    rows = out.reshape(9, n).astype(np.int64)
    values = [int(v) for v in x]
    assert rows[0].tolist() == [bin(v).count("1") for v in values]
    assert rows[1].tolist() == [32 - v.bit_length() for v in values]
    assert rows[2].tolist() == [(v & -v).bit_length() for v in values]
    assert rows[3].tolist() == [int(f"{v:032b}"[::-1], 2) for v in values]
    assert rows[4].tolist() == [(v * 0x9E3779B9) >> 32 for v in values]
    assert rows[5].tolist() == [(v & 0xFFF) * 1000 for v in values]
    assert rows[6].tolist() == values
    assert rows[7].tolist() == [v ^ 1 for v in values]
    assert rows[8].tolist() == [min(v, 1000) + max(v & 7, 3) for v in values]


def test_float_math(intrinsics):
    x = np.linspace(-4, 4, 50, dtype=np.float32)
    n = x.size
    out = np.zeros(14 * n, np.float32)
    intrinsics.get_function("float_math")((1,), (64,), (x, out, np.int32(n)))
    rows = out.reshape(14, n)
    a = np.abs(x) + np.float32(0.5)
    expected = [
        np.exp(x), np.log(a), np.sqrt(a), 1 / np.sqrt(a), np.tanh(x), a**1.5,
        np.maximum(x, 0) + np.minimum(x, 0), np.floor(x) + np.ceil(x),
        np.exp(x) + np.log(a), x / a, (x * a + 1) + 2 * x + (x + 1),
        np.exp(x.astype(np.float64)) + np.log(a) + np.sqrt(a) + np.tanh(x),
        np.maximum(x, 0.25) + np.minimum(x, -0.25),
    ]  # fmt: skip
    for row, want in enumerate(expected):
        np.testing.assert_allclose(rows[row], want, rtol=2e-6, atol=1e-6, err_msg=f"row {row}")
    assert np.isposinf(rows[13][x > 0]).all() and np.isnan(rows[13][x <= 0]).all()


def test_vector_types_take_arrays_of_their_element_type(intrinsics):
    x = np.arange(40, dtype=np.float32)
    y = np.zeros(40, np.float32)
    intrinsics.get_function("swap_float4")((1,), (32,), (x, y, np.int32(10)))
    np.testing.assert_array_equal(y, x.reshape(10, 4)[:, ::-1].ravel())
