"""PNG plots (matplotlib, headless): training curves, confusion matrices, first-layer filters,
feature maps.

Filters are a figure: a mosaic of every filter's input channels with a colour bar and a
title (filter_mosaic builds the mosaic). Feature maps are saved as pixel-exact mosaics: tile k of K sits in row
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
MAX_FILTER_CHANNELS = 16  # input channels plot_filters shows when not told which
FILTER_DPI = 100
FILTER_MOSAIC_WIDTH = 720  # pixels the automatic scale makes the mosaic at least (about) this wide
FILTER_SEPARATOR = (0.25, 0.25, 0.25)  # dark grey between filters, and between a filter's channels


def plot_filters(layer_or_weights, path, channels=None, columns: int = 8, scale: int | None = None,
                 gap: int = 4, title: str | None = None) -> Path:
    """The filters of a Conv2D layer (or its weights (K, C, kh, kw)) as one image with a colour bar.

    Each filter is a block of its input channels side by side (left to right in channel order,
    gap // 2 pixels apart, at least 1); blocks sit `columns` to a row, `gap` pixels apart. Every weight is a
    scale x scale square (scale=None: large enough for a mosaic about 720 pixels wide, at least
    4), coloured on one scale shared by all filters: red positive, blue negative, white zero,
    the colour bar giving the values. channels: None for every input channel (the first 16 when
    there are more), an int, or a list of them; the title says which are shown. The notes'
    conv1 gives 32 blocks of one 5 x 5 tile. Returns the path."""
    weight = getattr(layer_or_weights, "weight", None)  # a Conv2D layer's Parameter
    weights = to_numpy(layer_or_weights if weight is None else weight.data)
    if weights.ndim != 4:
        raise ValueError(f"plot_filters: expected a Conv2D layer or its weights (K, C, kh, kw), "
                         f"got {type(layer_or_weights).__name__} of shape {weights.shape}")
    count, total, kh, kw = weights.shape
    shown = _filter_channels(channels, total)
    _check_mosaic_options(columns, 1 if scale is None else scale, gap)
    if scale is None:
        scale = max(4, math.ceil(FILTER_MOSAIC_WIDTH / (min(columns, count) * len(shown) * kw)))
    weights = weights.astype(np.float64)
    mosaic = filter_mosaic(weights, shown, columns, scale, gap, channel_gap=max(1, gap // 2))
    limit = float(np.abs(weights[:, shown]).max()) or 1.0
    title = title or f"{count} filters of {kh}x{kw}: {_channels_text(shown, total)}"
    return _save_filter_figure(mosaic, limit, title, path)


def filter_mosaic(weights: np.ndarray, channels: list[int], columns: int, scale: int, gap: int,
                  channel_gap: int = 1) -> np.ndarray:
    """weights (K, C, kh, kw) -> the mosaic (height, width) of plot_filters: filter k is the block
    in row k // columns, column k % columns, holding its `channels` as kh*scale x kw*scale tiles
    channel_gap pixels apart; blocks are `gap` pixels apart and framed by `gap`; NaN between tiles."""
    count, _, kh, kw = weights.shape
    columns = min(columns, count)
    block_h, block_w = kh * scale, len(channels) * (kw * scale + channel_gap) - channel_gap
    rows = math.ceil(count / columns)
    canvas = np.full((rows * (block_h + gap) + gap, columns * (block_w + gap) + gap), np.nan)
    for k in range(count):
        top = gap + (k // columns) * (block_h + gap)
        left = gap + (k % columns) * (block_w + gap)
        for j, channel in enumerate(channels):
            start = left + j * (kw * scale + channel_gap)
            canvas[top:top + block_h, start:start + kw * scale] = np.kron(weights[k, channel], np.ones((scale, scale)))
    return canvas


def _filter_channels(channels, total: int) -> list[int]:
    if channels is None:
        return list(range(min(total, MAX_FILTER_CHANNELS)))
    chosen = [channels] if isinstance(channels, (int, np.integer)) and not isinstance(channels, bool) else channels
    try:
        chosen = list(chosen)
    except TypeError:
        chosen = [channels]
    if not chosen or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in chosen):
        raise ValueError(f"plot_filters: channels must be None, an input channel or a list of them, got {channels!r}")
    bad = [int(c) for c in chosen if not 0 <= c < total]
    if bad:
        raise ValueError(f"plot_filters: channel {bad[0]} is not one of the {total} input channels "
                         f"(0..{total - 1})")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"plot_filters: channels lists a channel twice: {list(chosen)}")
    return [int(c) for c in chosen]


def _channels_text(shown: list[int], total: int) -> str:
    """'input channel 0 of 1', 'input channels 0-15 of 32', 'input channels 2, 5 of 8'."""
    if len(shown) == 1:
        return f"input channel {shown[0]} of {total}"
    consecutive = shown == list(range(shown[0], shown[0] + len(shown)))
    names = f"{shown[0]}-{shown[-1]}" if consecutive else ", ".join(map(str, shown))
    return f"input channels {names} of {total}, left to right in each filter"


def _save_filter_figure(mosaic: np.ndarray, limit: float, title: str, path) -> Path:
    """The mosaic at one pixel per element, a colour bar of +-limit beside it, the title above
    (sizes in inches at FILTER_DPI)."""
    import matplotlib

    plt = _pyplot()
    height, width = (size / FILTER_DPI for size in mosaic.shape)  # inches
    bar_height = max(height, 1.5)
    margin, bar_width, labels, top = 0.2, 0.15, 0.9, 0.5
    fig_width = margin + width + margin + bar_width + labels
    fig_height = margin + max(height, bar_height) + top
    fig = plt.figure(figsize=(fig_width, fig_height), dpi=FILTER_DPI)
    bottom = margin + max(height, bar_height) - height  # the mosaic's top level with the colour bar's
    ax = fig.add_axes((margin / fig_width, bottom / fig_height, width / fig_width, height / fig_height))
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad=FILTER_SEPARATOR)
    image = ax.imshow(mosaic, cmap=cmap, vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_axis_off()
    bar = fig.add_axes(((2 * margin + width) / fig_width, margin / fig_height, bar_width / fig_width,
                        bar_height / fig_height))
    fig.colorbar(image, cax=bar, label="weight")
    fig.suptitle(title, x=margin / fig_width, y=1 - 0.1 / fig_height, ha="left", va="top", fontsize=10)
    return _save_placed_figure(fig, path)


def _save_placed_figure(fig, path) -> Path:
    """Save a figure whose axes are placed by hand (no tight_layout), at its own size."""
    path = Path(path)
    fig.savefig(path, dpi=FILTER_DPI)
    _pyplot().close(fig)
    return path


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


def _check_mosaic_options(columns, scale, gap) -> None:
    for value, what in ((columns, "columns"), (scale, "scale")):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{what} must be an int >= 1, got {value!r}")
    if not isinstance(gap, int) or gap < 0:
        raise ValueError(f"gap must be an int >= 0, got {gap!r}")


def _save_mosaic(tiles: np.ndarray, path, cmap: str, separator, columns: int, scale: int, gap: int) -> Path:
    """tiles (K, h, w) in [0, 1] -> a PNG mosaic coloured by `cmap` on a `separator` RGB background."""
    import matplotlib
    import matplotlib.image

    _check_mosaic_options(columns, scale, gap)
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
