"""PNG plots: training curves, first-layer filters and feature maps, read back pixel by pixel."""
import matplotlib
import matplotlib.image
import numpy as np
import pytest

from dlcore.data import load_mnist
from dlcore.history import History
from dlcore.plots import filter_mosaic, mosaic_shape, plot_curves, plot_feature_maps, plot_filters, plot_history
from dlcore.zoo import mnist_cnn
from tests.robustness import rejects

PNG_STEP = 1 / 255 + 1e-6  # 8-bit colour channels


def read_png(path):
    assert path.stat().st_size > 0
    return matplotlib.image.imread(path)  # (H, W, 4) floats in [0, 1]


def tile(image, k, tile_shape, columns, scale, gap):
    """The pixels of tile k of a mosaic (see dlcore.plots)."""
    h, w = tile_shape[0] * scale, tile_shape[1] * scale
    top, left = gap + (k // columns) * (h + gap), gap + (k % columns) * (w + gap)
    return image[top:top + h, left:left + w]


def history():
    h = History()
    for i, (loss, acc) in enumerate([(2.0, 0.3), (1.0, 0.7), (0.5, 0.9)], start=1):
        h.record(iteration=100 * i, loss=loss, accuracy=acc, val_loss=loss * 1.1, val_accuracy=acc - 0.05)
    return h


def test_training_curves_are_written_at_their_pixel_size(tmp_path):
    image = read_png(plot_curves(history(), tmp_path / "curves.png", title="run"))
    assert image.shape == (504, 1320, 4)
    only_loss = {"iteration": [1, 2], "loss": [1.0, 0.5]}
    assert read_png(plot_curves(only_loss, tmp_path / "loss.png")).shape == (504, 1320, 4)
    assert read_png(plot_history(history(), tmp_path / "acc.png")).shape == (540, 840, 4)
    with rejects(KeyError, match="history has no accuracy or loss"):
        plot_curves({"iteration": [1]}, tmp_path / "none.png")
    with rejects(KeyError, match=r"history has no \['val_accuracy'\]"):
        plot_history({"iteration": [1], "accuracy": [0.5]}, tmp_path / "none.png")


def test_filter_mosaic_places_every_channel_of_every_filter():
    weights = np.zeros((5, 3, 2, 3))
    weights[4, 2, 1, 0] = 0.5  # filter 4 (row 1, column 1 of a 3-column grid), channel 2, weight (1, 0)
    mosaic = filter_mosaic(weights, [0, 2], columns=3, scale=2, gap=3, channel_gap=1)
    block_h, block_w = 2 * 2, 2 * (3 * 2 + 1) - 1  # two channel tiles of 4 x 6, 1 pixel apart
    assert mosaic.shape == (2 * (block_h + 3) + 3, 3 * (block_w + 3) + 3) == (17, 51)
    top, left = 3 + block_h + 3, 3 + block_w + 3  # filter 4's block
    second = left + 3 * 2 + 1  # its second tile: channel 2
    np.testing.assert_array_equal(mosaic[top + 2:top + 4, second:second + 2], 0.5)
    assert np.nansum(mosaic) == 0.5 * 4  # one weight, a 2 x 2 square
    assert np.isnan(mosaic[:3]).all() and np.isnan(mosaic[:, left - 3:left]).all()  # frame and gaps
    assert np.isnan(mosaic[top:top + block_h, left + 6]).all()  # between a filter's channels
    assert not np.isnan(mosaic[3:3 + block_h, 3:3 + 6]).any()  # filter 0's first tile is all weights
    assert np.isnan(mosaic[top:, 3 * 3 + 2 * block_w:]).all()  # no sixth filter: background


def _captured_figure(monkeypatch):
    """plot_filters' figure, kept open instead of saved."""
    figures = []
    monkeypatch.setattr("dlcore.plots._save_placed_figure", lambda fig, path: figures.append(fig) or path)
    return figures


def test_filters_of_every_input_channel_with_a_colour_bar(tmp_path, monkeypatch):
    weights = np.random.default_rng(0).normal(0, 0.1, (6, 3, 5, 5))
    weights[2, 1, 0, 0] = -0.9  # the largest magnitude: the colour scale is +-0.9
    figures = _captured_figure(monkeypatch)
    plot_filters(weights, tmp_path / "rgb.png", columns=4, scale=6)
    (fig,) = figures
    image_ax, bar_ax = fig.axes
    (image,) = image_ax.get_images()
    np.testing.assert_array_equal(image.get_array().filled(np.nan), filter_mosaic(weights, [0, 1, 2], 4, 6, 4, 2))
    assert image.get_clim() == (-0.9, 0.9) and image.get_cmap().name.startswith("RdBu_r")
    assert bar_ax.get_ylabel() == "weight"
    assert fig._suptitle.get_text() == "6 filters of 5x5: input channels 0-2 of 3, left to right in each filter"
    # at one pixel per mosaic element: the mosaic's own size in the figure
    width, height = image_ax.get_window_extent().width, image_ax.get_window_extent().height
    assert (round(height), round(width)) == image.get_array().shape


@pytest.mark.parametrize("channels, shown, text", [
    (None, list(range(16)), "input channels 0-15 of 32"),
    (5, [5], "input channel 5 of 32"),
    ([3, 0, 7], [3, 0, 7], "input channels 3, 0, 7 of 32"),
])
def test_filters_say_which_input_channels_they_show(tmp_path, monkeypatch, channels, shown, text):
    conv2 = mnist_cnn(rng=0)["conv2"]  # 64 filters of 32 channels
    figures = _captured_figure(monkeypatch)
    plot_filters(conv2, tmp_path / "conv2.png", channels=channels, scale=4)
    (image,) = figures[0].axes[0].get_images()
    expected = filter_mosaic(conv2.weight.data.astype(np.float64), shown, 8, 4, 4, 2)
    np.testing.assert_array_equal(image.get_array().filled(np.nan), expected)
    assert text in figures[0]._suptitle.get_text()


def test_the_first_layer_filters_png_is_readable(tmp_path):
    """The notes' conv1: 32 tiles of 5 x 5, scaled to a mosaic about 720 pixels wide, the
    strongest weight in the colour map's end colour."""
    conv1 = mnist_cnn(rng=0)["conv1"]
    conv1.weight.data[...] = 0
    conv1.weight.data[3, 0, 1, 2] = 0.5  # one positive weight
    image = read_png(plot_filters(conv1, tmp_path / "filters.png"))
    scale = 18  # ceil(720 / (8 filters * 5 columns))
    mosaic_height, mosaic_width = filter_mosaic(conv1.weight.data, [0], 8, scale, 4).shape
    assert image.shape[0] > mosaic_height and image.shape[1] > mosaic_width >= 720
    strongest = np.abs(image - matplotlib.colormaps["RdBu_r"](1.0)).max(axis=2) <= PNG_STEP
    assert (scale - 1) ** 2 <= strongest.sum() <= (scale + 1) ** 2 + 40  # the weight's square (+ the bar's top)


def test_feature_maps_of_a_chosen_layer_for_one_image(tmp_path, mnist_path):
    images, _ = load_mnist("test", data_dir=mnist_path)
    model = mnist_cnn(rng=0).train()
    conv1 = read_png(plot_feature_maps(model, "conv1", images[0], tmp_path / "conv1.png"))
    assert conv1.shape[:2] == mosaic_shape(32, (28, 28), 8, 4, 2) == (4 * 114 + 2, 8 * 114 + 2)
    pool2 = read_png(plot_feature_maps(model, "pool2", images[0, 0], tmp_path / "pool2.png", columns=16))
    assert pool2.shape[:2] == mosaic_shape(64, (7, 7), 16, 4, 2)
    assert model.training  # features run in eval mode and give the mode back

    maps = model.features(images[:1], "conv1")[0]  # (32, 28, 28)
    k = int(np.argmax(maps.max(axis=(1, 2)) - maps.min(axis=(1, 2))))
    pixels = tile(conv1, k, (28, 28), 8, 4, 2).reshape(-1, 4)
    cmap = matplotlib.colormaps["viridis"]
    for end in (0.0, 1.0):  # each map is scaled to its own range: both ends of the colour map appear
        assert np.abs(pixels - cmap(end)).max(axis=1).min() <= PNG_STEP


def test_feature_map_errors_name_the_layers(tmp_path):
    model = mnist_cnn(rng=0)
    image = np.zeros((1, 28, 28), np.float32)
    with rejects(KeyError, match="no layer 'conv3'; its layers are: conv1, pool1, conv2"):
        plot_feature_maps(model, "conv3", image, tmp_path / "x.png")
    with rejects(ValueError, match=r"layer 'fc1' gives \(1024,\) per image, not feature maps"):
        plot_feature_maps(model, "fc1", image, tmp_path / "x.png")
    with rejects(ValueError, match=r"expected one image .* got shape \(2, 1, 28, 28\)"):
        plot_feature_maps(model, "conv1", np.zeros((2, 1, 28, 28), np.float32), tmp_path / "x.png")
    with rejects(ValueError, match="columns must be an int >= 1"):
        plot_feature_maps(model, "conv1", image, tmp_path / "x.png", columns=0)
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("bad, match", [
    ("dense", r"expected a Conv2D layer or its weights \(K, C, kh, kw\), got Dense of shape \(3136, 1024\)"),
    ("channel", r"channel 1 is not one of the 1 input channels \(0..0\)"),
    ("twice", r"channels lists a channel twice: \[0, 0\]"),
    ("text", "channels must be None, an input channel or a list of them, got 'red'"),
    ("scale", "scale must be an int >= 1, got 0"),
])
def test_filter_errors(tmp_path, bad, match):
    model = mnist_cnn(rng=0)
    with rejects(ValueError, match=match):
        if bad == "dense":
            plot_filters(model["fc1"], tmp_path / "x.png")
        else:
            options = {"channel": {"channels": 1}, "twice": {"channels": [0, 0]}, "text": {"channels": "red"},
                       "scale": {"scale": 0}}[bad]
            plot_filters(model["conv1"], tmp_path / "x.png", **options)


def test_curve_legends_say_the_training_loss_is_a_running_mean_in_training_mode(tmp_path, monkeypatch):
    legends = []

    def record_legends(fig, path):
        legends.extend(text.get_text() for ax in fig.axes if ax.get_legend() for text in ax.get_legend().get_texts())
        return path

    monkeypatch.setattr("dlcore.plots._save_figure", record_legends)
    plot_curves(history(), tmp_path / "curves.png")
    assert "training loss (running mean over the batches, training mode)" in legends
    assert "validation loss (eval mode)" in legends
