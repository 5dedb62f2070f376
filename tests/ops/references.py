"""Independent references for the op tests: SciPy correlations and plain Python loops,
written from the definitions without any dlcore code."""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import correlate2d


def explicit_pads(size: int, kernel: int, stride: int, padding) -> tuple[int, int]:
    """(before, after) padding: TensorFlow's rule for "same", none for "valid", p for int p."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2
    return padding, padding


def conv2d_reference(x, w, b, stride, padding):
    """sum_c correlate2d(xpad[n, c], w[k, c]) sampled every `stride`, plus b; stride int or
    pair, padding "same", "valid", int or pair."""
    (sh, sw) = (stride, stride) if isinstance(stride, int) else stride
    (ph, pw) = padding if isinstance(padding, tuple) else (padding, padding)
    kh, kw = w.shape[2:]
    pad_h = explicit_pads(x.shape[2], kh, sh, ph)
    pad_w = explicit_pads(x.shape[3], kw, sw, pw)
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), pad_h, pad_w))
    out = np.zeros(
        (x.shape[0], w.shape[0]) + correlate2d(padded[0, 0], w[0, 0], mode="valid")[::sh, ::sw].shape
    )
    for n in range(x.shape[0]):
        for k in range(w.shape[0]):
            full = sum(
                correlate2d(padded[n, c], w[k, c].astype(np.float64), mode="valid") for c in range(x.shape[1])
            )
            out[n, k] = full[::sh, ::sw] + (0.0 if b is None else b[k])
    return out


def _windows(size: int, kernel: int, stride: int, pads: tuple[int, int]):
    """For each output index, the input indices its window covers (padding left out)."""
    out = (size + sum(pads) - kernel) // stride + 1
    return [
        [i for i in range(o * stride - pads[0], o * stride - pads[0] + kernel) if 0 <= i < size]
        for o in range(out)
    ]


def _padded_extent(size: int, kernel: int, stride: int, pads: tuple[int, int]):
    """PyTorch's count_include_pad divisor along one dimension, per output index: the window
    [start, start + kernel) clipped to the padded input [-pad_before, size + pad_after)."""
    out = (size + sum(pads) - kernel) // stride + 1
    return [min(o * stride - pads[0] + kernel, size + pads[1]) - (o * stride - pads[0]) for o in range(out)]


def pool2d_reference(x, kernel, stride, padding, mode, count_include_pad=False):
    """Loop max/avg pooling over real cells; kernel, stride pairs, padding as conv2d_reference.

    Returns (out, backward) where backward(dout) -> dx; max sends each window's gradient to
    its first maximum in row-major order, avg spreads it evenly over the window's real cells,
    dividing by their number or, with count_include_pad, by the window's extent in the padded
    input (PyTorch's avg_pool2d(count_include_pad=True): padding counts as zeros)."""
    (kh, kw), (sh, sw) = kernel, stride
    (ph, pw) = padding if isinstance(padding, tuple) else (padding, padding)
    pads_h = explicit_pads(x.shape[2], kh, sh, ph)
    pads_w = explicit_pads(x.shape[3], kw, sw, pw)
    rows, cols = _windows(x.shape[2], kh, sh, pads_h), _windows(x.shape[3], kw, sw, pads_w)
    extent_h, extent_w = _padded_extent(x.shape[2], kh, sh, pads_h), _padded_extent(x.shape[3], kw, sw, pads_w)
    out = np.zeros(x.shape[:2] + (len(rows), len(cols)))
    chosen = {}  # (n, c, oh, ow) -> cells that receive the gradient, with weights
    for n, c in np.ndindex(*x.shape[:2]):
        for oh, row_indices in enumerate(rows):
            for ow, col_indices in enumerate(cols):
                cells = [(r, q) for r in row_indices for q in col_indices]
                values = [float(x[n, c, r, q]) for r, q in cells]
                if mode == "max":
                    best = max(range(len(values)), key=lambda k: (values[k], -k))
                    out[n, c, oh, ow] = values[best]
                    chosen[n, c, oh, ow] = [(cells[best], 1.0)]
                else:
                    divisor = extent_h[oh] * extent_w[ow] if count_include_pad else len(values)
                    out[n, c, oh, ow] = sum(values) / divisor
                    chosen[n, c, oh, ow] = [(cell, 1.0 / divisor) for cell in cells]

    def backward(dout):
        dx = np.zeros(x.shape)
        for (n, c, oh, ow), targets in chosen.items():
            for (r, q), weight in targets:
                dx[n, c, r, q] += weight * dout[n, c, oh, ow]
        return dx

    return out, backward


def softmax_cross_entropy_reference(logits, targets):
    """Mean over rows of -sum_k t[k] * log softmax(z)[k], with math.log / math.exp."""
    total = 0.0
    for row, target in zip(logits.astype(float), targets.astype(float)):
        top = max(row)
        log_norm = top + math.log(sum(math.exp(v - top) for v in row))
        total -= sum(t * (v - log_norm) for v, t in zip(row, target))
    return total / len(logits)
