"""Memory reused from call to call instead of freshly allocated.

A fresh NumPy array of a few MB costs its page faults on first touch (0.06 ms per MB and
more, with stalls when the kernel compacts memory for huge pages): as much as a pass of
arithmetic over it, paid for every large temporary of every layer of every step.

  take(role, ...)     a temporary that lives only inside one op call. Each named role keeps
                      one buffer per thread, grown to the largest request it has seen, so
                      ops that use it bound their temporaries (the Winograd convolution
                      works in chunks). One role must not be taken twice at once.
  reusable(...)       an array that outlives the call (kept in a forward pass's cache),
  recycle_when_dropped(owner, arrays)
                      handed back for reuse once its owner (the cache) is garbage: the
                      next step's forward pass then fills the previous step's arrays.

Outputs handed to the caller never come from here.
"""

from __future__ import annotations

import threading
import weakref

import numpy


RECYCLED_BYTES = 256 << 20  # the most that recycling keeps per thread


class _Buffers(threading.local):
    def __init__(self):
        self.by_role: dict[str, numpy.ndarray] = {}
        self.recycled: dict[int, list[numpy.ndarray]] = {}  # by size in bytes
        self.recycled_bytes = 0


_buffers = _Buffers()


def _nbytes(shape: tuple[int, ...], dtype) -> int:
    return int(numpy.prod(shape, dtype=numpy.int64)) * numpy.dtype(dtype).itemsize


def take(role: str, shape: tuple[int, ...], dtype) -> numpy.ndarray:
    """An uninitialized C-contiguous array of `shape` and `dtype`, over `role`'s buffer."""
    nbytes = _nbytes(shape, dtype)
    buffer = _buffers.by_role.get(role)
    if buffer is None or buffer.nbytes < nbytes:
        buffer = _buffers.by_role[role] = numpy.empty(nbytes, dtype=numpy.uint8)
    return buffer[:nbytes].view(dtype).reshape(shape)


def reusable(shape: tuple[int, ...], dtype) -> numpy.ndarray:
    """An uninitialized C-contiguous array: a recycled one of the same size, else fresh."""
    nbytes = _nbytes(shape, dtype)
    same_size = _buffers.recycled.get(nbytes)
    if not same_size:
        return numpy.empty(shape, dtype=dtype)
    _buffers.recycled_bytes -= nbytes
    return same_size.pop().view(dtype).reshape(shape)


def recycle_when_dropped(owner, arrays) -> None:
    """Recycle `arrays` (from reusable(), reachable only through `owner`) when `owner` is
    garbage-collected."""
    weakref.finalize(owner, _recycle, arrays).atexit = False


def _recycle(arrays) -> None:
    """Keep arrays whose contents are no longer needed for reuse, at most RECYCLED_BYTES."""
    for array in arrays:
        if _buffers.recycled_bytes + array.nbytes <= RECYCLED_BYTES:
            _buffers.recycled.setdefault(array.nbytes, []).append(array.reshape(-1).view(numpy.uint8))
            _buffers.recycled_bytes += array.nbytes


def held_bytes() -> int:
    """Bytes this thread's scratch and recycled arrays hold."""
    return sum(buffer.nbytes for buffer in _buffers.by_role.values()) + _buffers.recycled_bytes
