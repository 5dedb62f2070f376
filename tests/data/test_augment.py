"""dlcore.data.augment: each transform against an independent expectation, seeding and
saved state, parameter checks at construction, and Model.fit(augment=...)."""
import json
from dataclasses import replace

import numpy as np
import pytest
from skimage.transform import rescale, rotate

import dlcore
from dlcore.data.augment import (
    Compose,
    GaussianNoise,
    RandomFlip,
    RandomRotation,
    RandomScale,
    RandomTranslation,
    SaltPepperNoise,
)
from dlcore.layers import Conv2D, Dense, Flatten
from dlcore.optim import SGD
from tests.robustness import rejects


def images(n=4, channels=1, height=8, width=8, dtype=np.float32, seed=0):
    """Random images in [0, 1], (n, channels, height, width)."""
    return np.random.default_rng(seed).random((n, channels, height, width)).astype(dtype)


# one instance of each transform with p=1, set to change every sample of images()
ALWAYS = {
    "flip": RandomFlip(horizontal=True, vertical=True, p=1.0),
    "rotation": RandomRotation((10, 40)),
    "translation": RandomTranslation((1, 2), (-2, -1)),
    "scale": RandomScale((1.2, 1.5)),
    "gaussian": GaussianNoise(0.1),
    "salt_pepper": SaltPepperNoise(0.2),
}


def with_p(transform, p):
    """The same transform with probability p (transforms are frozen dataclasses)."""
    return replace(transform, p=p)


# ---- flips


@pytest.mark.parametrize("horizontal, vertical, flipped", [
    (True, False, lambda x: x[..., ::-1]),
    (False, True, lambda x: x[..., ::-1, :]),
    (True, True, lambda x: x[..., ::-1, ::-1]),
])
def test_flip_reverses_the_chosen_axes(horizontal, vertical, flipped):
    x = images(channels=3, height=5, width=7)
    out = RandomFlip(horizontal, vertical, p=1.0)(x, rng=0)
    np.testing.assert_array_equal(out, flipped(x))


# ---- rotation


@pytest.mark.parametrize("degrees, turns", [(90, 1), (-90, -1), (180, 2)])
def test_rotation_by_right_angles_of_a_square_image_equals_rot90(degrees, turns):
    x = images(channels=2, height=9, width=9)
    out = RandomRotation((degrees, degrees))(x, rng=0)
    np.testing.assert_allclose(out, np.rot90(x, turns, axes=(2, 3)), atol=1e-5)


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect"])
def test_rotation_matches_skimage_rotate_at_the_input_size(mode):
    x = images(n=2, height=11, width=8)
    out = RandomRotation((37, 37), mode=mode, cval=0.25)(x, rng=0)
    for image, rotated in zip(x[:, 0], out[:, 0]):
        expected = rotate(image.astype(np.float64), 37, resize=False, order=1, mode=mode, cval=0.25,
                          preserve_range=True)
        np.testing.assert_allclose(rotated, expected, atol=1e-5)


def test_rotation_angles_are_drawn_per_sample_within_the_range():
    x = np.repeat(images(n=1, height=9, width=9), 64, axis=0)
    out = RandomRotation((-90, 90))(x, rng=0)
    assert len({sample.tobytes() for sample in out}) == 64


# ---- translation


def test_integer_translation_shifts_the_array_and_fills_the_uncovered_side():
    x = images(channels=2, height=6, width=7)
    out = RandomTranslation((2, 2), (-3, -3), cval=0.5)(x, rng=0)  # 2 rows down, 3 columns left
    expected = np.full_like(x, 0.5)
    expected[..., 2:, :-3] = x[..., :-2, 3:]
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_relative_translation_is_a_fraction_of_the_size_and_edge_mode_repeats_the_border():
    x = images(height=8, width=10)
    out = RandomTranslation((0.25, 0.25), (0.0, 0.0), relative=True, mode="edge")(x, rng=0)
    expected = np.concatenate([np.repeat(x[..., :1, :], 2, axis=2), x[..., :-2, :]], axis=2)
    np.testing.assert_allclose(out, expected, atol=1e-6)


# ---- scale


def test_scale_one_is_the_identity():
    x = images(channels=3, height=7, width=5)
    np.testing.assert_array_equal(RandomScale((1.0, 1.0))(x, rng=0), x)


def test_zoom_in_by_two_keeps_the_centre_as_rescale_then_crop():
    x = images(height=10, width=6)
    out = RandomScale((2.0, 2.0))(x, rng=0)
    for image, zoomed in zip(x[:, 0], out[:, 0]):
        expected = rescale(image.astype(np.float64), 2, order=1)[5:15, 3:9]  # (20, 12) -> centre (10, 6)
        np.testing.assert_allclose(zoomed, expected, atol=1e-5)


