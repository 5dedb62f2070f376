"""Mini-batches of in-memory arrays: one epoch at a time, or an endless epoch-cycling sampler."""
from __future__ import annotations

import operator
from collections.abc import Iterator, Mapping

import numpy as np

from dlcore.data.arrays import common_length, positive_int

SEED_LIMIT = 2**63  # seeds stay below it so that a saved state fits in int64


def iterate_minibatches(
    *arrays: np.ndarray,
    batch_size: int,
    shuffle: bool = True,
    rng: np.random.Generator | int | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, ...]]:
    """One epoch of mini-batches: every sample exactly once, the same rows from each array.

    arrays      one or more arrays sharing their first dimension N, e.g. images (N, C, H, W)
                and labels (N,)
    batch_size  samples per batch, >= 1; the last batch holds the N % batch_size leftovers
                unless drop_last drops it
    shuffle     visit the samples in a random order; else in storage order
    rng         np.random.Generator, an int seed, or None for fresh entropy (used if shuffle)
    Yields one tuple per batch, one entry per array, e.g. (xb (B, C, H, W), yb (B,)):
    views (slices) when shuffle is False, copies (gathered rows) when it is True.
    Raises ValueError at call time if the arrays' first dimensions differ or batch_size < 1.
    """
    if not arrays:
        raise TypeError("iterate_minibatches needs at least one array")
    n_samples = common_length(arrays, [f"arrays[{i}]" for i in range(len(arrays))])
    batch_size = positive_int(batch_size, "batch_size")
    order = np.random.default_rng(rng).permutation(n_samples) if shuffle else None
    stop = n_samples - n_samples % batch_size if drop_last else n_samples
    return _generate_minibatches(arrays, batch_size, order, stop)


def _generate_minibatches(arrays, batch_size: int, order: np.ndarray | None, stop: int):
    for start in range(0, stop, batch_size):
        stop_row = start + batch_size
        rows = slice(start, stop_row) if order is None else order[start:stop_row]
        yield tuple(array[rows] for array in arrays)


class BatchSampler:
    """Endless mini-batch indices for iteration-based training, reshuffled at every epoch.

    Every batch holds exactly batch_size indices. A batch that crosses an epoch boundary
    takes the rest of the old epoch and the start of the new one (as TensorFlow's classic
    DataSet.next_batch did), so each epoch still visits every sample exactly once; 20,000
    iterations of 32 over 55,000 samples are about 11.6 epochs.

    The order of epoch e is a permutation drawn from a generator seeded with (seed, e), so
    the whole state is a few plain ints (state_dict) and a restored sampler continues
    exactly where the saved one stopped.
    """

    def __init__(
        self,
        n_samples: int,
        batch_size: int,
        rng: np.random.Generator | int | None = None,
        shuffle: bool = True,
    ):
        """rng: an int seed in [0, 2**63), a np.random.Generator (a seed is drawn from it),
        or None (a seed is drawn from fresh entropy); shuffle=False visits 0..n-1 in order."""
        self._n_samples = positive_int(n_samples, "n_samples")
        self._batch_size = positive_int(batch_size, "batch_size")
        self._seed = _seed_from(rng)
        self._shuffle = bool(shuffle)
        self._epoch = 0
        self._position = 0
        self._order_key = None  # (seed, epoch) of the cached order
        self._order = np.empty(0, dtype=np.int64)

    @property
    def n_samples(self) -> int:
        return self._n_samples

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def shuffle(self) -> bool:
        return self._shuffle

    @property
    def epoch(self) -> int:
        """Epochs completed; the next index comes from this epoch."""
        return self._epoch

    @property
    def position(self) -> int:
        """Indices already handed out from the current epoch, 0 <= position < n_samples."""
        return self._position

    def next_indices(self) -> np.ndarray:
        """The next batch: int64 indices (batch_size,), a fresh array the caller may keep."""
        parts = []
        needed = self._batch_size
        while needed:
            order = self.epoch_order(self._epoch)
            taken = min(needed, self._n_samples - self._position)
            parts.append(order[self._position : self._position + taken])
            needed -= taken
            self._position += taken
            if self._position == self._n_samples:
                self._epoch, self._position = self._epoch + 1, 0
        return np.concatenate(parts)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The order in which `epoch` visits the samples: a permutation of 0..n-1, (n,) int64
        (read-only; the current epoch's order is kept)."""
        if (self._seed, epoch) != self._order_key:
            if self._shuffle:
                order = np.random.default_rng([self._seed, epoch]).permutation(self._n_samples)
            else:
                order = np.arange(self._n_samples, dtype=np.int64)
            order.flags.writeable = False
            self._order_key, self._order = (self._seed, epoch), order
        return self._order

    def state_dict(self) -> dict[str, int]:
        """Plain ints, storable in JSON or an .npz file."""
        return {
            "n_samples": self._n_samples,
            "batch_size": self._batch_size,
            "seed": self._seed,
            "epoch": self._epoch,
            "position": self._position,
        }

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        """Continue from a state_dict() of a sampler over the same n_samples and batch_size;
        accepts the values as ints or 0-d integer arrays (as read back from an .npz file)."""
        keys = ("n_samples", "batch_size", "seed", "epoch", "position")
        values = {key: operator.index(state[key]) for key in keys}
        for key in ("n_samples", "batch_size"):
            if values[key] != getattr(self, key):
                raise ValueError(
                    f"state is for {key}={values[key]}, this sampler has {key}={getattr(self, key)}"
                )
        if not 0 <= values["position"] < self._n_samples:
            raise ValueError(
                f"position must be in 0..{self._n_samples - 1}, found {values['position']}"
            )
        if values["epoch"] < 0:
            raise ValueError(f"epoch must be >= 0, found {values['epoch']}")
        self._seed = _checked_seed(values["seed"])
        self._epoch, self._position = values["epoch"], values["position"]


def _seed_from(rng: np.random.Generator | int | None) -> int:
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return _checked_seed(int(rng))
    return int(np.random.default_rng(rng).integers(SEED_LIMIT))


def _checked_seed(seed: int) -> int:
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"seed must be in [0, 2**63), found {seed}")
    return seed
