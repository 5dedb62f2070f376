"""ops/scratch.py: one reused buffer per role, arrays recycled once their owner is dropped,
the per-thread byte count, and the memory a Winograd training step keeps there.

The buffers are per-thread module state: every check runs in a fresh thread, which starts
with none, so the results do not depend on what ran before in this process."""

import threading

import numpy as np
import pytest

from dlcore.ops import conv2d_backward, conv2d_forward, scratch, winograd
from dlcore.ops.conv import use_cpu_conv_algorithm


def in_fresh_thread(function, *args):
    """function(*args) in a new thread (fresh scratch state); its result, or its exception."""
    results, errors = [], []

    def target():
        try:
            results.append(function(*args))
        except BaseException as error:  # re-raised in the test's thread
            errors.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


class Owner:
    """Something to hang reusable arrays on, like a forward pass's cache."""

    def __init__(self, arrays):
        self.arrays = arrays
        scratch.recycle_when_dropped(self, arrays)


# ---------------------------------------------------------------- take


def test_take_gives_the_shape_and_dtype_asked_over_one_buffer_per_role():
    def check():
        assert scratch.held_bytes() == 0
        first = scratch.take("test.a", (3, 4), np.float64)
        assert first.shape == (3, 4) and first.dtype == np.float64 and first.flags.c_contiguous
        assert scratch.held_bytes() == 96
        smaller = scratch.take("test.a", (2, 5), np.float32)  # 40 bytes: the same buffer
        assert smaller.shape == (2, 5) and smaller.dtype == np.float32 and smaller.flags.c_contiguous
        assert np.shares_memory(smaller, first)
        assert scratch.take("test.a", (4, 3, 2), np.float32).ctypes.data == first.ctypes.data  # 96 bytes
        assert scratch.held_bytes() == 96

        bigger = scratch.take("test.a", (10, 10), np.float64)  # 800 bytes: the buffer grows
        assert bigger.shape == (10, 10) and not np.shares_memory(bigger, first)
        assert scratch.held_bytes() == 800
        again = scratch.take("test.a", (3, 4), np.float64)  # and stays grown
        assert np.shares_memory(again, bigger)
        assert scratch.held_bytes() == 800

        empty = scratch.take("test.a", (0, 7), np.float32)
        assert empty.shape == (0, 7) and empty.dtype == np.float32

    in_fresh_thread(check)


def test_roles_do_not_alias():
    def check():
        a = scratch.take("test.a", (64,), np.float64)
        b = scratch.take("test.b", (64,), np.float64)
        c = scratch.take("test.c", (8, 8), np.float32)
        a[...], b[...], c[...] = 1, 2, 3
        assert not np.shares_memory(a, b) and not np.shares_memory(a, c) and not np.shares_memory(b, c)
        assert (a == 1).all() and (b == 2).all() and (c == 3).all()
        assert scratch.held_bytes() == 2 * 512 + 256

    in_fresh_thread(check)


def test_buffers_are_per_thread():
    def take():
        return scratch.held_bytes(), scratch.take("test.per_thread", (16,), np.float64)

    (held_first, first), (held_second, second) = in_fresh_thread(take), in_fresh_thread(take)
    assert held_first == held_second == 0  # a new thread holds nothing
    assert not np.shares_memory(first, second)


# ---------------------------------------------------------------- reusable and recycling


def test_reusable_arrays_are_recycled_when_their_owner_is_dropped():
    def check():
        first = scratch.reusable((4, 5), np.float64)
        assert first.shape == (4, 5) and first.dtype == np.float64 and first.flags.c_contiguous
        owner = Owner([first])
        assert not np.shares_memory(scratch.reusable((4, 5), np.float64), first)  # owner alive: fresh
        assert scratch.held_bytes() == 0
        del owner
        assert scratch.held_bytes() == 160  # recycled

        assert not np.shares_memory(scratch.reusable((3, 5), np.float64), first)  # another size: fresh
        assert scratch.held_bytes() == 160
        again = scratch.reusable((10, 4), np.float32)  # 160 bytes in another shape and dtype
        assert again.shape == (10, 4) and again.dtype == np.float32 and again.flags.c_contiguous
        assert np.shares_memory(again, first)
        assert scratch.held_bytes() == 0  # handed out: no longer held
        assert not np.shares_memory(scratch.reusable((4, 5), np.float64), first)  # each one once

    in_fresh_thread(check)


def test_recycling_keeps_at_most_recycled_bytes(monkeypatch):
    monkeypatch.setattr(scratch, "RECYCLED_BYTES", 240)

    def check():
        arrays = [scratch.reusable(shape, np.float64) for shape in ((20,), (20,), (10,), (30,))]  # 160, 160, 80, 240
        owner = Owner(arrays)
        del owner
        assert scratch.held_bytes() == 240  # 160 + 80 fill it exactly; the second 160 and the 240 would pass it
        assert np.shares_memory(scratch.reusable((20,), np.float64), arrays[0])
        assert not np.shares_memory(scratch.reusable((20,), np.float64), arrays[1])
        assert np.shares_memory(scratch.reusable((10,), np.float64), arrays[2])
        assert not np.shares_memory(scratch.reusable((30,), np.float64), arrays[3])
        assert scratch.held_bytes() == 0

    in_fresh_thread(check)


def test_held_bytes_counts_role_buffers_and_recycled_arrays():
    def check():
        scratch.take("test.a", (100,), np.float64)
        scratch.take("test.b", (10,), np.float32)
        owner = Owner([scratch.reusable((7,), np.float64), scratch.reusable((3,), np.float32)])
        assert scratch.held_bytes() == 800 + 40
        del owner
        assert scratch.held_bytes() == 800 + 40 + 56 + 12

    in_fresh_thread(check)


