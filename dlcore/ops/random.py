"""Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11; Random123).

Pure uint32/uint64 array arithmetic, so that a CUDA kernel computes bit-identical
numbers from the same (seed, index): element i of a stream needs no state, only
  counter = ((offset + i) >> 2 low 32 bits, (offset + i) >> 34, 0, 0)
  key     = (seed & 0xffffffff, seed >> 32)
  word    = (offset + i) & 3 of philox4x32(counter, key)
  u       = (word >> 8) * 2**-24    (float32 in [0, 1), exact)
"""

from __future__ import annotations

import operator

import numpy

PHILOX_M0, PHILOX_M1 = 0xD2511F53, 0xCD9E8D57  # round multipliers
PHILOX_W0, PHILOX_W1 = 0x9E3779B9, 0xBB67AE85  # key schedule increments (golden ratio, sqrt(3) - 1)
PHILOX_ROUNDS = 10
_LOW32 = 0xFFFFFFFF


def philox4x32(counter, key):
    """Philox4x32-10 of every column: counter (4, n) uint32, key (2,) uint32 -> (4, n) uint32.

    One round, with (hi, lo) the 64-bit product halves:
      hi0:lo0 = M0 * c0,  hi1:lo1 = M1 * c2
      (c0, c1, c2, c3) <- (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
    and the key bumped by (W0, W1) mod 2**32 between rounds."""
    counter, key = numpy.asarray(counter), numpy.asarray(key)
    if counter.dtype != numpy.uint32 or counter.ndim != 2 or counter.shape[0] != 4:
        raise ValueError(
            f"philox4x32: expected counter of shape (4, n) uint32, got shape {counter.shape} {counter.dtype}"
        )
    if key.dtype != numpy.uint32 or key.shape != (2,):
        raise ValueError(f"philox4x32: expected key of shape (2,) uint32, got shape {key.shape} {key.dtype}")
    c0, c1, c2, c3 = counter
    k0, k1 = int(key[0]), int(key[1])
    m0, m1 = numpy.uint64(PHILOX_M0), numpy.uint64(PHILOX_M1)
    for round_index in range(PHILOX_ROUNDS):
        if round_index:
            k0, k1 = (k0 + PHILOX_W0) & _LOW32, (k1 + PHILOX_W1) & _LOW32
        lo0, hi0 = _halves(c0 * m0)  # uint32 views of the 64-bit products
        lo1, hi1 = _halves(c2 * m1)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return numpy.stack([c0, c1, c2, c3])


def _halves(product):
    """uint64 (n,) -> (low, high) 32-bit halves as uint32 views, read from little-endian words."""
    words = product.astype("<u8", copy=False).view("<u4").reshape(-1, 2)  # (n, 2): low, high
    return words[:, 0], words[:, 1]


def uniform(seed: int, n: int, offset: int = 0):
    """Elements offset .. offset + n - 1 of the stream of `seed` (uint64) -> float32 (n,) in [0, 1).

    uniform(seed, n, offset)[i] == uniform(seed, offset + n)[offset + i]."""
    seed, n, offset = operator.index(seed), operator.index(n), operator.index(offset)
    if not 0 <= seed < 2**64:
        raise ValueError(f"uniform: seed must be in [0, 2**64), got {seed}")
    if n < 0 or offset < 0 or offset + n > 2**66:
        raise ValueError(
            f"uniform: need n >= 0, offset >= 0 and offset + n <= 2**66, got n={n}, offset={offset}"
        )
    if n == 0:
        return numpy.empty(0, dtype=numpy.float32)
    first_block, last_block = offset >> 2, (offset + n - 1) >> 2  # 4 words per Philox call
    blocks = numpy.arange(last_block - first_block + 1, dtype=numpy.uint64) + numpy.uint64(first_block)
    zeros = numpy.zeros(blocks.shape, dtype=numpy.uint32)
    counter = numpy.stack(
        [
            (blocks & numpy.uint64(_LOW32)).astype(numpy.uint32),
            (blocks >> numpy.uint64(32)).astype(numpy.uint32),
            zeros,
            zeros,
        ]
    )
    key = numpy.array([seed & _LOW32, seed >> 32], dtype=numpy.uint32)
    words = philox4x32(counter, key).T.reshape(-1)  # word w of block b at 4 * b + w
    start = offset - 4 * first_block
    return (words[start : start + n] >> numpy.uint32(8)).astype(numpy.float32) * numpy.float32(2.0**-24)
