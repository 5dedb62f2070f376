"""Crops and occlusion for image batches (N, C, H, W): RandomCrop, RandomResizedCrop, Cutout.

Transforms of dlcore.data.augment (Compose chains them, draws their parameters per sample
from its generator, and checks them when built). The crops return images of `size`, which
may differ from the input's (RandomCrop(32, padding=4) on CIFAR keeps 32 x 32).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import KW_ONLY, dataclass

import numpy as np

from dlcore.data.augment import Transform, _ordered_pair, _probability, _real, _set

PAD_MODES = ("constant", "edge", "reflect", "symmetric")
RESIZED_CROP_ATTEMPTS = 10  # torchvision's: draws of (area, ratio) before the centre-crop fallback


def _size_pair(owner: str, name: str, value) -> tuple[int, int]:
    """(h, w) from an int or an (h, w) pair of ints >= 1."""
    values = (value, value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value
    if isinstance(values, (str, bytes)) or np.ndim(values) != 1 or len(values) != 2 or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in values):
        raise ValueError(f"{owner}: {name} must be a positive int or an (h, w) pair of them, got {value!r}")
    return int(values[0]), int(values[1])


@dataclass(frozen=True)
class RandomCrop(Transform):
    """Pad each image by `padding` pixels on every side (filled by `mode`: "constant" with
    `cval`, "edge", "reflect", "symmetric", as np.pad), then cut out a window of `size` (an int
    or (h, w)) at a uniformly drawn position, as torchvision's RandomCrop(size, padding):
    (N, C, H, W) -> (N, C, h, w). Every sample is cropped."""

    size: int | tuple[int, int]
    padding: int = 0
    _: KW_ONLY
    mode: str = "constant"
    cval: float = 0.0

    def __post_init__(self):
        _set(self, "size", _size_pair("RandomCrop", "size", self.size))
        if isinstance(self.padding, bool) or not isinstance(self.padding, numbers.Integral) or self.padding < 0:
            raise ValueError(f"RandomCrop: padding must be an int >= 0, got {self.padding!r}")
        if self.mode not in PAD_MODES:
            raise ValueError(f"RandomCrop: mode must be one of {PAD_MODES}, got {self.mode!r}")
        _set(self, "cval", _real("RandomCrop", "cval", self.cval))

    def _apply(self, batch, rng):
        (h, w), pad = self.size, int(self.padding)
        height, width = batch.shape[2] + 2 * pad, batch.shape[3] + 2 * pad
        if h > height or w > width:
            raise ValueError(f"RandomCrop: crop size {self.size} is larger than the padded images "
                             f"({height}, {width}); use a smaller size or more padding")
        widths = ((0, 0), (0, 0), (pad, pad), (pad, pad))
        options = {"constant_values": self.cval} if self.mode == "constant" else {}
        padded = np.pad(batch, widths, mode=self.mode, **options) if pad else batch  # (N, C, H+2p, W+2p)
        tops = rng.integers(0, height - h + 1, size=len(batch))  # (N,)
        lefts = rng.integers(0, width - w + 1, size=len(batch))  # (N,)
        return np.stack([padded[i, :, t:t + h, l:l + w] for i, (t, l) in enumerate(zip(tops, lefts))])


@dataclass(frozen=True)
class RandomResizedCrop(Transform):
    """Cut out a window of random area and aspect ratio and resize it to `size`, as
    torchvision's RandomResizedCrop: the window covers a fraction of the image drawn uniformly
    from `scale` and has width / height drawn log-uniformly from `ratio`; after 10 draws that do
    not fit, the largest centred window with a ratio in range. Resized by
    skimage.transform.resize (spline `order`, anti-aliased when shrinking):
    (N, C, H, W) -> (N, C, h, w)."""

    size: int | tuple[int, int]
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    _: KW_ONLY
    order: int = 1

    def __post_init__(self):
        owner = "RandomResizedCrop"
        _set(self, "size", _size_pair(owner, "size", self.size))
        low, high = _ordered_pair(owner, "scale", self.scale)
        if not 0 < low <= high <= 1:
            raise ValueError(f"{owner}: scale must lie in (0, 1] (fractions of the image area), got {self.scale!r}")
        _set(self, "scale", (low, high))
        low, high = _ordered_pair(owner, "ratio", self.ratio)
        if low <= 0:
            raise ValueError(f"{owner}: ratio must be positive (width / height), got {self.ratio!r}")
        _set(self, "ratio", (low, high))
        if isinstance(self.order, bool) or not isinstance(self.order, numbers.Integral) or not 0 <= self.order <= 5:
            raise ValueError(f"{owner}: order must be an int spline order in 0..5, got {self.order!r}")

    def window(self, height: int, width: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """(top, left, h, w) of one sample's window in an image of (height, width)."""
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(RESIZED_CROP_ATTEMPTS):
            target_area = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            w = round(math.sqrt(target_area * aspect))
            h = round(math.sqrt(target_area / aspect))
            if 0 < w <= width and 0 < h <= height:
                return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
        image_ratio = width / height  # fallback: a centred window, clamped to the ratio range
        if image_ratio < self.ratio[0]:
            w, h = width, round(width / self.ratio[0])
        elif image_ratio > self.ratio[1]:
            h, w = height, round(height * self.ratio[1])
        else:
            h, w = height, width
        return (height - h) // 2, (width - w) // 2, h, w

    def _apply(self, batch, rng):
        from skimage.transform import resize  # imported on first use, as augment.warp_batch does

        out = np.empty((*batch.shape[:2], *self.size), dtype=batch.dtype)  # (N, C, h, w)
        for i, image in enumerate(batch):
            top, left, h, w = self.window(*batch.shape[2:], rng)
            crop = image[:, top:top + h, left:left + w]  # (C, h', w')
            out[i] = resize(crop, (len(crop), *self.size), order=self.order, preserve_range=True,
                            anti_aliasing=h > self.size[0] or w > self.size[1])
        return out


@dataclass(frozen=True)
class Cutout(Transform):
    """Fill a square (or (h, w) rectangle) of side `size` with `cval` in every channel, centred
    on a uniformly drawn pixel and clipped at the border, so near an edge less is covered
    (DeVries & Taylor, 2017)."""

    size: int | tuple[int, int] = 8
    _: KW_ONLY
    cval: float = 0.0
    p: float = 1.0

    def __post_init__(self):
        _set(self, "size", _size_pair("Cutout", "size", self.size))
        _set(self, "cval", _real("Cutout", "cval", self.cval))
        _set(self, "p", _probability("Cutout", "p", self.p))

    def _apply(self, batch, rng):
        n, _, height, width = batch.shape
        chosen = rng.random(n) < self.p  # (N,)
        rows = rng.integers(0, height, size=n) - self.size[0] // 2  # (N,) top edge, may be < 0
        columns = rng.integers(0, width, size=n) - self.size[1] // 2  # (N,) left edge
        out = batch.copy()
        for i in np.flatnonzero(chosen):
            top, left = max(rows[i], 0), max(columns[i], 0)
            out[i, :, top:max(rows[i] + self.size[0], 0), left:max(columns[i] + self.size[1], 0)] = self.cval
        return out
