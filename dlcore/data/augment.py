"""Data augmentation of image batches (N, C, H, W): flips, rotations, shifts, zooms and noise
(crops and cutout: augment_crops.py; colour jitter and normalization: augment_color.py).

Each transform draws its random parameters per sample from a np.random.Generator and
returns a new array of the input's dtype and shape (the crops: of their size); `p` is the
probability that a sample is transformed at all. Compose chains transforms, owns a seeded Generator whose state can
be saved, and is the callable that `Model.fit(augment=...)` applies to every training
batch. Parameters are checked when a transform is built: a ValueError (TypeError for a
non-number) names the transform and the parameter.

Geometry runs through skimage.transform.warp. Rotation and scaling are about the image
centre and the output keeps the input size: what moves out of the frame is cropped, and
the area that nothing maps to (the corners of a rotated image, the border of a shrunk
one, the side a shift uncovers) is filled according to `mode` ("constant" fills `cval`,
"edge" repeats the border pixels, "reflect" / "symmetric" mirror the image, "wrap" tiles
it). Compose multiplies the affine maps of consecutive geometric transforms that share
(order, mode, cval) and warps each image once: one interpolation, not one per transform.
"""
from __future__ import annotations

import abc
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass

import numpy as np

from dlcore.seeding import as_generator, default_generator

WARP_MODES = ("constant", "edge", "symmetric", "reflect", "wrap")
SEED_LIMIT = 2**63


