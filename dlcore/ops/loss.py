"""Softmax and softmax cross-entropy over the last axis of (N, K) logits.

log p[n, k] = z[n, k] - m[n] - log sum_j exp(z[n, j] - m[n]),  m[n] = max_j z[n, j]
loss        = -1/N sum_n sum_k t[n, k] log p[n, k]      (t: one-hot or probabilities)
dlogits     = (p - t) / N                               (rows of t summing to 1)

The GPU path (kernels/loss.cu) computes each row's max, log-sum-exp, loss and gradient row in
one warp, then the batch mean of the row losses in one block (a fixed order, no atomics).
"""

from __future__ import annotations

import numpy

from dlcore.backend import get_backend, to_backend
from dlcore.ops import launch
from dlcore.ops.checks import require_array, require_float, require_rank, require_shape
from dlcore.ops.launch import KernelFile, ceil_div


def _log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - numpy.log(numpy.exp(shifted).sum(axis=1, keepdims=True))


def softmax_cpu(logits):
    """NumPy reference of `softmax`."""
    require_float("softmax", "logits", logits)
    require_rank("softmax", "logits", logits, {2: "(N, K)"})
    return numpy.exp(_log_softmax(logits))


def _check_labels(op, labels, logits):
    """labels: integer class indices (N,) in [0, K), or targets (N, K) of ints or floats."""
    require_array(op, "labels", labels)
    batch, classes = logits.shape
    if labels.ndim == 1:
        if labels.dtype.kind not in "iu":
            raise ValueError(
                f"{op}: labels of shape (N,) must be integer class indices, got dtype {labels.dtype}"
            )
        if labels.shape[0] != batch:
            raise ValueError(f"{op}: labels hold {labels.shape[0]} samples but logits hold {batch}")
        bad = labels[(labels < 0) | (labels >= classes)]
        if bad.size:
            raise ValueError(f"{op}: labels must lie in [0, {classes}) for K={classes} classes, got {bad[0]}")
        return
    require_rank(op, "labels", labels, {1: f"({batch},) integer", 2: f"({batch}, {classes})"})
    if labels.shape[0] != batch:
        raise ValueError(f"{op}: labels hold {labels.shape[0]} samples but logits hold {batch}")
    if labels.shape[1] == 1 and classes > 1:
        as_ints = ".astype(int)" if labels.dtype.kind == "f" else ""
        raise ValueError(
            f"{op}: labels of shape ({batch}, 1) look like class indices in a column: squeeze them to shape "
            f"({batch},), e.g. labels.reshape(-1){as_ints}; one-hot or probability labels have shape ({batch}, {classes})"
        )
    require_shape(op, "labels", labels, logits.shape, "one-hot or probabilities per class")
    if labels.dtype.kind not in "iuf":
        raise ValueError(f"{op}: labels must be integer or float, got dtype {labels.dtype}")


def softmax_cross_entropy_cpu(logits, labels):
    """NumPy reference of `softmax_cross_entropy`."""
    op = "softmax_cross_entropy"
    require_float(op, "logits", logits)
    require_rank(op, "logits", logits, {2: "(N, K)"})
    _check_labels(op, labels, logits)
    dtype = logits.dtype.type
    batch = dtype(logits.shape[0])
    log_probs = _log_softmax(logits)
    dlogits = numpy.exp(log_probs)
    if labels.ndim == 1:
        rows = numpy.arange(logits.shape[0])
        loss = -log_probs[rows, labels].sum() / batch
        dlogits[rows, labels] -= dtype(1)
    else:
        targets = labels.astype(logits.dtype, copy=False)
        loss = -(targets * log_probs).sum() / batch
        dlogits -= targets
    dlogits /= batch
    return numpy.asarray(loss, dtype=logits.dtype), dlogits


# ---------------------------------------------------------------- CUDA launchers

_kernels = KernelFile(
    "loss.cu", ("softmax_cross_entropy_labels", "softmax_cross_entropy_targets", "batch_mean", "softmax_rows")
)
_ROWS_PER_BLOCK = 4  # ROWS_PER_BLOCK of loss.cu: a warp per row
_MEAN_BLOCK = 256  # threads of batch_mean's single block


def _launch_rows(name, dtype, batch, args):
    """A row kernel over `batch` rows (one block whose warps all leave when batch == 0)."""
    blocks = max(1, ceil_div(batch, _ROWS_PER_BLOCK))
    _kernels.get(name, dtype)((blocks,), (32 * _ROWS_PER_BLOCK,), args)


def softmax_gpu(logits):
    """CUDA launcher of `softmax`."""
    require_float("softmax", "logits", logits)
    require_rank("softmax", "logits", logits, {2: "(N, K)"})
    logits = launch.contiguous(logits)
    batch, classes = logits.shape
    probabilities = launch.empty(logits.shape, logits.dtype)  # (N, K)
    args = (logits, probabilities, launch.i32(batch), launch.i32(classes))
    _launch_rows("softmax_rows", logits.dtype, batch, args)
    return probabilities


def softmax_cross_entropy_gpu(logits, labels):
    """CUDA launcher of `softmax_cross_entropy`; labels are checked on the host first."""
    op = "softmax_cross_entropy"
    require_float(op, "logits", logits)
    require_rank(op, "logits", logits, {2: "(N, K)"})
    _check_labels(op, labels, logits)
    logits = launch.contiguous(logits)
    batch, classes = logits.shape
    dtype = logits.dtype
    if labels.ndim == 1:  # class indices, in [0, K) after the check
        name, labels = "softmax_cross_entropy_labels", labels.astype(numpy.int32, copy=False)
    else:  # one-hot or probabilities
        name, labels = "softmax_cross_entropy_targets", labels.astype(dtype, copy=False)
    row_loss = launch.empty((batch,), dtype)  # (N,)
    dlogits = launch.empty(logits.shape, dtype)  # (N, K)
    args = (logits, launch.contiguous(labels), row_loss, dlogits, launch.i32(batch), launch.i32(classes))
    _launch_rows(name, dtype, batch, args)
    loss = launch.empty((), dtype)  # 0-d
    _kernels.get("batch_mean", dtype)((1,), (_MEAN_BLOCK,), (row_loss, loss, launch.i32(batch)))
    return loss, dlogits


# ---------------------------------------------------------------- dispatchers


def softmax(logits):
    """logits (N, K) -> probabilities (N, K), rows summing to 1."""
    if get_backend().runs_kernels:
        return softmax_gpu(logits)
    return softmax_cpu(logits)


def _label_array(labels):
    """Labels given as a list or tuple (of class indices, or of one-hot rows), as PyTorch users
    pass them, as an array on the current backend; arrays as they are."""
    if isinstance(labels, (list, tuple, range)):
        return to_backend(numpy.asarray(labels))
    return labels


def softmax_cross_entropy(logits, labels):
    """logits (N, K); labels (N,) integer class indices or (N, K) one-hot/probabilities, as an
    array or a list -> (loss: 0-d array of logits' dtype, mean over the batch; dlogits (N, K))."""
    labels = _label_array(labels)
    if get_backend().runs_kernels:
        return softmax_cross_entropy_gpu(logits, labels)
    return softmax_cross_entropy_cpu(logits, labels)
