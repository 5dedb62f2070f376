"""Fully connected layer: out = x @ w + b, with x (N, in), w (in, out), b (out,).

activation="relu" fuses out = max(out, 0); backward then masks dout with out > 0.

The GPU path runs the tiled GEMMs of kernels/gemm.cu (bias and ReLU fused into the
forward GEMM's epilogue); set_dense_matmul("cupy") or DLCORE_DENSE_MATMUL=cupy runs the
three products through cupy.matmul (cuBLAS) instead, for comparison on a GPU.
"""

from __future__ import annotations


import numpy

from dlcore.backend import get_backend
from dlcore.ops import launch, tiled_gemm
from dlcore.ops.activation import relu_in_place
from dlcore.ops.checks import (
    require_activation,
    require_float,
    require_rank,
    require_same_dtype,
    require_shape,
)
from dlcore.ops.choice import Choice
from dlcore.ops.launch import KernelFile, ceil_div


def _check_dense_args(op, x, w, b, activation):
    require_float(op, "x", x)
    require_activation(op, activation)
    require_rank(op, "x", x, {2: "(N, in)"})
    require_rank(op, "w", w, {2: f"({x.shape[1]}, out)"})
    if w.shape[0] != x.shape[1]:
        raise ValueError(
            f"{op}: expected w of shape ({x.shape[1]}, out) for x of shape {tuple(x.shape)}, "
            f"got shape {tuple(w.shape)}"
        )
    if b is not None:
        require_shape(op, "b", b, (w.shape[1],), "one bias per output feature")
    require_same_dtype(op, "x", x, w=w, b=b)


def dense_forward_cpu(x, w, b, activation=None):
    """NumPy reference of `dense_forward`."""
    _check_dense_args("dense_forward", x, w, b, activation)
    out = x @ w
    if b is not None:
        out += b
    if activation == "relu":
        relu_in_place(out)
    return out, (x, w, b is not None, out if activation == "relu" else None)


def dense_backward_cpu(dout, cache, need_input_grad=True):
    """NumPy reference of `dense_backward`."""
    x, w, has_bias, relu_out = cache
    require_shape("dense_backward", "dout", dout, (x.shape[0], w.shape[1]), "the forward output")
    require_same_dtype("dense_backward", "x", x, dout=dout)
    if relu_out is not None:
        dout = dout * (relu_out > 0)
    dx = dout @ w.T if need_input_grad else None
    return dx, x.T @ dout, dout.sum(axis=0) if has_bias else None


# ---------------------------------------------------------------- CUDA launchers

DENSE_MATMULS = ("dlcore", "cupy")
# Who runs the dense products on the GPU path: "dlcore" (kernels/gemm.cu) or "cupy" (cupy.matmul);
# set_dense_matmul(), else DLCORE_DENSE_MATMUL, else "dlcore". "cupy" needs the cupy backend.
matmul = Choice("the dense matmul", DENSE_MATMULS, "DLCORE_DENSE_MATMUL", "dlcore")
dense_matmul = matmul.get
set_dense_matmul = matmul.set  # returns the previous choice
use_dense_matmul = matmul.use  # with use_dense_matmul("cupy"): ...


def _cupy_matmul() -> bool:
    """Whether the products go to cupy.matmul; an error where that is impossible."""
    if dense_matmul() != "cupy":
        return False
    backend = get_backend().name
    if backend != "cupy":
        raise RuntimeError(
            f"set_dense_matmul('cupy') needs the cupy backend; the {backend} backend runs dlcore's own "
            "GEMM kernels only: set_dense_matmul('dlcore')"
        )
    return True


_kernels = KernelFile(
    "gemm.cu",
    ("gemm_nn_bias_relu", "gemm_nt", "gemm_tn", "relu_mask", "column_sums", "sum_splits", "sum_splits_bias_relu"),
)
_BLOCK = 256  # threads per block of the one-thread-per-element kernels


