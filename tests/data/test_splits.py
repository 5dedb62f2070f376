"""train_validation_split: the last samples are held out."""
import numpy as np
import pytest

from dlcore.data import train_validation_split


def test_the_last_samples_are_the_validation_set():
    images, labels = np.arange(40).reshape(10, 2, 2), np.arange(10)
    (x_train, y_train), (x_val, y_val) = train_validation_split(images, labels, validation_size=3)
    assert x_train.shape == (7, 2, 2) and y_train.tolist() == list(range(7))
    assert x_val.shape == (3, 2, 2) and y_val.tolist() == [7, 8, 9]
    assert np.shares_memory(x_val, images)


def test_edge_sizes_and_errors():
    images, labels = np.zeros((4, 1)), np.zeros(4)
    assert len(train_validation_split(images, labels, 0)[1][1]) == 0
    assert len(train_validation_split(images, labels, 4)[0][1]) == 0
    with pytest.raises(ValueError, match="between 0 and 4"):
        train_validation_split(images, labels, 5)
    with pytest.raises(ValueError, match="images has 4, labels has 3"):
        train_validation_split(images, labels[:3])
