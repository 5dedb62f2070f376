"""Classification results people read: confusion matrix, per-class scores, top-k accuracy.

Conventions (as scikit-learn's confusion_matrix): confusion[i, j] counts the samples of
true class i predicted as class j, so a row sums to the class's sample count (its support)
and a column to the number of predictions of that class. Per class k:
  precision_k = confusion[k, k] / column k sum   (of the samples predicted k, how many are k)
  recall_k    = confusion[k, k] / row k sum      (of the samples of class k, how many were found)
  accuracy_k  = recall_k                          (torchmetrics' per-class accuracy, average=None)
A score whose denominator is 0 is NaN (undefined), not a misleading 0.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def confusion_matrix(labels, predictions, num_classes: int | None = None) -> np.ndarray:
    """int64 (K, K) counts, rows the true class, columns the predicted one.

    labels       int (N,) true classes, or one-hot / probabilities (N, K)
    predictions  int (N,) predicted classes, or scores / logits (N, K) (argmax taken)
    num_classes  K; default the largest class seen + 1 (or the scores' width)
    """
    labels, predictions = _classes(labels, "labels"), _classes(predictions, "predictions")
    if labels.shape != predictions.shape:
        raise ValueError(f"labels and predictions must have one class per sample: {labels.shape} vs {predictions.shape}")
    seen = int(max(labels.max(initial=-1), predictions.max(initial=-1))) + 1
    count = seen if num_classes is None else int(num_classes)
    if seen > count or min(labels.min(initial=0), predictions.min(initial=0)) < 0:
        raise ValueError(f"classes must lie in 0..{count - 1}, found {min(labels.min(), predictions.min())}.."
                         f"{seen - 1}")
    return np.bincount(labels * count + predictions, minlength=count * count).reshape(count, count)


def top_k_accuracy(scores, labels, k: int = 5) -> float:
    """Fraction of samples whose true class is among the k highest of its scores (N, K).

    A class ranks by the number of classes with a strictly higher score, so ties favour the
    true class (as sklearn's top_k_accuracy_score); k >= K gives 1.
    """
    scores = np.asarray(scores)
    labels = _classes(labels, "labels")
    if scores.ndim != 2 or len(scores) != len(labels):
        raise ValueError(f"scores must be (N, K) with N = {len(labels)} labels, found {scores.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, found {k}")
    true_scores = scores[np.arange(len(labels)), labels][:, None]  # (N, 1)
    rank = (scores > true_scores).sum(axis=1)  # (N,): classes scored above the true one
    return float(np.mean(rank < k))


@dataclass(frozen=True)
class ClassReport:
    """Per-class scores of a confusion matrix; arrays of shape (K,)."""

    class_names: tuple[str, ...]
    precision: np.ndarray
    recall: np.ndarray
    support: np.ndarray  # samples of each true class
    accuracy: float  # overall: trace / total

    @property
    def per_class_accuracy(self) -> np.ndarray:
        return self.recall

    def __str__(self) -> str:
        """A table: one row per class (precision, recall = per-class accuracy, support), then
        the overall accuracy."""
        width = max(12, *(len(name) for name in self.class_names))
        lines = [f"{'class':<{width}}  precision     recall    support"]
        for name, p, r, n in zip(self.class_names, self.precision, self.recall, self.support):
            lines.append(f"{name:<{width}}  {p:9.4f}  {r:9.4f}  {n:9d}")
        lines.append(f"{'accuracy':<{width}}  {'':9}  {self.accuracy:9.4f}  {int(self.support.sum()):9d}")
        return "\n".join(lines)


def class_report(confusion: np.ndarray, class_names: Sequence[str] | None = None) -> ClassReport:
    """Precision, recall (= per-class accuracy) and support of each class, and the overall
    accuracy, from a confusion matrix (K, K); class_names default to '0'..'K-1'."""
    confusion = np.asarray(confusion)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"confusion must be a square (K, K) matrix, found {confusion.shape}")
    names = tuple(str(k) for k in range(len(confusion))) if class_names is None else tuple(class_names)
    if len(names) != len(confusion):
        raise ValueError(f"{len(names)} class names for a {len(confusion)}-class confusion matrix")
    hits = np.diag(confusion).astype(np.float64)  # (K,)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = hits / confusion.sum(axis=0)
        recall = hits / confusion.sum(axis=1)
    total = confusion.sum()
    return ClassReport(names, precision, recall, confusion.sum(axis=1), float(hits.sum() / total) if total else np.nan)


def _classes(values, what: str) -> np.ndarray:
    """int64 (N,) classes from int (N,) or scores (N, K) (argmax)."""
    values = np.asarray(values)
    if values.ndim == 2:
        return values.argmax(axis=1)
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"{what} must be integer classes (N,) or scores (N, K), found {values.dtype} {values.shape}")
    return values.astype(np.int64)