def _gemm_bias_relu(a, b, bias, apply_relu: bool):
    """act(a (M, K) @ b (K, N) + bias (N,)) -> (M, N), act = ReLU when apply_relu."""
    (rows, depth), cols = a.shape, b.shape[1]
    out = launch.empty((rows, cols), a.dtype)
    plan = tiled_gemm.plan_tiles(rows, cols, depth)
    target = tiled_gemm.partial_buffer(plan, out)
    scalars = (launch.i32(v) for v in (rows, cols, depth, plan.k_chunk, apply_relu))
    _kernels.get("gemm_nn_bias_relu", a.dtype)(plan.grid, plan.block, (a, b, bias, target, *scalars))
    if plan.splits > 1:
        tiled_gemm.sum_splits_bias_relu(_kernels, target, bias, out, plan.splits, 1, apply_relu)
    return out


def _gemm(kernel_name: str, a, b, rows: int, cols: int, depth: int):
    """(rows, cols) = a @ b^T ("gemm_nt") or a^T @ b ("gemm_tn") over a length-`depth` reduction."""
    out = launch.empty((rows, cols), a.dtype)
    plan = tiled_gemm.plan_tiles(rows, cols, depth)
    target = tiled_gemm.partial_buffer(plan, out)
    sizes = (launch.i32(v) for v in (rows, cols, depth, plan.k_chunk))
    _kernels.get(kernel_name, a.dtype)(plan.grid, plan.block, (a, b, target, *sizes))
    if plan.splits > 1:
        tiled_gemm.sum_splits(_kernels, target, out, plan.splits)
    return out


def dense_forward_gpu(x, w, b, activation=None):
    """CUDA launcher of `dense_forward`."""
    op = "dense_forward"
    _check_dense_args(op, x, w, b, activation)
    x, w = launch.contiguous(x), launch.contiguous(w)
    tiled_gemm.require_int32_sizes(op, x=x.size, w=w.size, out=x.shape[0] * w.shape[1])
    relu = activation == "relu"
    if _cupy_matmul():
        xp = get_backend().xp
        out = xp.matmul(x, w)  # (N, out)
        if b is not None:
            out += b
        if relu:
            xp.maximum(out, 0, out=out)
    else:
        bias = get_backend().xp.zeros(w.shape[1], x.dtype) if b is None else launch.contiguous(b)  # (out,)
        out = _gemm_bias_relu(x, w, bias, relu)  # (N, out)
    return out, (x, w, b is not None, out if relu else None)


def dense_backward_gpu(dout, cache, need_input_grad=True):
    """CUDA launcher of `dense_backward`."""
    x, w, has_bias, relu_out = cache
    require_shape("dense_backward", "dout", dout, (x.shape[0], w.shape[1]), "the forward output")
    require_same_dtype("dense_backward", "x", x, dout=dout)
    dout = launch.contiguous(dout)
    (batch, features_in), features_out = x.shape, w.shape[1]
    if relu_out is not None:
        masked = launch.empty(dout.shape, dout.dtype)  # dout * (out > 0)
        kernel = _kernels.get("relu_mask", dout.dtype)
        kernel((ceil_div(dout.size, _BLOCK),), (_BLOCK,), (dout, relu_out, masked, launch.i32(dout.size)))
        dout = masked
    db = None
    if has_bias:
        db = launch.empty((features_out,), dout.dtype)
        kernel = _kernels.get("column_sums", dout.dtype)
        kernel((ceil_div(features_out, _BLOCK),), (_BLOCK,), (dout, db, launch.i32(batch), launch.i32(features_out)))
    if _cupy_matmul():
        dx = dout @ w.T if need_input_grad else None
        return dx, x.T @ dout, db
    dx = _gemm("gemm_nt", dout, w, batch, features_in, features_out) if need_input_grad else None  # dout @ w.T
    dw = _gemm("gemm_tn", x, dout, features_in, features_out, batch)  # x.T @ dout
    return dx, dw, db


# ---------------------------------------------------------------- dispatchers


def dense_forward(x, w, b, activation=None):
    """x (N, in), w (in, out), b (out,) or None; activation None or "relu" (fused)
    -> (out (N, out), cache)."""
    if get_backend().runs_kernels:
        return dense_forward_gpu(x, w, b, activation)
    return dense_forward_cpu(x, w, b, activation)


def dense_backward(dout, cache, need_input_grad=True):
    """dout (N, out) -> (dx (N, in) or None, dw (in, out), db (out,) or None):
    dx = dout @ w.T, dw = x.T @ dout, db = sum over N of dout."""
    if get_backend().runs_kernels:
        return dense_backward_gpu(dout, cache, need_input_grad)
    return dense_backward_cpu(dout, cache, need_input_grad)