def test_zoom_out_by_two_pads_the_shrunk_image_as_rescale_then_pad():
    x = images(height=8, width=12)
    out = RandomScale((0.5, 0.5))(x, rng=0)
    for image, shrunk in zip(x[:, 0], out[:, 0]):
        small = rescale(image.astype(np.float64), 0.5, order=1, anti_aliasing=False)  # (4, 6)
        np.testing.assert_allclose(shrunk, np.pad(small, ((2, 2), (3, 3))), atol=1e-5)


# ---- noise


def test_salt_and_pepper_replaces_the_requested_fraction_of_pixels():
    x = np.full((4, 1, 100, 100), 0.5, dtype=np.float32)
    out = SaltPepperNoise(amount=0.1, salt_vs_pepper=0.3)(x, rng=0)
    salt, pepper = (out == 1.0).mean(), (out == 0.0).mean()
    assert set(np.unique(out)) == {0.0, 0.5, 1.0}
    assert salt + pepper == pytest.approx(0.1, abs=0.005)
    assert salt / (salt + pepper) == pytest.approx(0.3, abs=0.02)


def test_gaussian_noise_has_the_requested_std_and_is_clipped():
    x = np.full((4, 1, 100, 100), 0.5, dtype=np.float32)
    noise = GaussianNoise(0.1, clip=None)(x, rng=0) - x
    assert noise.mean() == pytest.approx(0.0, abs=0.003)
    assert noise.std() == pytest.approx(0.1, rel=0.02)
    clipped = GaussianNoise(1.0)(x, rng=0)
    assert clipped.min() == 0.0 and clipped.max() == 1.0


# ---- probability p


@pytest.mark.parametrize("name", ALWAYS)
def test_p_zero_is_the_identity_and_p_one_changes_every_sample(name):
    x = images(n=16)
    np.testing.assert_array_equal(with_p(ALWAYS[name], 0.0)(x, rng=0), x)
    out = ALWAYS[name](x, rng=0)
    assert all(not np.array_equal(a, b) for a, b in zip(out, x))


@pytest.mark.parametrize("name", ALWAYS)
def test_p_is_a_per_sample_probability(name):
    x = images(n=400)
    out = with_p(ALWAYS[name], 0.25)(x, rng=0)
    changed = np.mean([not np.array_equal(a, b) for a, b in zip(out, x)])
    expected = 1 - 0.75**2 if name == "flip" else 0.25  # the flip's two axes are drawn independently
    assert changed == pytest.approx(expected, abs=0.07)


# ---- shape, dtype, input left alone


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shape_and_dtype_are_kept_and_the_input_is_not_modified(dtype):
    x = images(n=5, channels=3, height=9, width=7, dtype=dtype)
    before = x.copy()
    for transform in ALWAYS.values():
        out = transform(x, rng=0)
        assert out.shape == x.shape and out.dtype == dtype
    out = Compose(list(ALWAYS.values()), seed=0)(x)
    assert out.shape == x.shape and out.dtype == dtype
    np.testing.assert_array_equal(x, before)


# ---- Compose: order, seeding, state


def test_compose_applies_the_transforms_in_order():
    x = images(height=7, width=7)
    expected = np.full_like(x, 0.0)
    expected[..., 1:, :] = np.rot90(x, 1, axes=(2, 3))[..., :-1, :]  # rotate, then shift 1 row down
    rotate_then_shift = [RandomRotation((90, 90)), RandomTranslation((1, 1), (0, 0))]
    np.testing.assert_allclose(Compose(rotate_then_shift, seed=0)(x), expected, atol=1e-5)
    # different warp settings are not fused into one warp, and the result is the same
    unfused = [RandomRotation((90, 90), mode="edge"), RandomTranslation((1, 1), (0, 0))]
    np.testing.assert_allclose(Compose(unfused, seed=0)(x), expected, atol=1e-5)


def pipeline(seed):
    return Compose([RandomFlip(), RandomRotation(20), RandomTranslation(2), RandomScale(),
                    GaussianNoise(0.05), SaltPepperNoise(0.05)], seed=seed)


def test_same_seed_same_batches_different_seed_different():
    x = images(n=8)
    first, again, other = pipeline(1), pipeline(1), pipeline(2)
    batch = first(x)
    np.testing.assert_array_equal(batch, again(x))
    assert not np.array_equal(batch, other(x))
    assert not np.array_equal(first(x), batch)  # the stream moves on


def test_seed_none_follows_dlcore_manual_seed():
    x = images(n=8)
    dlcore.manual_seed(5)
    batch = pipeline(None)(x)
    dlcore.manual_seed(5)
    np.testing.assert_array_equal(pipeline(None)(x), batch)


def test_state_dict_round_trips_through_json_and_resumes_the_stream():
    x = images(n=8)
    augment = pipeline(3)
    augment(x)
    state = json.loads(json.dumps(augment.state_dict()))
    expected = [augment(x), augment(x)]
    resumed = pipeline(99)
    resumed.load_state_dict(state)
    for batch in expected:
        np.testing.assert_array_equal(resumed(x), batch)


# ---- bad input, rejected when the pipeline is built