# ---------------------------------------------------------------- a Winograd training step


def training_step(batch, channels=32, kernels=64, size=14, kernel=5, dtype=np.float32):
    """A Winograd forward and backward pass of the notes' conv2 shape (N, 32, 14, 14) x
    (64, 32, 5, 5), 'same', ReLU; returns the cache, still alive."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, channels, size, size)).astype(dtype)
    w = rng.standard_normal((kernels, channels, kernel, kernel)).astype(dtype)
    with use_cpu_conv_algorithm("winograd"):
        out, cache = conv2d_forward(x, w, None, 1, "same", "relu")
        conv2d_backward(np.ones_like(out), cache)
    assert isinstance(cache, winograd.WinogradCache)
    return cache


def chunk_bound(cache):
    """What the role buffers of a forward and backward pass hold at most, from CHUNK_BYTES:
    a chunk's largest Winograd-domain array (a*a, max(C, K), P) stays under CHUNK_BYTES
    (while one tile row of one image fits), and so do its patches (a, a, C, P), products
    (a*a, K, P), domain gradient (a*a, C, P) and half-transformed arrays; its output tiles
    (4, 4, K, P) are smaller. Besides: the weights' gradient (a*a, K, C) and the zero-padded
    input of a chunk's images, (C, Hp, Wp, images)."""
    kernels, channels = cache.w.shape[:2]
    a, itemsize = cache.tiles.patch, cache.w.itemsize
    images = max(chunk.images.stop - chunk.images.start for chunk in cache.chunks)
    padded = channels * int(np.prod(cache.tiles.padded_size)) * images * itemsize
    return 5 * winograd.CHUNK_BYTES + a * a * kernels * channels * itemsize + padded


def test_winograd_chunks_stay_under_chunk_bytes():
    """The notes' conv2 (float32, the default CHUNK_BYTES) on a batch of twice what fits one
    chunk: every chunk's largest array under CHUNK_BYTES, and the role buffers under the
    chunk bound."""
    per_image = 8 * 8 * 64 * 4 * 4 * 4  # (a*a, K, 4x4 tiles) float32

    def check():
        cache = training_step(2 * winograd.CHUNK_BYTES // per_image)
        a, (kernels, channels) = cache.tiles.patch, cache.w.shape[:2]
        for chunk in cache.chunks:
            positions = chunk.tiles.positions * (chunk.images.stop - chunk.images.start)
            assert a * a * max(channels, kernels) * positions * cache.w.itemsize <= winograd.CHUNK_BYTES
        assert len(cache.chunks) > 1
        assert scratch.held_bytes() <= chunk_bound(cache)

    in_fresh_thread(check)


def held_after_step(batch):
    """A training step in a fresh thread: held_bytes() while its cache is alive (so nothing is
    recycled yet: role buffers only), chunk_bound and the cache's chunks. The cache is
    dropped in that thread, so nothing is recycled into this one."""

    def run():
        cache = training_step(batch, channels=8, kernels=16, size=12)
        return scratch.held_bytes(), chunk_bound(cache), cache.chunks

    return in_fresh_thread(run)


@pytest.fixture
def small_chunks(monkeypatch):
    """(N, 8, 12, 12) x (16, 8, 5, 5) float32: 3 x 3 tiles of 8x8 patches, a chunk's largest
    array (64, 16, P) takes 4096 bytes a tile, 12288 a tile row of one image. Chunks of 4
    images' rows: batches 8 and 64 both cut into chunks of the same size."""
    monkeypatch.setattr(winograd, "CHUNK_BYTES", 4 * 12288)


def test_winograd_scratch_does_not_grow_with_the_batch(small_chunks):
    """Batch 8 and batch 64 run chunks of the same size, forward and backward: they hold the
    same role buffers, within the chunk bound."""
    held_8, _, chunks_8 = held_after_step(8)
    held_64, bound_64, chunks_64 = held_after_step(64)
    for chunks, batch in ((chunks_8, 8), (chunks_64, 64)):
        assert {chunk.images.stop - chunk.images.start for chunk in chunks} == {4}
        assert len(chunks) == batch // 4 * 3
    assert held_64 == held_8
    assert held_64 <= bound_64


def test_winograd_training_steps_reuse_the_previous_steps_arrays():
    """Once a step's cache is dropped, the next step's forward pass refills its Winograd-domain
    arrays: from the second step on, nothing new is held."""

    def check():
        cache = training_step(16)
        first = list(cache.v)
        held = scratch.held_bytes()  # role buffers only: the cache is alive
        cache_bytes = sum(array.nbytes for array in first)
        del cache
        assert scratch.held_bytes() == held + cache_bytes
        cache = training_step(16)
        assert all(any(np.shares_memory(array, old) for old in first) for array in cache.v)
        assert scratch.held_bytes() == held
        del cache
        assert scratch.held_bytes() == held + cache_bytes

    in_fresh_thread(check)


def test_inference_keeps_nothing_for_recycling():
    def check():
        rng = np.random.default_rng(0)
        x, w = rng.standard_normal((4, 8, 12, 12)), rng.standard_normal((16, 8, 3, 3))
        with use_cpu_conv_algorithm("winograd"):
            conv2d_forward(x, w, None, 1, "same", need_backward=False)
            held = scratch.held_bytes()
            conv2d_forward(x, w, None, 1, "same", need_backward=False)
        assert held > 0 and scratch.held_bytes() == held

    in_fresh_thread(check)
