"""Hold-out validation split: the last samples (the notes' MNIST convention), or a seeded
random one, optionally stratified by class."""
from __future__ import annotations

import operator

import numpy as np

from dlcore.data.arrays import common_length
from dlcore.seeding import as_generator


def train_validation_split(
    images: np.ndarray,
    labels: np.ndarray,
    validation_size: int = 5000,
    *,
    shuffle: bool = False,
    stratify: bool = False,
    seed: int | np.random.Generator | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Hold out `validation_size` samples for validation.

    Default: the LAST validation_size samples in file order, as TensorFlow's classic
    input_data did (MNIST train: 55,000 training / 5,000 validation); the parts are views.
    shuffle=True: a random set drawn with `seed` (an int, a Generator, or None for dlcore's
    default generator); stratify=True (with shuffle) keeps each class's share of the
    validation set as close to its share of the data as whole samples allow (largest
    remainders). Random parts are copies that keep the samples in file order.

    images (N, ...), labels (N,) integer classes (or (N, K) one-hot for stratify)
    Returns ((x_train, y_train), (x_val, y_val)) of N - V and V samples, 0 <= V <= N.
    """
    n_samples = common_length((images, labels), ("images", "labels"))
    validation_size = operator.index(validation_size)
    if not 0 <= validation_size <= n_samples:
        raise ValueError(
            f"validation_size must be between 0 and {n_samples} (the number of samples), "
            f"found {validation_size}"
        )
    if stratify and not shuffle:
        raise ValueError("stratify=True draws the validation set at random: pass shuffle=True as well")
    if not shuffle:
        n_train = n_samples - validation_size
        return (images[:n_train], labels[:n_train]), (images[n_train:], labels[n_train:])
    rng = as_generator(seed)
    if stratify:
        held_out = _stratified_choice(np.asarray(labels), validation_size, rng)
    else:
        held_out = rng.choice(n_samples, size=validation_size, replace=False)
    is_validation = np.zeros(n_samples, bool)
    is_validation[held_out] = True
    train_rows, validation_rows = np.flatnonzero(~is_validation), np.flatnonzero(is_validation)
    return (images[train_rows], labels[train_rows]), (images[validation_rows], labels[validation_rows])


def _stratified_choice(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """`size` row indices, each class c getting floor(size * n_c / N) plus one for the
    classes with the largest remainders (ties to the lower class), drawn at random within it."""
    classes = labels.argmax(axis=1) if labels.ndim == 2 else labels
    values, inverse, counts = np.unique(classes, return_inverse=True, return_counts=True)
    quotas = size * counts / len(classes)  # (C,)
    taken = np.floor(quotas).astype(np.int64)
    leftover = size - int(taken.sum())
    taken[np.argsort(-(quotas - taken), kind="stable")[:leftover]] += 1
    return np.concatenate([rng.choice(np.flatnonzero(inverse == c), size=taken[c], replace=False)
                           for c in range(len(values))])