@pytest.mark.parametrize("build, error, match", [
    (lambda: RandomFlip(p=-0.1), ValueError, r"RandomFlip: p must be in \[0, 1\]"),
    (lambda: RandomFlip(False, False), ValueError, "RandomFlip: horizontal and vertical"),
    (lambda: RandomRotation(-5), ValueError, "RandomRotation: degrees must be >= 0"),
    (lambda: RandomRotation((10, -10)), ValueError, "RandomRotation: degrees must be ordered"),
    (lambda: RandomRotation("15"), ValueError, "RandomRotation: degrees must be a"),
    (lambda: RandomRotation(float("inf")), ValueError, "RandomRotation: degrees must be finite"),
    (lambda: RandomRotation(mode="nearest"), ValueError, "RandomRotation: mode must be one of"),
    (lambda: RandomRotation(order=7), ValueError, "RandomRotation: order"),
    (lambda: RandomRotation(p=1.5), ValueError, "RandomRotation: p"),
    (lambda: RandomTranslation(2, relative=True), ValueError, "RandomTranslation: with relative=True, dy"),
    (lambda: RandomTranslation(1, (3, 1)), ValueError, "RandomTranslation: dx must be ordered"),
    (lambda: RandomScale((0.0, 1.1)), ValueError, "RandomScale: scale_range must be positive"),
    (lambda: RandomScale((-2.0, -1.0)), ValueError, "RandomScale: scale_range must be positive"),
    (lambda: RandomScale((1.2, 0.9)), ValueError, "RandomScale: scale_range must be ordered"),
    (lambda: RandomScale(1.1), ValueError, r"RandomScale: scale_range must be a \(low, high\) pair"),
    (lambda: RandomScale(cval=None), TypeError, "RandomScale: cval must be a number"),
    (lambda: GaussianNoise(-0.1), ValueError, "GaussianNoise: std must be >= 0"),
    (lambda: GaussianNoise(float("nan")), ValueError, "GaussianNoise: std must be finite"),
    (lambda: GaussianNoise(clip=(1.0, 0.0)), ValueError, "GaussianNoise: clip must be ordered"),
    (lambda: SaltPepperNoise(amount=1.5), ValueError, "SaltPepperNoise: amount"),
    (lambda: SaltPepperNoise(salt_vs_pepper=-0.1), ValueError, "SaltPepperNoise: salt_vs_pepper"),
    (lambda: SaltPepperNoise(p=-1), ValueError, "SaltPepperNoise: p"),
    (lambda: Compose([]), ValueError, "Compose: transforms is empty"),
    (lambda: Compose([RandomFlip(), np.flipud]), TypeError, r"Compose: transforms\[1\] must be a Transform"),
    (lambda: Compose([RandomFlip()], seed=-1), ValueError, "Compose: seed"),
    (lambda: Compose([RandomFlip()], seed=1.5), TypeError, "Compose: seed"),
])
def test_bad_parameters_are_rejected_at_construction(build, error, match):
    with rejects(error, match=match):
        build()


def test_bad_batches_are_rejected():
    augment = Compose([RandomFlip()], seed=0)
    with rejects(ValueError, match=r"Compose: expects a batch of images \(N, C, H, W\)"):
        augment(np.zeros((2, 8, 8), dtype=np.float32))
    with rejects(TypeError, match="RandomRotation: expects floating-point images"):
        RandomRotation()(np.zeros((2, 1, 8, 8), dtype=np.uint8))


# ---- Model.fit(augment=...)


def _tiny_cnn():
    return dlcore.Sequential([Conv2D(1, 2, 3, padding="same", activation="relu", rng=0), Flatten(),
                              Dense(2 * 8 * 8, 3, rng=0)])


def test_fit_augments_every_training_batch_and_never_the_evaluation_data():
    x, y = images(n=60), np.arange(60) % 3
    seen = []

    def augment(batch):
        seen.append((type(batch), batch.shape))
        return batch[..., ::-1]

    model = _tiny_cnn()
    model.fit(x, y, optimizer=SGD(model.parameters(), lr=0.1), batch_size=10, iterations=6,
              validation_data=(x[:20], y[:20]), eval_every=2, eval_samples=30, rng=0,
              progress=False, verbose=False, augment=augment)
    assert seen == [(np.ndarray, (10, 1, 8, 8))] * 6  # one call per iteration, none for the 3 evaluations


def test_fit_trains_with_a_compose_pipeline():
    x, y = images(n=60), np.arange(60) % 3
    model = _tiny_cnn()
    before = model.parameters()[0].data.copy()
    augment = Compose([RandomFlip(), RandomRotation(10), GaussianNoise(0.05)], seed=0)
    history = model.fit(x, y, optimizer=SGD(model.parameters(), lr=0.1), batch_size=10, iterations=4,
                        rng=0, progress=False, verbose=False, augment=augment)
    assert np.isfinite(history["loss"]).all()
    assert not np.array_equal(model.parameters()[0].data, before)
    with rejects(TypeError, match="fit: augment must be callable"):
        model.fit(x, y, optimizer=SGD(model.parameters()), iterations=1, augment="flip", verbose=False)
