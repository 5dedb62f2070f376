"""Shared pieces of the CUDA launchers in dlcore/ops: kernel lookup by element type,
grid arithmetic, output allocation and exactly typed scalars.

A launcher runs unchanged on the cupy and emu backends: it allocates with the
backend's array module, fetches a kernel with `KernelFile.get(name, dtype)` and calls
it as `kernel(grid, block, args, shared_mem=bytes)`. Scalars must be NumPy scalars of
the kernel's C type (CuPy passes a Python int as long long and a float as double).
"""
from __future__ import annotations

import numpy as np

from dlcore.backend import get_backend, load_module

CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
KERNEL_DTYPES = (np.float32, np.float64)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def ctype(dtype) -> str:
    """The C name of a float dtype: float32 -> 'float', float64 -> 'double'."""
    try:
        return CTYPES[np.dtype(dtype)]
    except KeyError:
        raise TypeError(f"CUDA kernels take float32 or float64 arrays, got {np.dtype(dtype)}") from None


class KernelFile:
    """The kernels of one kernels/*.cu file, each templated over the element type.

    All instantiations are compiled together, once per process, on first use:
        _kernels = KernelFile("activation.cu", ("relu_forward", "relu_backward"))
        _kernels.get("relu_forward", x.dtype)((blocks,), (256,), (x, out, np.int32(n)))
    """

    def __init__(self, filename: str, templates: tuple[str, ...], dtypes=KERNEL_DTYPES):
        self.filename = filename
        self.name_expressions = tuple(f"{t}<{ctype(d)}>" for t in templates for d in dtypes)

    def get(self, name: str, dtype):
        expression = f"{name}<{ctype(dtype)}>"
        if expression not in self.name_expressions:
            raise KeyError(f"{self.filename} declares no kernel {expression}")
        return load_module(self.filename, self.name_expressions).get_function(expression)


_poison_outputs = False


def poison_outputs(enabled: bool) -> None:
    """Fill every array that `empty` returns with NaN, integer arrays with their most negative
    value (tests: an unwritten element shows)."""
    global _poison_outputs
    _poison_outputs = bool(enabled)


def empty(shape, dtype):
    """An output array on the current backend (poisoned while poisoning is on)."""
    out = get_backend().xp.empty(shape, dtype=dtype)
    if _poison_outputs:
        out.fill(np.nan if np.dtype(dtype).kind == "f" else np.iinfo(dtype).min)
    return out


def contiguous(array):
    """A C-contiguous version of `array` (a copy only when needed); kernels index flat memory."""
    return get_backend().xp.ascontiguousarray(array)


def device_pointer(array) -> int:
    """The address of `array`'s first element on the current backend (a CuPy array's device
    address, a NumPy array's host address on emu), for kernels that take tables of pointers.
    The caller keeps `array` alive until the kernel that reads the address has run."""
    if get_backend().name == "cupy":
        return array.data.ptr
    return array.ctypes.data


def i32(value) -> np.int32:
    return np.int32(value)


def scalar(value, dtype):
    """`value` as a NumPy scalar of the kernel's float type."""
    return np.dtype(dtype).type(value)
