"""Fully connected layer: out = x @ w + b, with x (N, in), w (in, out), b (out,).

activation="relu" fuses out = max(out, 0); backward then masks dout with out > 0.
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


def dense_forward_cpu(x, w, b, activation=None):
    """NumPy reference of `dense_forward`."""
    op = "dense_forward"
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
    out = x @ w
    if b is not None:
        out += b
    if activation == "relu":
        numpy.maximum(out, 0, out=out)
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


def dense_forward(x, w, b, activation=None):
    """x (N, in), w (in, out), b (out,) or None; activation None or "relu" (fused)
    -> (out (N, out), cache)."""
    return dense_forward_cpu(x, w, b, activation)


def dense_backward(dout, cache, need_input_grad=True):
    """dout (N, out) -> (dx (N, in) or None, dw (in, out), db (out,) or None):
    dx = dout @ w.T, dw = x.T @ dout, db = sum over N of dout."""
    return dense_backward_cpu(dout, cache, need_input_grad)
