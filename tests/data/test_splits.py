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


def test_a_shuffled_split_is_a_seeded_random_partition_in_file_order():
    images, labels = np.arange(100).reshape(50, 2), np.arange(50) % 5
    (x_train, y_train), (x_val, y_val) = train_validation_split(images, labels, 10, shuffle=True, seed=4)
    assert len(x_train) == 40 and len(x_val) == 10
    rows = np.concatenate([x_train[:, 0], x_val[:, 0]]) // 2
    assert sorted(rows.tolist()) == list(range(50))
    assert np.all(np.diff(x_val[:, 0]) > 0) and np.all(np.diff(x_train[:, 0]) > 0)
    assert x_val[:, 0].tolist() != list(range(80, 100, 2))  # not the last samples
    again = train_validation_split(images, labels, 10, shuffle=True, seed=4)[1][0]
    np.testing.assert_array_equal(again, x_val)
    other = train_validation_split(images, labels, 10, shuffle=True, seed=5)[1][0]
    assert other.tolist() != x_val.tolist()
    np.testing.assert_array_equal(y_val, labels[x_val[:, 0] // 2])


def test_a_stratified_split_keeps_each_class_share():
    labels = np.repeat([0, 1, 2], [60, 30, 10])  # 60%, 30%, 10%
    images = np.arange(100)
    (_, y_train), (x_val, y_val) = train_validation_split(images, labels, 20, shuffle=True, stratify=True, seed=0)
    assert np.bincount(y_val).tolist() == [12, 6, 2] and np.bincount(y_train).tolist() == [48, 24, 8]
    np.testing.assert_array_equal(labels[x_val], y_val)
    # 7 of [5, 3, 2] samples: quotas 3.5, 2.1, 1.4 -> floors 3, 2, 1 and the largest remainder gets the last
    _, (_, y_odd) = train_validation_split(np.arange(10), np.repeat([0, 1, 2], [5, 3, 2]), 7, shuffle=True,
                                           stratify=True, seed=1)
    assert np.bincount(y_odd).tolist() == [4, 2, 1]
    with pytest.raises(ValueError, match="pass shuffle=True"):
        train_validation_split(images, labels, 20, stratify=True)
