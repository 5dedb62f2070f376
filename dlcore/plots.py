"""PNG plots (matplotlib, headless): training curves, confusion matrices, first-layer filters,
feature maps.

Filters and feature maps are saved as pixel-exact mosaics: tile k of K sits in row
k // columns and column k % columns, each array element is a scale x scale block, and the
tiles are separated (and framed) by `gap` pixels of the separator colour, so an image of
K tiles of (h, w) is rows * (h * scale + gap) + gap pixels high and
columns * (w * scale + gap) + gap wide.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from dlcore.backend import to_numpy

LABELS = {"accuracy": "training (subset)", "val_accuracy": "validation (subset)",
          "loss": "training loss (running mean over the batches, training mode)",
          "val_loss": "validation loss (eval mode)"}
CURVE_DPI = 120


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ---- training curves
def plot_history(history, path, metrics=("accuracy", "val_accuracy"), title: str | None = None) -> Path:
    """Plot the chosen metrics of a History (or its dict) against the iteration; returns the path."""
    plt = _pyplot()
    records = getattr(history, "history", history)
    _check_metrics(records, metrics)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    _draw_curves(ax, records, metrics)
    if title:
        ax.set_title(title)
    return _save_figure(fig, path)


def plot_curves(history, path, title: str | None = None) -> Path:
    """Accuracy (left) and loss (right) against the iteration, training and validation
    where recorded: an 11 x 4.2 inch figure at 120 dpi (1320 x 504 pixels); returns the path.
    The training loss is fit's running mean over the batches since the previous evaluation,
    computed in training mode (dropout on, batch statistics), as its legend says; the
    validation loss is measured in eval mode, so the two are not strictly comparable."""
    plt = _pyplot()
    records = getattr(history, "history", history)
    panels = [[m for m in (name, f"val_{name}") if m in records] for name in ("accuracy", "loss")]
    _check_metrics(records, ())
    if not any(panels):
        raise KeyError(f"history has no accuracy or loss; it has {sorted(records)}")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metrics in zip(axes, panels):
        if metrics:
            _draw_curves(ax, records, metrics)
        else:
            ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return _save_figure(fig, path)


def _check_metrics(records, metrics):
    missing = [m for m in ("iteration", *metrics) if m not in records]
    if missing:
        raise KeyError(f"history has no {missing}; it has {sorted(records)}")


def _draw_curves(ax, records, metrics):
    for metric in metrics:
        ax.plot(records["iteration"], records[metric], marker="o", markersize=3,
                label=LABELS.get(metric, metric))
    ax.set_xlabel("iteration")
    ax.set_ylabel(", ".join(sorted({m.replace("val_", "") for m in metrics})))
    ax.grid(alpha=0.3)
    ax.legend()


def _save_figure(fig, path) -> Path:
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=CURVE_DPI)
    _pyplot().close(fig)
    return path


# ---- confusion matrix
def plot_confusion_matrix(confusion, path, class_names=None, title: str | None = None) -> Path:
    """The confusion matrix (K, K) (rows true class, columns predicted, as
    dlcore.metrics.confusion_matrix) as a heat map of each row's fractions (so the diagonal is
    each class's recall), every cell annotated with its count, a colour bar, class names on
    both axes. Returns the path."""
    plt = _pyplot()
    confusion = np.asarray(confusion)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"plot_confusion_matrix: expected a square (K, K) matrix, found {confusion.shape}")
    count = len(confusion)
    names = [str(k) for k in range(count)] if class_names is None else list(class_names)
    if len(names) != count:
        raise ValueError(f"plot_confusion_matrix: {len(names)} class names for {count} classes")
    rows = confusion.sum(axis=1, keepdims=True)
    fractions = confusion / np.where(rows > 0, rows, 1)  # (K, K), each row sums to 1 (or 0)
    side = max(4.0, 0.45 * count + 2)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    image = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="fraction of the true class")
    ax.set_xticks(range(count), names, rotation=45, ha="right")
    ax.set_yticks(range(count), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if count <= 30:  # counts stay legible up to about 30 classes
        for i in range(count):
            for j in range(count):
                ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if fractions[i, j] > 0.5 else "black")
    if title:
        ax.set_title(title)
    return _save_figure(fig, path)


# ---- filters and feature maps
def plot_filters(layer_or_weights, path, columns: int = 8, scale: int = 8, gap: int = 2,
                 channel: int = 0) -> Path:
    """One tile per filter of a Conv2D layer (or its weights (K, C, kh, kw)), input channel
    `channel`, on one shared colour scale: red positive, blue negative, white zero; tiles
    separated by dark grey. The notes' conv1 gives 32 tiles of 5 x 5. Returns the path."""
    weight = getattr(layer_or_weights, "weight", None)  # a Conv2D layer's Parameter
    weights = to_numpy(layer_or_weights if weight is None else weight.data)
    if weights.ndim != 4:
        raise ValueError(f"plot_filters: expected a Conv2D layer or its weights (K, C, kh, kw), "
                         f"got {type(layer_or_weights).__name__} of shape {weights.shape}")
    if not 0 <= channel < weights.shape[1]:
        raise ValueError(f"plot_filters: channel {channel} is not one of the {weights.shape[1]} input channels")
    tiles = weights[:, channel].astype(np.float64)  # (K, kh, kw)
    limit = np.abs(tiles).max() or 1.0
    return _save_mosaic((tiles / limit + 1) / 2, path, "RdBu_r", (0.25, 0.25, 0.25), columns, scale, gap)


