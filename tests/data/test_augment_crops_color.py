"""RandomCrop, RandomResizedCrop, Cutout, ColorJitter and Normalize against independent
expectations (np.pad windows, skimage.transform.resize, torchvision's formulas written out)."""
import numpy as np
import pytest
from skimage.transform import resize

import dlcore
from dlcore.data import (ColorJitter, Compose, Cutout, Normalize, RandomCrop, RandomFlip, RandomResizedCrop)
from dlcore.layers import Conv2D, Dense, Flatten
from dlcore.optim import SGD
from tests.robustness import rejects


def images(n=4, channels=3, height=8, width=8, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).random((n, channels, height, width)).astype(dtype)


def _offsets(window, padded):
    """Every (top, left) at which `window` (C, h, w) lies in `padded` (C, H, W)."""
    _, h, w = window.shape
    return [(t, l) for t in range(padded.shape[1] - h + 1) for l in range(padded.shape[2] - w + 1)
            if np.array_equal(padded[:, t:t + h, l:l + w], window)]


# ---- RandomCrop
@pytest.mark.parametrize("mode, options", [("constant", {"constant_values": -1.0}), ("reflect", {}), ("edge", {})])
def test_random_crop_takes_windows_of_the_padded_image_at_every_offset(mode, options):
    x = images(n=300, height=6, width=5)
    out = RandomCrop((6, 5), padding=2, mode=mode, cval=-1.0)(x, rng=0)
    assert out.shape == (300, 3, 6, 5) and out.dtype == np.float32
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), mode=mode, **options)
    found = set()
    for window, image in zip(out, padded):
        offsets = _offsets(window, image)
        assert offsets, "each crop is a window of its padded image"
        found.update(offsets)
    assert found == {(t, l) for t in range(5) for l in range(5)}  # every position is drawn


def test_random_crop_without_padding_of_the_full_size_is_the_identity_and_smaller_sizes_crop():
    x = images(height=7, width=9)
    np.testing.assert_array_equal(RandomCrop((7, 9))(x, rng=0), x)
    out = RandomCrop(4)(x, rng=1)
    assert out.shape == (4, 3, 4, 4)
    assert all(_offsets(window, image) for window, image in zip(out, x))


def test_random_crop_larger_than_the_padded_image_says_what_to_do():
    with rejects(ValueError, match=r"RandomCrop: crop size \(12, 12\) is larger than the padded images \(10, 10\); "
                                   "use a smaller size or more padding"):
        RandomCrop(12, padding=1)(images(), rng=0)


# ---- RandomResizedCrop
def test_resized_crop_windows_follow_the_scale_and_ratio_ranges():
    crop = RandomResizedCrop(8, scale=(0.2, 0.6), ratio=(0.5, 2.0))
    rng = np.random.default_rng(0)
    windows = [crop.window(40, 60, rng) for _ in range(500)]
    for top, left, h, w in windows:
        assert 0 <= top <= 40 - h and 0 <= left <= 60 - w
        assert 0.2 * 2400 * 0.9 <= h * w <= 0.6 * 2400 * 1.1  # the areas drawn, up to rounding h and w
        assert 0.5 * 0.85 <= w / h <= 2.0 * 1.15
    areas = np.array([h * w for _, _, h, w in windows]) / 2400
    assert areas.min() < 0.25 and areas.max() > 0.55  # the range is covered


def test_resized_crop_of_the_whole_image_is_skimage_resize():
    x = images(n=2, height=10, width=15)
    out = RandomResizedCrop((4, 6), scale=(1.0, 1.0), ratio=(1.5, 1.5))(x, rng=0)
    for got, image in zip(out, x):
        expected = resize(image, (3, 4, 6), order=1, preserve_range=True, anti_aliasing=True)
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_resized_crop_falls_back_to_the_centred_window_of_the_nearest_ratio():
    """A 10 x 10 image cannot hold a window of ratio 5..6 covering 90% or more: after ten draws,
    the full-width centred window of ratio 5 (h = 2)."""
    crop = RandomResizedCrop((2, 10), scale=(0.9, 1.0), ratio=(5.0, 6.0), order=0)
    assert crop.window(10, 10, np.random.default_rng(0)) == (4, 0, 2, 10)
    x = images(n=1, height=10, width=10)
    np.testing.assert_array_equal(crop(x, rng=0)[0], x[0, :, 4:6, :])


