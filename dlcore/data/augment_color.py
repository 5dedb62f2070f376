"""Colour transforms for image batches (N, C, H, W) with values in [0, 1]: ColorJitter and
Normalize (transforms of dlcore.data.augment, for Compose)."""
from __future__ import annotations

import numbers
from dataclasses import KW_ONLY, dataclass

import numpy as np

from dlcore.data.augment import Transform, _ordered_pair, _probability, _real, _set

GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114])  # ITU-R 601-2 luma, torchvision's rgb_to_grayscale


def _factor_range(owner: str, name: str, value) -> tuple[float, float]:
    """A number j >= 0 as (max(0, 1 - j), 1 + j), or a (low, high) pair with 0 <= low."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        jitter = _real(owner, name, value)
        if jitter < 0:
            raise ValueError(f"{owner}: {name} must be >= 0 (or a (low, high) pair of factors), got {value!r}")
        return max(0.0, 1.0 - jitter), 1.0 + jitter
    low, high = _ordered_pair(owner, name, value)
    if low < 0:
        raise ValueError(f"{owner}: {name} factors must be >= 0, got {value!r}")
    return low, high


def _grayscale(image: np.ndarray) -> np.ndarray:
    """(3, H, W) RGB -> (1, H, W) luma; a (1, H, W) image is its own."""
    if len(image) == 1:
        return image
    return np.tensordot(GRAY_WEIGHTS.astype(image.dtype), image, axes=1)[None]


@dataclass(frozen=True)
class ColorJitter(Transform):
    """Change brightness, contrast and saturation by factors drawn uniformly per sample, in a
    random order per sample, clipping to [0, 1] after each, as torchvision's ColorJitter:
        brightness  x * f
        contrast    f * x + (1 - f) * mean(gray(x))     (one mean per image)
        saturation  f * x + (1 - f) * gray(x)           (per pixel; RGB only)
    Each argument is a number j (factors in [max(0, 1 - j), 1 + j]; 0 leaves that property
    alone) or a (low, high) pair of factors. Images are RGB (C = 3); with C = 1 brightness and
    contrast apply and saturation must be 0."""

    brightness: float | tuple[float, float] = 0.0
    contrast: float | tuple[float, float] = 0.0
    saturation: float | tuple[float, float] = 0.0
    _: KW_ONLY
    p: float = 1.0

    def __post_init__(self):
        for name in ("brightness", "contrast", "saturation"):
            _set(self, name, _factor_range("ColorJitter", name, getattr(self, name)))
        _set(self, "p", _probability("ColorJitter", "p", self.p))

    def _apply(self, batch, rng):
        channels = batch.shape[1]
        if channels not in (1, 3):
            raise ValueError(f"ColorJitter: expects RGB images (N, 3, H, W), or grayscale (N, 1, H, W) without "
                             f"saturation, got {channels} channels")
        if channels == 1 and self.saturation != (1.0, 1.0):
            raise ValueError("ColorJitter: saturation needs RGB images (N, 3, H, W), got 1 channel; "
                             "leave saturation at 0 for grayscale images")
        n = len(batch)
        chosen = rng.random(n) < self.p  # (N,)
        factors = np.stack([rng.uniform(*getattr(self, name), size=n)
                            for name in ("brightness", "contrast", "saturation")], axis=1)  # (N, 3)
        orders = np.argsort(rng.random((n, 3)), axis=1)  # (N, 3): a random permutation per sample
        out = batch.copy()
        for i in np.flatnonzero(chosen):
            image = out[i]
            for which in orders[i]:
                f = factors[i, which].astype(batch.dtype)
                if which == 0:
                    image = image * f
                elif which == 1:
                    image = f * image + (1 - f) * _grayscale(image).mean()
                else:
                    image = f * image + (1 - f) * _grayscale(image)
                image = np.clip(image, 0.0, 1.0)
            out[i] = image
        return out


@dataclass(frozen=True)
class Normalize(Transform):
    """(x - mean[c]) / std[c] for each channel c, as torchvision's Normalize: mean and std are
    one number per channel (a number alone serves every channel), std > 0. Deterministic."""

    mean: float | tuple[float, ...]
    std: float | tuple[float, ...]

    def __post_init__(self):
        for name in ("mean", "std"):
            value = getattr(self, name)
            values = [value] if isinstance(value, numbers.Real) and not isinstance(value, bool) else value
            if isinstance(values, (str, bytes)) or np.ndim(values) != 1 or len(values) == 0:
                raise ValueError(f"Normalize: {name} must be a number or one number per channel, got {value!r}")
            _set(self, name, tuple(_real("Normalize", name, v) for v in values))
        if not all(s > 0 for s in self.std):
            raise ValueError(f"Normalize: std must be > 0 for every channel, got {self.std!r}")
        if len(self.mean) != len(self.std) and 1 not in (len(self.mean), len(self.std)):
            raise ValueError(f"Normalize: mean has {len(self.mean)} channels and std {len(self.std)}")

    def _apply(self, batch, rng):
        channels = batch.shape[1]
        for name, values in (("mean", self.mean), ("std", self.std)):
            if len(values) not in (1, channels):
                raise ValueError(f"Normalize: {name} has {len(values)} values for images of {channels} channels")
        mean = np.asarray(self.mean, dtype=batch.dtype).reshape(1, -1, 1, 1)  # (1, C or 1, 1, 1)
        std = np.asarray(self.std, dtype=batch.dtype).reshape(1, -1, 1, 1)
        return (batch - mean) / std