def plot_feature_maps(model, layer_name: str, image, path, columns: int = 8, scale: int = 4,
                      gap: int = 2) -> Path:
    """The activations of layer `layer_name` for one image, one tile per channel, each
    scaled to its own range (dark low, bright high); tiles separated by white.

    image: (H, W), (C, H, W) or (1, C, H, W); the model runs in eval mode up to the layer
    (Model.features). Unknown layer names raise KeyError listing the valid ones; a layer
    whose output is not (C, H, W) per image raises ValueError. Returns the path.
    """
    image = np.asarray(image)
    batch = {2: image[None, None], 3: image[None], 4: image}.get(image.ndim)
    if batch is None or batch.shape[0] != 1:
        raise ValueError(f"plot_feature_maps: expected one image (H, W), (C, H, W) or (1, C, H, W), "
                         f"got shape {image.shape}")
    maps = model.features(batch, layer_name)[0].astype(np.float64)
    if maps.ndim != 3:
        raise ValueError(f"plot_feature_maps: layer {layer_name!r} gives {maps.shape} per image, "
                         "not feature maps (C, H, W)")
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    tiles = (maps - low) / np.where(span > 0, span, 1.0)
    return _save_mosaic(tiles, path, "viridis", (1.0, 1.0, 1.0), columns, scale, gap)


def mosaic_shape(count: int, tile_shape: tuple[int, int], columns: int, scale: int, gap: int) -> tuple[int, int]:
    """(height, width) in pixels of the mosaic of `count` tiles of tile_shape (h, w)."""
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    h, w = tile_shape
    return rows * (h * scale + gap) + gap, columns * (w * scale + gap) + gap


def _save_mosaic(tiles: np.ndarray, path, cmap: str, separator, columns: int, scale: int, gap: int) -> Path:
    """tiles (K, h, w) in [0, 1] -> a PNG mosaic coloured by `cmap` on a `separator` RGB background."""
    import matplotlib
    import matplotlib.image

    for value, what in ((columns, "columns"), (scale, "scale")):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{what} must be an int >= 1, got {value!r}")
    if not isinstance(gap, int) or gap < 0:
        raise ValueError(f"gap must be an int >= 0, got {gap!r}")
    count, h, w = tiles.shape
    columns = min(columns, count)
    height, width = mosaic_shape(count, (h, w), columns, scale, gap)
    canvas = np.empty((height, width, 4))
    canvas[...] = (*separator, 1.0)
    colours = matplotlib.colormaps[cmap](tiles)  # (K, h, w, 4)
    for k, tile in enumerate(colours):
        top = gap + (k // columns) * (h * scale + gap)
        left = gap + (k % columns) * (w * scale + gap)
        canvas[top:top + h * scale, left:left + w * scale] = np.repeat(np.repeat(tile, scale, 0), scale, 1)
    path = Path(path)
    matplotlib.image.imsave(path, canvas)
    return path
