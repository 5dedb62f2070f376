"""Output size and padding of a sliding window ("same" / "valid" / explicit), and the
2-D window geometry that conv and pooling share.

One spatial dimension of size `size`, window `kernel`, step `stride`:
  "valid"  out = (size - kernel) // stride + 1, no padding
  "same"   TensorFlow: out = ceil(size / stride),
           pad_total = max((out - 1) * stride + kernel - size, 0),
           pad_before = pad_total // 2, pad_after = pad_total - pad_before
  int p    out = (size + 2p - kernel) // stride + 1, p cells on both sides
A dilated window (dilation d: taps d cells apart) spans (kernel - 1) * d + 1 cells, and that span
takes the place of `kernel` above (TensorFlow's "same" rule for dilated convolutions).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy

from dlcore.ops.checks import as_pair


def resolve_padding(size: int, kernel: int, stride: int, padding) -> tuple[int, int, int]:
    """(out_size, pad_before, pad_after) of one spatial dimension; ValueError when the
    window does not fit or an argument is out of range."""
    if kernel < 1:
        raise ValueError(f"kernel size must be >= 1, got {kernel}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "same":
            out = -(-size // stride)
            pad_total = max((out - 1) * stride + kernel - size, 0)
            pad_before = pad_total // 2
            return _checked(out, size, kernel, stride, padding), pad_before, pad_total - pad_before
        if mode == "valid":
            if kernel > size:
                raise ValueError(f"'valid' padding needs kernel <= size, got kernel {kernel} > size {size}")
            return (size - kernel) // stride + 1, 0, 0
        raise ValueError(f"padding must be 'same', 'valid' or an int, got {padding!r}")
    try:
        pad = operator.index(padding)
    except TypeError:
        raise ValueError(f"padding must be 'same', 'valid' or an int, got {padding!r}") from None
    if pad < 0:
        raise ValueError(f"padding must be >= 0, got {pad}")
    out = (size + 2 * pad - kernel) // stride + 1
    return _checked(out, size, kernel, stride, padding), pad, pad


def _checked(out: int, size: int, kernel: int, stride: int, padding) -> int:
    if out < 1:
        raise ValueError(
            f"output size {out} < 1 for size {size}, kernel {kernel}, stride {stride}, padding {padding!r}"
        )
    return out


@dataclass(frozen=True)
class Window2d:
    """Where the kh x kw window of every output pixel lies in the padded input.

    The padded input has (pad_h[0] + H + pad_h[1]) rows; window (oh, ow) starts at padded
    row oh * stride[0] and column ow * stride[1]; its element (i, j) lies dilation * (i, j)
    cells further.
    """

    in_size: tuple[int, int]  # (H, W)
    kernel: tuple[int, int]  # (kh, kw)
    stride: tuple[int, int]  # (sh, sw)
    out_size: tuple[int, int]  # (OH, OW)
    pad_h: tuple[int, int]  # (top, bottom)
    pad_w: tuple[int, int]  # (left, right)
    dilation: tuple[int, int] = (1, 1)  # (dh, dw): cells between neighbouring window elements

    @property
    def extent(self) -> tuple[int, int]:
        """Rows and columns one window spans: (kernel - 1) * dilation + 1."""
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel, self.dilation))

    @property
    def has_padding(self) -> bool:
        return any(self.pad_h) or any(self.pad_w)

    @property
    def padded_size(self) -> tuple[int, int]:
        return self.in_size[0] + sum(self.pad_h), self.in_size[1] + sum(self.pad_w)

    def element_rows(self, i: int) -> slice:
        """Padded rows holding row i of every window, one per output row."""
        first = i * self.dilation[0]
        return slice(first, first + self.stride[0] * (self.out_size[0] - 1) + 1, self.stride[0])

    def element_cols(self, j: int) -> slice:
        """Padded columns holding column j of every window, one per output column."""
        first = j * self.dilation[1]
        return slice(first, first + self.stride[1] * (self.out_size[1] - 1) + 1, self.stride[1])

    @property
    def real_rows(self) -> slice:
        """Padded rows that hold input rows."""
        return slice(self.pad_h[0], self.pad_h[0] + self.in_size[0])

    @property
    def real_cols(self) -> slice:
        """Padded columns that hold input columns."""
        return slice(self.pad_w[0], self.pad_w[0] + self.in_size[1])

    def pad(self, x, value=0):
        """x (..., H, W) -> (..., Hp, Wp) with `value` in the border; x itself without padding."""
        if not self.has_padding:
            return x
        padded = numpy.full(x.shape[:-2] + self.padded_size, value, dtype=x.dtype)
        self.crop(padded)[...] = x
        return padded

    def crop(self, padded):
        """The (..., H, W) view of the real cells of a padded (..., Hp, Wp) array."""
        return padded[..., self.real_rows, self.real_cols]

    def window_element(self, padded, i: int, j: int):
        """(..., OH, OW) view of element (i, j) of every window of a padded (..., Hp, Wp) array."""
        return padded[..., self.element_rows(i), self.element_cols(j)]


def even_slices(size: int, most: int) -> list[slice]:
    """range(size) cut into the fewest near-equal slices of at most `most` items."""
    count = -(-size // max(1, most))
    step = -(-size // count)
    return [slice(start, min(start + step, size)) for start in range(0, size, step)]


def window_2d(op: str, in_size: tuple[int, int], kernel, stride, padding, dilation=1) -> Window2d:
    """Window2d of an op from int-or-pair kernel/stride/dilation and padding int, pair, "same" or "valid"."""
    kernel_hw = as_pair(op, "kernel size", kernel)
    stride_hw = as_pair(op, "stride", stride)
    padding_hw = (padding, padding) if isinstance(padding, str) else as_pair(op, "padding", padding)
    dilation_hw = as_pair(op, "dilation", dilation)
    if min(dilation_hw) < 1:
        raise ValueError(f"{op}: dilation must be >= 1, got {dilation!r}")
    extent_hw = tuple((k - 1) * d + 1 if k >= 1 else k for k, d in zip(kernel_hw, dilation_hw))  # dilated spans
    try:
        (out_h, *pad_h), (out_w, *pad_w) = (
            resolve_padding(size, k, s, p) for size, k, s, p in zip(in_size, extent_hw, stride_hw, padding_hw)
        )
    except ValueError as exc:
        dilated = f", dilation {dilation_hw}" if dilation_hw != (1, 1) else ""
        raise ValueError(f"{op}: {exc} (input {tuple(in_size)}{dilated})") from None
    return Window2d(tuple(in_size), kernel_hw, stride_hw, (out_h, out_w), tuple(pad_h), tuple(pad_w), dilation_hw)
