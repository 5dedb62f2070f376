"""Hold-out validation split."""
from __future__ import annotations

import operator

import numpy as np

from dlcore.data.arrays import common_length


def train_validation_split(
    images: np.ndarray, labels: np.ndarray, validation_size: int = 5000
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Hold out the LAST `validation_size` samples for validation, as TensorFlow's classic
    input_data did (MNIST train: 55,000 training / 5,000 validation).

    images (N, ...), labels (N,)
    Returns ((x_train, y_train), (x_val, y_val)): views of shapes (N - V, ...), (N - V,)
    and (V, ...), (V,) with V = validation_size, 0 <= V <= N.
    """
    n_samples = common_length((images, labels), ("images", "labels"))
    validation_size = operator.index(validation_size)
    if not 0 <= validation_size <= n_samples:
        raise ValueError(
            f"validation_size must be between 0 and {n_samples} (the number of samples), "
            f"found {validation_size}"
        )
    n_train = n_samples - validation_size
    return (images[:n_train], labels[:n_train]), (images[n_train:], labels[n_train:])