# ---- Cutout
def test_cutout_fills_one_clipped_square_per_image_in_every_channel():
    x = images(n=200, height=9, width=11)
    out = Cutout(4, cval=-1.0)(x, rng=0)
    full = 0
    for image in out:
        holes = image == -1.0  # (C, H, W)
        assert (holes == holes[0]).all()  # the same pixels in every channel
        rows, columns = np.flatnonzero(holes[0].any(axis=1)), np.flatnonzero(holes[0].any(axis=0))
        assert 1 <= len(rows) <= 4 and 1 <= len(columns) <= 4
        assert holes[0].sum() == len(rows) * len(columns)  # one rectangle
        assert (np.diff(rows) == 1).all() and (np.diff(columns) == 1).all()
        full += len(rows) * len(columns) == 16
    assert 0 < full < 200  # whole squares inside, clipped ones at the border
    np.testing.assert_array_equal(out[out != -1.0], x[out != -1.0])


def test_cutout_p_is_a_per_sample_probability():
    x = images(n=400)
    out = Cutout((2, 3), cval=-1.0, p=0.25)(x, rng=0)
    assert np.mean([(image == -1.0).any() for image in out]) == pytest.approx(0.25, abs=0.07)


# ---- ColorJitter (torchvision's adjust_brightness / adjust_contrast / adjust_saturation)
def _gray(image):
    return 0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]  # (H, W)


@pytest.mark.parametrize("name, expected", [
    ("brightness", lambda x, f: np.clip(x * f, 0, 1)),
    ("contrast", lambda x, f: np.clip(f * x + (1 - f) * _gray(x).mean(), 0, 1)),
    ("saturation", lambda x, f: np.clip(f * x + (1 - f) * _gray(x)[None], 0, 1)),
])
@pytest.mark.parametrize("factor", [0.0, 0.6, 1.7])
def test_color_jitter_follows_torchvisions_formulas(name, expected, factor):
    x = images(n=3, height=5, width=6, dtype=np.float64)
    out = ColorJitter(**{name: (factor, factor)})(x, rng=0)
    for got, image in zip(out, x):
        np.testing.assert_allclose(got, expected(image, factor), rtol=1e-12, atol=1e-15)


def test_color_jitter_draws_factors_per_sample_in_a_random_order():
    x = images(n=200, height=4, width=4, dtype=np.float64)
    out = ColorJitter(brightness=(1.3, 1.3), contrast=(0.5, 0.5), saturation=(0.2, 0.2))(x, rng=0)
    steps = {"b": lambda i: np.clip(i * 1.3, 0, 1), "c": lambda i: np.clip(0.5 * i + 0.5 * _gray(i).mean(), 0, 1),
             "s": lambda i: np.clip(0.2 * i + 0.8 * _gray(i)[None], 0, 1)}
    orders = set()
    for got, image in zip(out, x):
        for order in ("bcs", "bsc", "cbs", "csb", "sbc", "scb"):
            result = image
            for step in order:
                result = steps[step](result)
            if np.allclose(got, result, rtol=1e-12, atol=1e-15):
                orders.add(order)
                break
        else:
            pytest.fail("a sample matches no order of the three adjustments")
    assert len(orders) >= 3  # a fixed order would match one (some orders give the same image: first match counts)
    ranged = ColorJitter(brightness=0.5)(np.full((300, 3, 1, 1), 0.5), rng=0)[:, 0, 0, 0] / 0.5
    assert 0.5 <= ranged.min() < 0.55 and 1.45 < ranged.max() <= 1.5


def test_color_jitter_on_grayscale_and_other_channel_counts():
    gray = images(n=2, channels=1)
    np.testing.assert_allclose(ColorJitter(brightness=(0.5, 0.5))(gray, rng=0), gray * 0.5, rtol=1e-6)
    with rejects(ValueError, match="ColorJitter: saturation needs RGB images .* leave saturation at 0"):
        ColorJitter(saturation=0.3)(gray, rng=0)
    with rejects(ValueError, match=r"ColorJitter: expects RGB images \(N, 3, H, W\).* got 4 channels"):
        ColorJitter(brightness=0.3)(images(channels=4), rng=0)


