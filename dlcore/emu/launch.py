"""Load a compiled kernel library and launch its kernels the way CuPy does.

    module = build_module(path)                       # dlcore.emu.build_module
    kernel = module.get_function("relu_forward")
    kernel((blocks,), (256,), (x, y, np.int32(n)), shared_mem=0)

Everything a GPU would refuse, or that would pass garbage to the kernel, is caught here before the
kernel runs: pointer parameters take C-contiguous NumPy arrays whose dtype matches the pointee
(`const float*` takes float32), scalar parameters take NumPy scalars of exactly the C type
(np.int32 for int; CuPy would silently turn a Python int into a long long), and launch sizes
are checked against the limits of a CUDA block and grid.
"""
from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass

import numpy as np

from dlcore.emu.build import Library
from dlcore.emu.errors import KernelError, LaunchError
from dlcore.emu.options import ORDERS, Options, options

__all__ = ["Kernel", "Module", "Parameter", "MAX_BLOCK", "MAX_GRID", "MAX_THREADS_PER_BLOCK", "SHARED_MEMORY_LIMIT"]

MAX_THREADS_PER_BLOCK = 1024
MAX_BLOCK = (1024, 1024, 64)
MAX_GRID = (2**31 - 1, 65535, 65535)
SHARED_MEMORY_LIMIT = 48 * 1024  # static + dynamic bytes per block without an opt-in

_SCALAR_TYPES = {  # C type -> (NumPy dtype, ctypes type)
    "bool": (np.bool_, ctypes.c_bool),
    "char": (np.int8, ctypes.c_int8),
    "signed char": (np.int8, ctypes.c_int8),
    "unsigned char": (np.uint8, ctypes.c_uint8),
    "short": (np.int16, ctypes.c_int16),
    "unsigned short": (np.uint16, ctypes.c_uint16),
    "int": (np.int32, ctypes.c_int32),
    "unsigned int": (np.uint32, ctypes.c_uint32),
    "long": (np.int64, ctypes.c_int64),
    "unsigned long": (np.uint64, ctypes.c_uint64),
    "long long": (np.int64, ctypes.c_int64),
    "unsigned long long": (np.uint64, ctypes.c_uint64),
    "float": (np.float32, ctypes.c_float),
    "double": (np.float64, ctypes.c_double),
}
_VECTOR_ELEMENTS = {
    "float2": np.float32, "float3": np.float32, "float4": np.float32,
    "int2": np.int32, "int3": np.int32, "int4": np.int32,
    "uint2": np.uint32, "uint3": np.uint32, "uint4": np.uint32,
    "double2": np.float64,
}
_ERROR_CODES = {1: KernelError, 2: LaunchError}


@dataclass(frozen=True)
class Parameter:
    """A kernel parameter: its C type, whether it is a pointer, and the dtype it takes
    (the pointee's for pointers; None for void* and pointers to other structs)."""

    c_type: str
    is_pointer: bool
    dtype: np.dtype | None
    ctype: type | None = None  # ctypes type of a scalar

    @classmethod
    def parse(cls, c_type: str) -> "Parameter":
        if c_type.endswith("*"):
            element = c_type[:-1].removeprefix("const ")
            if element in _SCALAR_TYPES:
                return cls(c_type, True, np.dtype(_SCALAR_TYPES[element][0]))
            if element in _VECTOR_ELEMENTS:
                return cls(c_type, True, np.dtype(_VECTOR_ELEMENTS[element]))
            return cls(c_type, True, None)
        dtype, ctype = _SCALAR_TYPES[c_type]
        return cls(c_type, False, np.dtype(dtype), ctype)


class _LaunchOptions(ctypes.Structure):  # mirrors dlcore_emu::Options in cuda_emu.h
    _fields_ = [("order", ctypes.c_int), ("workers", ctypes.c_int), ("seed", ctypes.c_uint64)]


@functools.lru_cache(maxsize=16)
def _launch_options(settings: Options) -> _LaunchOptions:
    return _LaunchOptions(ORDERS.index(settings.order), settings.effective_workers, settings.seed)


_libraries: dict[str, ctypes.CDLL] = {}


def _load(path: str) -> ctypes.CDLL:
    if path not in _libraries:
        lib = ctypes.CDLL(path)
        lib.dlcore_emu_kernel_count.restype = ctypes.c_int
        lib.dlcore_emu_kernel_name.restype = ctypes.c_char_p
        lib.dlcore_emu_kernel_name.argtypes = [ctypes.c_int]
        lib.dlcore_emu_kernel_signature.restype = ctypes.c_char_p
        lib.dlcore_emu_kernel_signature.argtypes = [ctypes.c_int]
        lib.dlcore_emu_launch.restype = ctypes.c_int
        lib.dlcore_emu_launch.argtypes = [
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_size_t,
            ctypes.c_size_t,
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.POINTER(_LaunchOptions),
            ctypes.POINTER(ctypes.c_size_t),
            ctypes.c_char_p,
            ctypes.c_size_t,
        ]
        _libraries[path] = lib
    return _libraries[path]


class Module:
    """The kernels of one compiled .cu file (like cupy.RawModule)."""

    def __init__(self, library: Library):
        self.source = library.source
        self.library_path = library.path
        self.sanitized = library.sanitized
        self.compiled = library.compiled  # whether building this module ran the compiler
        self._lib = _load(str(library.path))
        count = self._lib.dlcore_emu_kernel_count()
        self._index = {self._lib.dlcore_emu_kernel_name(i).decode(): i for i in range(count)}
        self._kernels: dict[str, Kernel] = {}

    @property
    def kernel_names(self) -> tuple[str, ...]:
        return tuple(self._index)

    def get_function(self, name: str) -> "Kernel":
        if name not in self._kernels:
            if name not in self._index:
                raise LookupError(
                    f"{self.source.name} has no kernel {name!r}; it exports {', '.join(self._index) or 'none'} "
                    "(templates need name_expressions)"
                )
            self._kernels[name] = Kernel(self, name, self._index[name])
        return self._kernels[name]

    def __repr__(self):
        return f"<dlcore.emu.Module {self.source.name}: {', '.join(self._index)}>"


