"""Losses as objects that remember their gradient: `loss = fn(logits, y); dlogits = fn.backward()`."""
from __future__ import annotations

from dlcore.ops import softmax_cross_entropy


class SoftmaxCrossEntropy:
    """Mean softmax cross-entropy from logits (N, K) and labels: integers (N,) or one-hot (N, K),
    as an array or a list."""

    def __init__(self):
        self._dlogits = None

    def __call__(self, logits, labels):
        """The mean loss as a 0-d array on the logits' backend."""
        loss, self._dlogits = softmax_cross_entropy(logits, labels)
        return loss

    def backward(self):
        """dL/dlogits of the last call, (N, K)."""
        if self._dlogits is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward() called before the loss was computed")
        return self._dlogits