# ---- Normalize
def test_normalize_subtracts_the_mean_and_divides_by_the_std_per_channel():
    x = images(n=2, dtype=np.float64)
    out = Normalize((0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261))(x)
    for c, (m, s) in enumerate(zip((0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261))):
        np.testing.assert_allclose(out[:, c], (x[:, c] - m) / s, rtol=1e-12)
    gray = images(channels=1)
    np.testing.assert_allclose(Normalize(0.5, 0.25)(gray), (gray - 0.5) / 0.25, rtol=1e-6)
    assert Normalize(0.5, 0.25)(gray).dtype == np.float32
    with rejects(ValueError, match="Normalize: mean has 3 values for images of 1 channels"):
        Normalize((0.5, 0.5, 0.5), 0.2)(gray)


# ---- construction checks, Compose, fit
@pytest.mark.parametrize("build, error, match", [
    (lambda: RandomCrop(0), ValueError, "RandomCrop: size must be a positive int or an \\(h, w\\) pair"),
    (lambda: RandomCrop((8, 8, 8)), ValueError, "RandomCrop: size must be"),
    (lambda: RandomCrop(8, padding=-1), ValueError, "RandomCrop: padding must be an int >= 0"),
    (lambda: RandomCrop(8, mode="wrap"), ValueError, "RandomCrop: mode must be one of"),
    (lambda: RandomResizedCrop(8, scale=(0.0, 1.0)), ValueError, r"RandomResizedCrop: scale must lie in \(0, 1\]"),
    (lambda: RandomResizedCrop(8, scale=(0.5, 1.5)), ValueError, r"RandomResizedCrop: scale must lie in \(0, 1\]"),
    (lambda: RandomResizedCrop(8, ratio=(2.0, 1.0)), ValueError, "RandomResizedCrop: ratio must be ordered"),
    (lambda: RandomResizedCrop(8, ratio=(-1.0, 1.0)), ValueError, "RandomResizedCrop: ratio must be positive"),
    (lambda: RandomResizedCrop(8, order=6), ValueError, "RandomResizedCrop: order"),
    (lambda: Cutout(-2), ValueError, "Cutout: size must be"),
    (lambda: Cutout(4, p=2), ValueError, r"Cutout: p must be in \[0, 1\]"),
    (lambda: ColorJitter(brightness=-0.1), ValueError, "ColorJitter: brightness must be >= 0"),
    (lambda: ColorJitter(contrast=(-0.5, 1.0)), ValueError, "ColorJitter: contrast factors must be >= 0"),
    (lambda: ColorJitter(saturation="high"), ValueError, "ColorJitter: saturation must be a"),
    (lambda: Normalize((0.5, 0.5), (0.0, 1.0)), ValueError, "Normalize: std must be > 0 for every channel"),
    (lambda: Normalize((0.5, 0.5), (0.2, 0.2, 0.2)), ValueError, "Normalize: mean has 2 channels and std 3"),
    (lambda: Normalize([], 1.0), ValueError, "Normalize: mean must be a number or one number per channel"),
    (lambda: Normalize(0.5, None), ValueError, "Normalize: std must be a number or one number per channel"),
])
def test_bad_parameters_are_rejected_at_construction(build, error, match):
    with rejects(error, match=match):
        build()


def test_compose_seeds_the_new_transforms_and_leaves_the_input_alone():
    x = images(n=6, height=10, width=10)
    before = x.copy()

    def pipeline(seed):
        return Compose([RandomCrop(10, padding=2, mode="reflect"), RandomFlip(), ColorJitter(0.3, 0.3, 0.3),
                        Cutout(3), RandomResizedCrop(8), Normalize(0.5, 0.25)], seed=seed)

    first = pipeline(0)(x)
    assert first.shape == (6, 3, 8, 8) and first.dtype == np.float32
    np.testing.assert_array_equal(pipeline(0)(x), first)
    assert not np.array_equal(pipeline(1)(x), first)
    np.testing.assert_array_equal(x, before)


def test_fit_trains_on_random_crops_of_padded_images():
    x, y = images(n=40, channels=1), np.arange(40) % 3
    model = dlcore.Sequential([Conv2D(1, 2, 3, padding="same", activation="relu", rng=0), Flatten(),
                               Dense(2 * 8 * 8, 3, rng=0)])
    history = model.fit(x, y, optimizer=SGD(model.parameters(), lr=0.1), batch_size=10, iterations=4, rng=0,
                        progress=False, verbose=False, augment=Compose([RandomCrop(8, padding=2), Cutout(2)], seed=0))
    assert history["iteration"] == [4]
