"""The benchmarked ops of the notes' network: their shapes, the work each pass does, and
zero-argument callables that run one pass on dlcore (any backend and kernel version) or on
PyTorch (its CPU kernels, or cuDNN / cuBLAS with TF32 off or on).

Work is counted as the useful floating-point operations (2 per multiply-add) of the
compute-bound ops, and as the least memory traffic of the memory-bound ones (every input
read once, every output written once), so rates compare across implementations.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from dlcore.backend import get_backend, to_backend
from dlcore.ops import batch_norm_backward, batch_norm_forward, max_pool2d_backward, max_pool2d_forward
from dlcore.ops import conv, linear

FLOAT_BYTES = 4  # every benchmark runs in float32
INDEX_BYTES = 4  # max pooling's int32 argmax


@dataclass(frozen=True)
class Pass:
    """One timed pass: `run()` does `work` units ("flop" or "byte") of useful work."""

    name: str
    work: float
    unit: str
    run: Callable[[], object]


def _inputs(seed: int, *shapes) -> list[np.ndarray]:
    """float32 NumPy arrays of N(0, 1) / 10, one per shape."""
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(shape) * 0.1).astype(np.float32) for shape in shapes]


def _on_backend(arrays):
    """The arrays on the current dlcore backend."""
    return [to_backend(array) for array in arrays]


def _on_torch(arrays, device: str):
    """The arrays as torch tensors on `device` ("cpu" or "cuda")."""
    import torch

    return [torch.from_numpy(array).to(device) for array in arrays]


@dataclass(frozen=True)
class ConvWorkload:
    """conv2d with 'same' padding, stride 1, bias and the fused ReLU (the notes' layers)."""

    name: str
    channels: int
    kernels: int
    size: int
    kernel: int = 5
    unit = "flop"

    @property
    def description(self) -> str:
        k = self.kernel
        return f"conv {self.channels}->{self.kernels} {k}x{k} same+ReLU on {self.size}x{self.size}"

    def gemm_flops(self, batch: int) -> float:
        """2 * N*OH*OW * K * C*kh*kw: each of the three passes is one GEMM of this size."""
        return 2.0 * batch * self.size**2 * self.kernels * self.channels * self.kernel**2

    def shapes(self, batch: int):
        x = (batch, self.channels, self.size, self.size)
        w = (self.kernels, self.channels, self.kernel, self.kernel)
        return x, w, (self.kernels,), (batch, self.kernels, self.size, self.size)

    def versions(self, backend: str) -> tuple[str, ...]:
        """GPU kernel versions, or the NumPy path's algorithms (Winograd where it applies)."""
        return conv.CONV_KERNEL_VERSIONS if backend != "numpy" else ("im2col", "winograd")

    def version_context(self, version: str):
        if version in conv.CONV_KERNEL_VERSIONS:
            return conv.use_conv_kernel_version(version)
        return conv.use_cpu_conv_algorithm(version)

    def dlcore_passes(self, batch: int) -> list[Pass]:
        x, w, b, dout = _on_backend(_inputs(0, *self.shapes(batch)))
        flops = self.gemm_flops(batch)
        forward = lambda: conv.conv2d_forward(x, w, b, 1, "same", "relu")  # noqa: E731
        _, cache = forward()
        passes = [Pass("forward", flops, "flop", forward)]
        if get_backend().runs_kernels:
            passes += [
                Pass("backward_data", flops, "flop", lambda: conv.conv2d_backward_data_gpu(dout, cache)),
                Pass("backward_weight", flops, "flop", lambda: conv.conv2d_backward_weight_gpu(dout, cache)),
            ]
        else:
            weight_only = lambda: conv.conv2d_backward(dout, cache, need_input_grad=False)  # noqa: E731
            passes.append(Pass("backward_weight", flops, "flop", weight_only))
        passes.append(Pass("backward", 2 * flops, "flop", lambda: conv.conv2d_backward(dout, cache)))
        return passes

    def torch_passes(self, batch: int, device: str) -> list[Pass]:
        import torch
        import torch.nn.functional as F

        x, w, b, dout = _on_torch(_inputs(0, *self.shapes(batch)), device)
        pad, flops = self.kernel // 2, self.gemm_flops(batch)

        def data():
            return torch.nn.grad.conv2d_input(x.shape, w, dout, padding=pad)

        def weight():
            return torch.nn.grad.conv2d_weight(x, w.shape, dout, padding=pad), dout.sum((0, 2, 3))

        return [
            Pass("forward", flops, "flop", lambda: F.relu(F.conv2d(x, w, b, padding=pad))),
            Pass("backward_data", flops, "flop", data),
            Pass("backward_weight", flops, "flop", weight),
            Pass("backward", 2 * flops, "flop", lambda: (data(), weight())),
        ]


@dataclass(frozen=True)
class DenseWorkload:
    """A dense layer with bias and the fused ReLU (x (N, in) @ w (in, out))."""

    name: str
    features_in: int
    features_out: int
    unit = "flop"

    @property
    def description(self) -> str:
        return f"dense {self.features_in}->{self.features_out} +ReLU"

    def gemm_flops(self, batch: int) -> float:
        return 2.0 * batch * self.features_in * self.features_out

    def shapes(self, batch: int):
        return (batch, self.features_in), (self.features_in, self.features_out), (self.features_out,), (
            batch, self.features_out)  # fmt: skip

    def versions(self, backend: str) -> tuple[str, ...]:
        return {"numpy": ("numpy",), "emu": ("dlcore",)}.get(backend, linear.DENSE_MATMULS)

    def version_context(self, version: str):
        return contextlib.nullcontext() if version == "numpy" else linear.use_dense_matmul(version)

    def dlcore_passes(self, batch: int) -> list[Pass]:
        x, w, b, dout = _on_backend(_inputs(1, *self.shapes(batch)))
        flops = self.gemm_flops(batch)
        forward = lambda: linear.dense_forward(x, w, b, "relu")  # noqa: E731
        _, cache = forward()
        return [
            Pass("forward", flops, "flop", forward),
            Pass("backward", 2 * flops, "flop", lambda: linear.dense_backward(dout, cache)),  # dx and dw
        ]

    def torch_passes(self, batch: int, device: str) -> list[Pass]:
        import torch

        x, w, b, dout = _on_torch(_inputs(1, *self.shapes(batch)), device)
        flops = self.gemm_flops(batch)
        return [
            Pass("forward", flops, "flop", lambda: torch.relu(torch.addmm(b, x, w))),
            Pass("backward", 2 * flops, "flop", lambda: (dout @ w.T, x.T @ dout, dout.sum(0))),
        ]


@dataclass(frozen=True)
class _PlaneWorkload:
    """A memory-bound op on (N, channels, size, size) with one kernel version (v1)."""

    name: str
    channels: int
    size: int
    unit = "byte"
    kind = ""

    @property
    def description(self) -> str:
        return f"{self.kind} on {self.channels}x{self.size}x{self.size}"

    def versions(self, backend: str) -> tuple[str, ...]:
        return ("numpy",) if backend == "numpy" else ("v1",)

    def version_context(self, version: str):
        return contextlib.nullcontext()


@dataclass(frozen=True)
class PoolWorkload(_PlaneWorkload):
    """2 x 2 max pooling, stride 2, 'same' padding (memory-bound)."""

    kind = "max-pool 2x2"

    def dlcore_passes(self, batch: int) -> list[Pass]:
        (x,) = _on_backend(_inputs(2, (batch, self.channels, self.size, self.size)))
        forward = lambda: max_pool2d_forward(x, 2, 2, "same")  # noqa: E731
        out, cache = forward()
        (dout,) = _on_backend(_inputs(3, tuple(out.shape)))
        # forward reads x, writes out and the argmax; backward reads dout and the argmax, writes dx
        moved = x.size * FLOAT_BYTES + out.size * (FLOAT_BYTES + INDEX_BYTES)
        return [
            Pass("forward", moved, "byte", forward),
            Pass("backward", moved, "byte", lambda: max_pool2d_backward(dout, cache)),
        ]

    def torch_passes(self, batch: int, device: str) -> list[Pass]:
        return []


@dataclass(frozen=True)
class NormWorkload(_PlaneWorkload):
    """Training-mode batch normalization over (N, C, H, W) (memory-bound)."""

    kind = "batchnorm"

    def dlcore_passes(self, batch: int) -> list[Pass]:
        x, dout = _on_backend(_inputs(4, *2 * [(batch, self.channels, self.size, self.size)]))
        xp = get_backend().xp
        gamma, beta = xp.ones(self.channels, np.float32), xp.zeros(self.channels, np.float32)
        mean, var = xp.zeros(self.channels, np.float32), xp.ones(self.channels, np.float32)
        forward = lambda: batch_norm_forward(x, gamma, beta, mean, var, True)  # noqa: E731
        _, cache = forward()
        size = x.size * FLOAT_BYTES
        return [
            Pass("forward", 2 * size, "byte", forward),  # x in, out
            Pass("backward", 3 * size, "byte", lambda: batch_norm_backward(dout, cache)),  # dout, x in, dx
        ]

    def torch_passes(self, batch: int, device: str) -> list[Pass]:
        return []


WORKLOADS = (
    ConvWorkload("conv1", 1, 32, 28),
    ConvWorkload("conv2", 32, 64, 14),
    DenseWorkload("fc1", 3136, 1024),
    PoolWorkload("pool1", 32, 28),
    PoolWorkload("pool2", 64, 14),
    NormWorkload("bn1", 32, 28),
)
