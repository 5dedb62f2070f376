"""Philox4x32-10 against Random123's known answers and a scalar Python implementation,
and the uniform stream built on it."""

import numpy as np
import pytest

from dlcore.ops import philox4x32, uniform

# Random123 tests/kat_vectors: philox4x32 10, counter[4] key[2] -> output[4]
KNOWN_ANSWERS = [
    (
        (0x00000000, 0x00000000, 0x00000000, 0x00000000),
        (0x00000000, 0x00000000),
        (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8),
    ),
    (
        (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF),
        (0xFFFFFFFF, 0xFFFFFFFF),
        (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD),
    ),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


def philox_scalar(counter, key):
    """Philox4x32-10 on Python ints, straight from the paper's round function."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for round_index in range(10):
        if round_index:
            k0, k1 = (k0 + 0x9E3779B9) % 2**32, (k1 + 0xBB67AE85) % 2**32
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 % 2**32, (p0 >> 32) ^ c3 ^ k1, p0 % 2**32
    return c0, c1, c2, c3


def uniform_scalar(seed, index):
    """Element `index` of the stream of `seed`, from the documented definition."""
    words = philox_scalar((index >> 2 & 0xFFFFFFFF, index >> 34, 0, 0), (seed & 0xFFFFFFFF, seed >> 32))
    return (words[index & 3] >> 8) * 2.0**-24


@pytest.mark.parametrize("counter, key, expected", KNOWN_ANSWERS)
def test_known_answers(counter, key, expected):
    out = philox4x32(np.array(counter, np.uint32).reshape(4, 1), np.array(key, np.uint32))
    assert out.dtype == np.uint32 and out.shape == (4, 1)
    assert tuple(int(v) for v in out[:, 0]) == expected
    assert philox_scalar(counter, key) == expected


def test_columns_are_independent_and_match_the_scalar_version():
    rng = np.random.default_rng(7)
    counters = rng.integers(0, 2**32, (4, 50), dtype=np.uint32)
    key = rng.integers(0, 2**32, 2, dtype=np.uint32)
    out = philox4x32(counters, key)
    for column in range(counters.shape[1]):
        expected = philox_scalar(tuple(int(v) for v in counters[:, column]), tuple(int(v) for v in key))
        assert tuple(int(v) for v in out[:, column]) == expected


@pytest.mark.parametrize(
    "seed, n, offset",
    [(0, 9, 0), (42, 7, 3), (2**40 + 5, 10, 1), (2**64 - 1, 6, 2**34 - 3), (123, 5, 2**66 - 5)],
)
def test_uniform_matches_its_definition(seed, n, offset):
    values = uniform(seed, n, offset)
    assert values.dtype == np.float32 and values.shape == (n,)
    np.testing.assert_array_equal(values, [uniform_scalar(seed, offset + i) for i in range(n)])


def test_uniform_offsets_address_one_stream():
    stream = uniform(99, 103)
    for offset in (0, 1, 2, 3, 4, 57):
        np.testing.assert_array_equal(uniform(99, 103 - offset, offset), stream[offset:])


def test_uniform_distribution():
    values = uniform(2024, 200_000)
    assert values.min() >= 0 and values.max() < 1
    np.testing.assert_array_equal(values * 2**24, np.floor(values * 2**24))  # multiples of 2**-24
    assert abs(values.mean() - 0.5) < 0.005
    assert abs(values.var() - 1 / 12) < 0.002
    histogram, _ = np.histogram(values, bins=10, range=(0, 1))
    assert np.all(np.abs(histogram - 20_000) < 1_000)
    assert not np.array_equal(uniform(1, 1000), uniform(2, 1000))


def test_uniform_of_nothing():
    assert uniform(5, 0).shape == (0,)


@pytest.mark.parametrize(
    "args, message",
    [
        ((-1, 4), "seed must be in [0, 2**64), got -1"),
        ((2**64, 4), "seed must be in [0, 2**64)"),
        ((1, -2), "n=-2"),
    ],
)
def test_uniform_bad_arguments(args, message):
    with pytest.raises(ValueError) as info:
        uniform(*args)
    assert message in str(info.value)


def test_philox_bad_arguments():
    with pytest.raises(
        ValueError, match=r"expected counter of shape \(4, n\) uint32, got shape \(3, 2\) uint32"
    ):
        philox4x32(np.zeros((3, 2), np.uint32), np.zeros(2, np.uint32))
    with pytest.raises(ValueError, match=r"expected key of shape \(2,\) uint32, got shape \(2,\) int64"):
        philox4x32(np.zeros((4, 2), np.uint32), np.zeros(2, np.int64))
