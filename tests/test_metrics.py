"""dlcore.metrics against hand-counted examples, and the confusion-matrix plot."""
import matplotlib.image
import numpy as np
import pytest

from dlcore.metrics import class_report, confusion_matrix, top_k_accuracy
from dlcore.plots import plot_confusion_matrix

LABELS = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
PREDICTED = np.array([0, 0, 1, 1, 2, 2, 2, 2, 0])


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    expected = [[2, 1, 0],
                [0, 1, 1],
                [1, 0, 3]]
    np.testing.assert_array_equal(confusion_matrix(LABELS, PREDICTED), expected)
    scores = np.eye(3)[PREDICTED] * 5 - 1  # logits whose argmax is PREDICTED
    np.testing.assert_array_equal(confusion_matrix(np.eye(3)[LABELS], scores), expected)
    assert confusion_matrix(LABELS, PREDICTED, num_classes=5).shape == (5, 5)
    with pytest.raises(ValueError, match="classes must lie in 0..1"):
        confusion_matrix(LABELS, PREDICTED, num_classes=2)
    with pytest.raises(ValueError, match="one class per sample"):
        confusion_matrix(LABELS, PREDICTED[:-1])


def test_class_report_precision_recall_support_and_accuracy():
    report = class_report(confusion_matrix(LABELS, PREDICTED), ["cat", "dog", "owl"])
    np.testing.assert_allclose(report.precision, [2 / 3, 1 / 2, 3 / 4])
    np.testing.assert_allclose(report.recall, [2 / 3, 1 / 2, 3 / 4])
    np.testing.assert_allclose(report.per_class_accuracy, report.recall)
    np.testing.assert_array_equal(report.support, [3, 2, 4])
    assert report.accuracy == pytest.approx(6 / 9)
    text = str(report).splitlines()
    assert text[0].split() == ["class", "precision", "recall", "support"]
    assert text[2].split() == ["dog", "0.5000", "0.5000", "2"]
    assert text[-1].split() == ["accuracy", "0.6667", "9"]


def test_a_class_never_predicted_has_undefined_precision():
    report = class_report(confusion_matrix([0, 1, 1], [0, 0, 0], num_classes=3))
    assert report.class_names == ("0", "1", "2")
    assert report.precision[0] == pytest.approx(1 / 3) and np.isnan(report.precision[1])
    assert report.recall[1] == 0 and np.isnan(report.recall[2])
    with pytest.raises(ValueError, match="2 class names for a 3-class"):
        class_report(np.eye(3, dtype=int), ["a", "b"])


def test_top_k_accuracy():
    scores = np.array([[0.1, 0.5, 0.4],   # label 2: second -> top-2 hit, top-1 miss
                       [0.7, 0.2, 0.1],   # label 0: first
                       [0.2, 0.3, 0.5]])  # label 0: third
    labels = np.array([2, 0, 0])
    assert top_k_accuracy(scores, labels, k=1) == pytest.approx(1 / 3)
    assert top_k_accuracy(scores, labels, k=2) == pytest.approx(2 / 3)
    assert top_k_accuracy(scores, labels, k=3) == 1.0
    assert top_k_accuracy(np.array([[0.5, 0.5, 0.0]]), np.array([1]), k=1) == 1.0  # ties favour the truth
    with pytest.raises(ValueError, match="k must be >= 1"):
        top_k_accuracy(scores, labels, k=0)


def test_confusion_matrix_plot(tmp_path):
    confusion = confusion_matrix(LABELS, PREDICTED)
    path = plot_confusion_matrix(confusion, tmp_path / "confusion.png", ["cat", "dog", "owl"], title="test")
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] >= 400 and image.shape[1] > image.shape[0]
    assert len(np.unique(image.reshape(-1, image.shape[2]), axis=0)) > 20  # cells, text, colour bar drawn
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        plot_confusion_matrix(confusion, tmp_path / "x.png", ["a", "b"])
    assert not (tmp_path / "x.png").exists()
