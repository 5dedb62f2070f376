"""PNG plots: training curves, first-layer filters and feature maps, read back pixel by pixel."""
import matplotlib
import matplotlib.image
import numpy as np
import pytest

from dlcore.data import load_mnist
from dlcore.history import History
from dlcore.plots import mosaic_shape, plot_curves, plot_feature_maps, plot_filters, plot_history
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


def test_first_layer_filters_form_a_grid_of_5x5_tiles(tmp_path):
    conv1 = mnist_cnn(rng=0)["conv1"]
    conv1.weight.data[...] = 0
    conv1.weight.data[3, 0, 1, 2] = 0.5   # filter 3: one positive weight at row 1, column 2
    conv1.weight.data[9, 0, 4, 4] = -0.5  # filter 9: one negative weight in its corner
    image = read_png(plot_filters(conv1, tmp_path / "filters.png", columns=8, scale=8, gap=2))
    assert image.shape[:2] == mosaic_shape(32, (5, 5), 8, 8, 2) == (4 * 42 + 2, 8 * 42 + 2)

    cmap = matplotlib.colormaps["RdBu_r"]
    three, nine = tile(image, 3, (5, 5), 8, 8, 2), tile(image, 9, (5, 5), 8, 8, 2)
    np.testing.assert_allclose(three[8:16, 16:24], np.broadcast_to(cmap(1.0), (8, 8, 4)), atol=PNG_STEP)
    np.testing.assert_allclose(nine[32:40, 32:40], np.broadcast_to(cmap(0.0), (8, 8, 4)), atol=PNG_STEP)
    np.testing.assert_allclose(three[:8, :8], np.broadcast_to(cmap(0.5), (8, 8, 4)), atol=PNG_STEP)  # zero
    np.testing.assert_allclose(image[:2], np.broadcast_to((0.25, 0.25, 0.25, 1), image[:2].shape), atol=PNG_STEP)
    np.testing.assert_allclose(image[:, 42:44], np.broadcast_to((0.25, 0.25, 0.25, 1), (170, 2, 4)), atol=PNG_STEP)

    weights = np.random.default_rng(0).standard_normal((6, 3, 5, 5))
    image = read_png(plot_filters(weights, tmp_path / "raw.png", columns=4, scale=3, gap=1, channel=2))
    assert image.shape[:2] == mosaic_shape(6, (5, 5), 4, 3, 1) == (2 * 16 + 1, 4 * 16 + 1)


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
    ("channel", "channel 1 is not one of the 1 input channels"),
])
def test_filter_errors(tmp_path, bad, match):
    model = mnist_cnn(rng=0)
    with rejects(ValueError, match=match):
        if bad == "dense":
            plot_filters(model["fc1"], tmp_path / "x.png")
        else:
            plot_filters(model["conv1"], tmp_path / "x.png", channel=1)


def test_curve_legends_say_the_training_loss_is_a_running_mean_in_training_mode(tmp_path, monkeypatch):
    legends = []

    def record_legends(fig, path):
        legends.extend(text.get_text() for ax in fig.axes if ax.get_legend() for text in ax.get_legend().get_texts())
        return path

    monkeypatch.setattr("dlcore.plots._save_figure", record_legends)
    plot_curves(history(), tmp_path / "curves.png")
    assert "training loss (running mean over the batches, training mode)" in legends
    assert "validation loss (eval mode)" in legends
