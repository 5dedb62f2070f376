"""2-D convolution (cross-correlation, as every DL framework defines it) by im2col + GEMM.

  out[n, k, oh, ow] = b[k] + sum_{c, i, j} w[k, c, i, j] * xpad[n, c, oh*sh + i, ow*sw + j]

Layouts: x (N, C, H, W), w (K, C, kh, kw), b (K,), out (N, K, OH, OW). The column
matrix has rows (c, i, j) and columns (oh, ow, n): with the batch innermost, every
window element is a long contiguous run, which keeps the im2col copy and the fold
cheap. Each pass is one BLAS GEMM on contiguous operands (P = OH*OW*N):
  forward          out_kp = w_2d @ cols              (K, C*kh*kw) @ (C*kh*kw, P)
  backward weight  dw_2d  = dout_kp @ cols.T
  backward data    dcols  = w_2d.T @ dout_kp, folded back by kh*kw strided slice-adds
activation="relu" fuses out = max(out, 0) into the forward pass; backward then masks
dout with out > 0 before the three products.
"""

from __future__ import annotations

import numpy

from dlcore.ops.checks import (
    require_activation,
    require_float,
    require_rank,
    require_same_dtype,
    require_shape,
)
from dlcore.ops.padding import Window2d, window_2d


def im2col(x, window: Window2d):
    """x (N, C, H, W) -> contiguous columns (C*kh*kw, OH*OW*N)."""
    batch, channels = x.shape[:2]
    (kh, kw), (oh, ow) = window.kernel, window.out_size
    padded = numpy.zeros((channels,) + window.padded_size + (batch,), dtype=x.dtype)  # (C, Hp, Wp, N)
    padded[:, window.real_rows, window.real_cols, :] = x.transpose(1, 2, 3, 0)
    cols = numpy.empty((channels, kh, kw, oh, ow, batch), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = padded[:, window.element_rows(i), window.element_cols(j), :]
    return cols.reshape(channels * kh * kw, oh * ow * batch)


def col2im(cols, batch: int, channels: int, window: Window2d):
    """Columns (C*kh*kw, OH*OW*N) -> input gradient (N, C, H, W): each column entry is
    added to the input cell im2col copied it from; overlapping windows accumulate."""
    (kh, kw), (oh, ow) = window.kernel, window.out_size
    cols = cols.reshape(channels, kh, kw, oh, ow, batch)
    padded = numpy.zeros((channels,) + window.padded_size + (batch,), dtype=cols.dtype)  # (C, Hp, Wp, N)
    for i in range(kh):
        for j in range(kw):
            padded[:, window.element_rows(i), window.element_cols(j), :] += cols[:, i, j]
    return numpy.ascontiguousarray(padded[:, window.real_rows, window.real_cols, :].transpose(3, 0, 1, 2))


def _check_conv_args(op, x, w, b):
    require_float(op, "x", x)
    require_rank(op, "x", x, {4: "(N, C, H, W)"})
    require_rank(op, "w", w, {4: f"(K, {x.shape[1]}, kh, kw)"})
    if w.shape[1] != x.shape[1]:
        raise ValueError(
            f"{op}: expected w of shape (K, {x.shape[1]}, kh, kw) for x of shape {tuple(x.shape)}, "
            f"got shape {tuple(w.shape)}"
        )
    if b is not None:
        require_shape(op, "b", b, (w.shape[0],), "one bias per output channel")
    require_same_dtype(op, "x", x, w=w, b=b)


def conv2d_forward_cpu(x, w, b, stride=1, padding=0, activation=None):
    """NumPy reference of `conv2d_forward`."""
    op = "conv2d_forward"
    _check_conv_args(op, x, w, b)
    require_activation(op, activation)
    kernels = w.shape[0]
    window = window_2d(op, x.shape[2:], w.shape[2:], stride, padding)
    cols = im2col(x, window)  # (C*kh*kw, OH*OW*N)
    out = w.reshape(kernels, -1) @ cols  # (K, OH*OW*N)
    if b is not None:
        out += b[:, None]
    if activation == "relu":
        numpy.maximum(out, 0, out=out)
    out = numpy.ascontiguousarray(out.reshape((kernels,) + window.out_size + (x.shape[0],)).transpose(3, 0, 1, 2))
    cache = (cols, w, b is not None, x.shape[:2], window, out if activation == "relu" else None)
    return out, cache


def conv2d_backward_cpu(dout, cache, need_input_grad=True):
    """NumPy reference of `conv2d_backward`."""
    cols, w, has_bias, (batch, channels), window, relu_out = cache
    kernels = w.shape[0]
    require_shape("conv2d_backward", "dout", dout, (batch, kernels) + window.out_size, "the forward output")
    require_same_dtype("conv2d_backward", "w", w, dout=dout)
    if relu_out is not None:
        dout = dout * (relu_out > 0)
    dout_kp = numpy.ascontiguousarray(dout.transpose(1, 2, 3, 0)).reshape(kernels, -1)  # (K, OH*OW*N)
    dw = (dout_kp @ cols.T).reshape(w.shape)
    db = dout_kp.sum(axis=1) if has_bias else None
    dx = col2im(w.reshape(kernels, -1).T @ dout_kp, batch, channels, window) if need_input_grad else None
    return dx, dw, db


def conv2d_forward(x, w, b, stride=1, padding=0, activation=None):
    """x (N, C, H, W), w (K, C, kh, kw), b (K,) or None; stride int or pair; padding int,
    pair, "same" or "valid"; activation None or "relu" (fused) -> (out (N, K, OH, OW), cache)."""
    return conv2d_forward_cpu(x, w, b, stride, padding, activation)


def conv2d_backward(dout, cache, need_input_grad=True):
    """dout (N, K, OH, OW) -> (dx (N, C, H, W) or None, dw (K, C, kh, kw), db (K,) or None).

    need_input_grad=False skips dx (the first layer of a network needs none)."""
    return conv2d_backward_cpu(dout, cache, need_input_grad)