class Kernel:
    """A launchable kernel: `kernel(grid, block, args, shared_mem=0)`, as cupy.RawKernel."""

    def __init__(self, module: Module, name: str, index: int):
        self.module = module
        self.name = name
        self._index = index
        types = module._lib.dlcore_emu_kernel_signature(index).decode().split(";")[:-1]
        for position, c_type in enumerate(types):
            if c_type == "?":
                raise TypeError(
                    f"kernel {name!r} parameter {position} has a type the emulator cannot pass "
                    "(a struct by value or a pointer to a pointer); use pointers to scalars or vectors"
                )
        self.parameters = tuple(Parameter.parse(t) for t in types)
        self._static_shared = 0  # largest static shared memory a block used, seen at launches

    def __repr__(self):
        return f"<dlcore.emu.Kernel {self.name}({', '.join(p.c_type for p in self.parameters)})>"

    def __call__(self, grid, block, args, shared_mem=0):
        grid = _dims(grid, "grid", self.name)
        block = _dims(block, "block", self.name)
        self._check_launch(grid, block, shared_mem)
        values = self._pack(args)
        pointers = (ctypes.c_void_p * max(1, len(values)))(*[ctypes.addressof(v) for v in values])
        dims = (ctypes.c_uint * 6)(*grid, *block)
        static_shared = ctypes.c_size_t(0)
        error = ctypes.create_string_buffer(4096)
        code = self.module._lib.dlcore_emu_launch(
            self._index, dims, shared_mem, SHARED_MEMORY_LIMIT, pointers,
            ctypes.byref(_launch_options(options())), ctypes.byref(static_shared), error, len(error),
        )  # fmt: skip
        self._static_shared = max(self._static_shared, static_shared.value)
        if code:
            raise _ERROR_CODES[code](error.value.decode(errors="replace"))

    def _check_launch(self, grid, block, shared_mem) -> None:
        where = f"kernel {self.name!r}"
        threads = block[0] * block[1] * block[2]
        if threads > MAX_THREADS_PER_BLOCK:
            raise LaunchError(
                f"{where}: block {block} has {threads} threads, more than the {MAX_THREADS_PER_BLOCK} a block can have"
            )
        for axis, size, limit in zip("xyz", block, MAX_BLOCK):
            if not 1 <= size <= limit:
                raise LaunchError(f"{where}: block.{axis} = {size} is outside 1..{limit}")
        for axis, size, limit in zip("xyz", grid, MAX_GRID):
            if not 1 <= size <= limit:
                raise LaunchError(f"{where}: grid.{axis} = {size} is outside 1..{limit}")
        if isinstance(shared_mem, bool) or not isinstance(shared_mem, (int, np.integer)) or shared_mem < 0:
            raise TypeError(f"{where}: shared_mem must be a non-negative int (bytes), not {shared_mem!r}")
        total = self._static_shared + int(shared_mem)
        if total > SHARED_MEMORY_LIMIT:
            static = f"{self._static_shared} bytes of static and " if self._static_shared else ""
            raise LaunchError(
                f"{where}: {static}{int(shared_mem)} bytes of dynamic shared memory, {total} in all, "
                f"is over the {SHARED_MEMORY_LIMIT}-byte limit of a block"
            )

    def _pack(self, args) -> list:
        where = f"kernel {self.name!r}"
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"{where}: args must be a tuple of arguments, not {type(args).__name__}")
        if len(args) != len(self.parameters):
            signature = ", ".join(p.c_type for p in self.parameters)
            raise TypeError(f"{where} takes {len(self.parameters)} arguments ({signature}), got {len(args)}")
        values = []
        for position, (parameter, arg) in enumerate(zip(self.parameters, args)):
            at = f"{where} args[{position}] ({parameter.c_type})"
            if parameter.is_pointer:
                if not isinstance(arg, np.ndarray):
                    raise TypeError(f"{at}: expected a NumPy array, got {_describe(arg)}")
                if not arg.flags.c_contiguous:
                    raise TypeError(f"{at}: the array must be C-contiguous (use np.ascontiguousarray)")
                if parameter.dtype is not None and arg.dtype != parameter.dtype:
                    raise TypeError(f"{at}: expected an array of {parameter.dtype}, got {arg.dtype}")
                values.append(ctypes.c_void_p(arg.ctypes.data))
            else:
                if not (isinstance(arg, np.generic) and arg.dtype == parameter.dtype):
                    raise TypeError(f"{at}: expected numpy.{parameter.dtype}, got {_describe(arg)}")
                values.append(parameter.ctype(arg.item()))
        return values


def _describe(value) -> str:
    if isinstance(value, np.generic):
        return f"numpy.{value.dtype}"
    if isinstance(value, np.ndarray):
        return f"a NumPy array of {value.dtype}"
    return f"Python {type(value).__name__}"


def _dims(value, what: str, kernel: str) -> tuple[int, int, int]:
    """(x, y, z) of a grid or block given as an int or a tuple of 1 to 3 ints."""
    items = value if isinstance(value, (tuple, list)) else (value,)
    if not 1 <= len(items) <= 3 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in items):
        raise TypeError(f"kernel {kernel!r}: {what} must be an int or a tuple of 1 to 3 ints, not {value!r}")
    return tuple(int(v) for v in items) + (1,) * (3 - len(items))