class Transform(abc.ABC):
    """Base class of the random transforms; a subclass implements `_apply(batch, rng)`."""

    p: float

    def __call__(self, batch: np.ndarray, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """batch (N, C, H, W), floating point -> a new array of the same shape and dtype.

        rng: a Generator, an int seed, or None for dlcore's default generator (manual_seed).
        """
        return self._apply(_checked_batch(batch, type(self).__name__), as_generator(rng))

    @abc.abstractmethod
    def _apply(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The transformed copy of a checked batch (N, C, H, W)."""


class GeometricTransform(Transform):
    """A transform that moves pixels: one affine map per sample, applied by skimage's warp.

    Maps are 3x3 matrices on homogeneous pixel coordinates (x, y, 1), x the column and y the
    row (pointing down), and send a point of the input to where it lands in the output.
    A subclass implements `_maps(n, shape, rng)`.
    """

    order: int
    mode: str
    cval: float

    @property
    def warp_options(self) -> tuple[int, str, float]:
        """(order, mode, cval): the skimage.transform.warp settings."""
        return self.order, self.mode, self.cval

    def forward_maps(self, n: int, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """(n, 3, 3): each sample's map for images of `shape` (H, W), the identity for the
        samples left alone (probability 1 - p)."""
        chosen = rng.random(n) < self.p  # (n,)
        maps = self._maps(n, shape, rng)
        maps[~chosen] = np.eye(3)
        return maps

    def _apply(self, batch, rng):
        return warp_batch(batch, self.forward_maps(len(batch), batch.shape[-2:], rng), *self.warp_options)

    @abc.abstractmethod
    def _maps(self, n: int, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """(n, 3, 3): a freshly drawn map per sample for images of `shape` (H, W)."""

    def _check_p_and_warp_options(self) -> None:
        owner = type(self).__name__
        _set(self, "p", _probability(owner, "p", self.p))
        if isinstance(self.order, bool) or not isinstance(self.order, numbers.Integral) or not 0 <= self.order <= 5:
            raise ValueError(f"{owner}: order must be an int spline order in 0..5, got {self.order!r}")
        if self.mode not in WARP_MODES:
            raise ValueError(f"{owner}: mode must be one of {WARP_MODES}, got {self.mode!r}")
        _set(self, "cval", _real(owner, "cval", self.cval))


@dataclass(frozen=True)
class RandomFlip(Transform):
    """Mirror images left-right (horizontal) and / or upside down (vertical); each enabled
    axis is flipped independently, with probability p per sample."""

    horizontal: bool = True
    vertical: bool = False
    _: KW_ONLY
    p: float = 0.5

    def __post_init__(self):
        _set(self, "p", _probability("RandomFlip", "p", self.p))
        _set(self, "horizontal", bool(self.horizontal))
        _set(self, "vertical", bool(self.vertical))
        if not (self.horizontal or self.vertical):
            raise ValueError("RandomFlip: horizontal and vertical are both False, nothing to flip")

    def _apply(self, batch, rng):
        flips = (rng.random((len(batch), 2)) < self.p) & np.array([self.vertical, self.horizontal])  # (N, 2)
        out = batch.copy()
        out[flips[:, 0]] = out[flips[:, 0], :, ::-1, :]
        out[flips[:, 1]] = out[flips[:, 1], :, :, ::-1]
        return out


@dataclass(frozen=True)
class RandomRotation(GeometricTransform):
    """Rotate about the image centre by an angle drawn uniformly from `degrees`: a number d
    for [-d, d] or a (low, high) pair; positive angles turn counter-clockwise as displayed
    (as skimage.transform.rotate and np.rot90 do). The output keeps the input size: the
    rotated corners that leave the frame are cropped, the uncovered ones filled by `mode`."""

    degrees: float | tuple[float, float] = 15.0
    _: KW_ONLY
    p: float = 1.0
    order: int = 1
    mode: str = "constant"
    cval: float = 0.0

    def __post_init__(self):
        self._check_p_and_warp_options()
        _set(self, "degrees", _symmetric_range("RandomRotation", "degrees", self.degrees))

    def _maps(self, n, shape, rng):
        angles = np.deg2rad(rng.uniform(*self.degrees, size=n))  # (n,)
        cos, sin = np.cos(angles), np.sin(angles)
        # x' = cos x + sin y, y' = -sin x + cos y: counter-clockwise on screen, y pointing down
        linear = np.stack([np.stack([cos, sin], axis=-1), np.stack([-sin, cos], axis=-1)], axis=-2)
        return _about_centre(linear, shape)  # (n, 3, 3)


@dataclass(frozen=True)
class RandomTranslation(GeometricTransform):
    """Shift images by dy rows (positive: down) and dx columns (positive: right), each drawn
    uniformly from a range: a number m for [-m, m] or a (low, high) pair; dx=None takes dy's.
    In pixels, or in fractions of the height / width with relative=True (ranges in [-1, 1]).
    Shifts are real-valued (interpolated by `order`); the uncovered side is filled by `mode`."""

    dy: float | tuple[float, float] = 2.0
    dx: float | tuple[float, float] | None = None
    _: KW_ONLY
    relative: bool = False
    p: float = 1.0
    order: int = 1
    mode: str = "constant"
    cval: float = 0.0

    def __post_init__(self):
        self._check_p_and_warp_options()
        for name, value in (("dy", self.dy), ("dx", self.dy if self.dx is None else self.dx)):
            limits = _symmetric_range("RandomTranslation", name, value)
            if self.relative and not -1.0 <= limits[0] <= limits[1] <= 1.0:
                raise ValueError(f"RandomTranslation: with relative=True, {name} must lie in [-1, 1], got {value!r}")
            _set(self, name, limits)

    def _maps(self, n, shape, rng):
        height, width = shape if self.relative else (1, 1)
        maps = np.tile(np.eye(3), (n, 1, 1))  # (n, 3, 3)
        maps[:, 1, 2] = rng.uniform(*self.dy, size=n) * height
        maps[:, 0, 2] = rng.uniform(*self.dx, size=n) * width
        return maps


@dataclass(frozen=True)
class RandomScale(GeometricTransform):
    """Zoom about the image centre by a factor drawn uniformly from scale_range (low, high),
    0 < low <= high. The output keeps the input size: a zoom-in (factor > 1) crops the
    enlarged image back to it, a zoom-out pads the shrunk image with `mode` (as
    skimage.transform.rescale followed by a centre crop or pad)."""

    scale_range: tuple[float, float] = (0.9, 1.1)
    _: KW_ONLY
    p: float = 1.0
    order: int = 1
    mode: str = "constant"
    cval: float = 0.0

    def __post_init__(self):
        self._check_p_and_warp_options()
        low, high = _ordered_pair("RandomScale", "scale_range", self.scale_range)
        if low <= 0:
            raise ValueError(f"RandomScale: scale_range must be positive, got {self.scale_range!r}")
        _set(self, "scale_range", (low, high))

    def _maps(self, n, shape, rng):
        factors = rng.uniform(*self.scale_range, size=n)  # (n,)
        return _about_centre(factors[:, None, None] * np.eye(2), shape)


@dataclass(frozen=True)
class GaussianNoise(Transform):
    """Add zero-mean Gaussian noise of standard deviation `std` to every pixel, then clip to
    `clip` (low, high), or not at all with clip=None."""

    std: float = 0.1
    _: KW_ONLY
    clip: tuple[float, float] | None = (0.0, 1.0)
    p: float = 1.0

    def __post_init__(self):
        _set(self, "p", _probability("GaussianNoise", "p", self.p))
        if _real("GaussianNoise", "std", self.std) < 0:
            raise ValueError(f"GaussianNoise: std must be >= 0, got {self.std!r}")
        _set(self, "std", float(self.std))
        if self.clip is not None:
            _set(self, "clip", _ordered_pair("GaussianNoise", "clip", self.clip))

    def _apply(self, batch, rng):
        chosen = rng.random(len(batch)) < self.p  # (N,)
        out = batch.copy()
        noisy = batch[chosen] + rng.normal(0.0, self.std, size=(int(chosen.sum()), *batch.shape[1:]))
        out[chosen] = noisy if self.clip is None else np.clip(noisy, *self.clip)
        return out


@dataclass(frozen=True)
class SaltPepperNoise(Transform):
    """Replace a fraction `amount` of the pixels (each independently) by `salt` (with
    probability salt_vs_pepper) or `pepper`, as skimage.util.random_noise(mode="s&p")."""

    amount: float = 0.02
    salt_vs_pepper: float = 0.5
    _: KW_ONLY
    salt: float = 1.0
    pepper: float = 0.0
    p: float = 1.0

    def __post_init__(self):
        for name in ("amount", "salt_vs_pepper", "p"):
            _set(self, name, _probability("SaltPepperNoise", name, getattr(self, name)))
        for name in ("salt", "pepper"):
            _set(self, name, _real("SaltPepperNoise", name, getattr(self, name)))

    def _apply(self, batch, rng):
        chosen = rng.random(len(batch)) < self.p  # (N,)
        shape = (int(chosen.sum()), *batch.shape[1:])
        hit = rng.random(shape) < self.amount
        salted = rng.random(shape) < self.salt_vs_pepper
        out = batch.copy()
        out[chosen] = np.where(hit, np.where(salted, self.salt, self.pepper), batch[chosen])
        return out


class Compose:
    """Transforms applied in order to a batch, drawing from a Generator of its own.

    seed: an int in [0, 2**63), or None to draw one from dlcore's default generator (so
    dlcore.manual_seed makes it reproducible). The same seed gives the same augmented
    batches; state_dict() / load_state_dict() save and restore the Generator as plain ints
    and strings (JSON-able), so a resumed run continues the same stream.

    >>> augment = Compose([RandomRotation(15), RandomTranslation(2), GaussianNoise(0.05)], seed=0)
    >>> augmented = augment(images)  # (N, C, H, W) -> (N, C, H, W), same dtype
    """

    def __init__(self, transforms: Sequence[Transform], seed: int | None = None):
        transforms = tuple(transforms)
        if not transforms:
            raise ValueError("Compose: transforms is empty, give at least one transform")
        for index, transform in enumerate(transforms):
            if not isinstance(transform, Transform):
                raise TypeError(f"Compose: transforms[{index}] must be a Transform, got {type(transform).__name__}")
        self.transforms = transforms
        self._steps = _fuse_geometric(transforms)
        self._rng = np.random.default_rng(_seed("Compose", seed))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """batch (N, C, H, W), floating point -> a new augmented array, same shape and dtype."""
        batch = _checked_batch(batch, "Compose")
        for step in self._steps:
            batch = step(batch, self._rng)
        return batch

    def state_dict(self) -> dict:
        """{'bit_generator': the Generator's state}, a dict of strings and ints."""
        return {"bit_generator": self._rng.bit_generator.state}

    def load_state_dict(self, state: Mapping) -> None:
        """Continue from a state_dict() (for instance one read back from JSON)."""
        self._rng.bit_generator.state = dict(state["bit_generator"])

    def __repr__(self):
        return f"Compose([{', '.join(map(repr, self.transforms))}])"


class _WarpChain:
    """Consecutive geometric transforms with the same warp options, as one warp per image."""

    def __init__(self, transforms: tuple[GeometricTransform, ...]):
        self.transforms = transforms

    def __call__(self, batch, rng):
        maps = np.eye(3)
        for transform in self.transforms:  # the later transform acts on the earlier one's output
            maps = transform.forward_maps(len(batch), batch.shape[-2:], rng) @ maps  # (N, 3, 3)
        return warp_batch(batch, maps, *self.transforms[0].warp_options)


def _fuse_geometric(transforms: tuple[Transform, ...]) -> list:
    """The transforms with each run of geometric ones that share warp options as a _WarpChain."""
    steps = []
    for transform in transforms:
        geometric = isinstance(transform, GeometricTransform)
        if geometric and steps and isinstance(steps[-1], _WarpChain) \
                and steps[-1].transforms[0].warp_options == transform.warp_options:
            steps[-1] = _WarpChain(steps[-1].transforms + (transform,))
        else:
            steps.append(_WarpChain((transform,)) if geometric else transform)
    return steps


def warp_batch(batch: np.ndarray, forward_maps: np.ndarray, order: int = 1, mode: str = "constant",
               cval: float = 0.0) -> np.ndarray:
    """Move each image of batch (N, C, H, W) by its map, forward_maps (N, 3, 3) from input to
    output (x, y, 1) pixel coordinates, with skimage.transform.warp; the output keeps the
    input's size and dtype. Images whose map is the identity are copied as they are."""
    from skimage.transform import warp  # imported on first use: it pulls in scipy.ndimage (~0.4 s)

    out = batch.copy()
    moved = np.flatnonzero(~(forward_maps == np.eye(3)).all(axis=(1, 2)))
    for index, inverse in zip(moved, np.linalg.inv(forward_maps[moved])):  # warp wants output -> input
        for channel in range(batch.shape[1]):
            out[index, channel] = warp(batch[index, channel], inverse, order=order, mode=mode,
                                       cval=cval, preserve_range=True)
    return out


def _about_centre(linear: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(n, 3, 3) maps that apply linear (n, 2, 2) about the centre of an (H, W) image:
    p' = A (p - c) + c, c = ((W - 1) / 2, (H - 1) / 2) in (x, y)."""
    height, width = shape
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    maps = np.zeros((len(linear), 3, 3))
    maps[:, :2, :2] = linear
    maps[:, :2, 2] = centre - linear @ centre
    maps[:, 2, 2] = 1.0
    return maps


def _checked_batch(batch, owner: str) -> np.ndarray:
    batch = np.asarray(batch)
    if batch.ndim != 4:
        raise ValueError(f"{owner}: expects a batch of images (N, C, H, W), got shape {batch.shape}")
    if not np.issubdtype(batch.dtype, np.floating):
        raise TypeError(f"{owner}: expects floating-point images, got dtype {batch.dtype}")
    return batch


def _set(transform, name: str, value) -> None:
    """Store a checked, normalized parameter on a frozen dataclass."""
    object.__setattr__(transform, name, value)


def _real(owner: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be finite, got {value!r}")
    return float(value)


def _probability(owner: str, name: str, value) -> float:
    if not 0.0 <= _real(owner, name, value) <= 1.0:
        raise ValueError(f"{owner}: {name} must be in [0, 1], got {value!r}")
    return float(value)


def _ordered_pair(owner: str, name: str, value) -> tuple[float, float]:
    """A (low, high) pair of finite numbers with low <= high."""
    if isinstance(value, (str, bytes)) or np.ndim(value) != 1 or len(value) != 2:
        raise ValueError(f"{owner}: {name} must be a (low, high) pair, got {value!r}")
    low, high = (_real(owner, name, v) for v in value)
    if low > high:
        raise ValueError(f"{owner}: {name} must be ordered (low <= high), got {value!r}")
    return low, high


def _symmetric_range(owner: str, name: str, value) -> tuple[float, float]:
    """A number m >= 0 as (-m, m), or a (low, high) pair as it is."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if _real(owner, name, value) < 0:
            raise ValueError(f"{owner}: {name} must be >= 0 (or a (low, high) pair), got {value!r}")
        return -float(value), float(value)
    return _ordered_pair(owner, name, value)


def _seed(owner: str, seed: int | None) -> int:
    if seed is None:
        return int(default_generator().integers(SEED_LIMIT))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{owner}: seed must be an int or None, got {seed!r}")
    seed = int(seed)
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"{owner}: seed must be in [0, 2**63), got {seed}")
    return seed
