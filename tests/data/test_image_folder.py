"""load_image_folder: classes from subfolders, decoding, colour, resizing, splits, streaming, bad input."""
import numpy as np
import pytest
import skimage.color
import skimage.io
import skimage.transform

import dlcore
from dlcore.data import DataFileError, ImageFiles, load_image_folder
from dlcore.layers import Dense, Flatten
from dlcore.models import Sequential
from dlcore.optim import SGD

from .image_folders import class_image, folder_fingerprint, write_class_folder


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    written = write_class_folder(root)
    return root, written


def test_classes_labels_and_pixels(folder):
    root, written = folder
    data = load_image_folder(root)
    assert data.class_names == ("cat", "dog", "owl")
    assert data.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4 and data.labels.dtype == np.int64
    assert data.images.shape == (12, 3, 12, 10) and data.images.dtype == np.float32
    assert list(data.paths) == sorted(written)
    for row, path in enumerate(data.paths):  # PNG is lossless: exactly the pixels written / 255
        np.testing.assert_allclose(data.images[row], written[path].transpose(2, 0, 1) / 255, atol=1e-7)
    assert data.skipped == ()


def test_class_names_sort_and_nested_files_belong_to_their_class(tmp_path):
    write_class_folder(tmp_path, classes=("b", "a"), per_class=1)
    (tmp_path / "a" / "deeper").mkdir()
    skimage.io.imsave(tmp_path / "a" / "deeper" / "x.png", class_image(2, 3), check_contrast=False)
    data = load_image_folder(tmp_path)
    assert data.class_names == ("a", "b")
    assert [(p.parent.name, label) for p, label in zip(data.paths, data.labels)] == [("a", 0), ("deeper", 0), ("b", 1)]


@pytest.mark.parametrize("extension", [".jpg", ".bmp", ".tif"])
def test_other_formats(tmp_path, extension):
    written = write_class_folder(tmp_path, per_class=2, extension=extension)
    data = load_image_folder(tmp_path)
    assert data.images.shape == (6, 3, 12, 10)
    for row, path in enumerate(data.paths):
        decoded = skimage.io.imread(path).transpose(2, 0, 1) / 255
        np.testing.assert_allclose(data.images[row], decoded, atol=1e-7)
        error = np.abs(data.images[row] - written[path].transpose(2, 0, 1) / 255)
        assert error.mean() < 0.05 if extension == ".jpg" else error.max() < 1e-7  # JPEG is lossy


def test_grayscale_and_rgb_conversions(tmp_path, folder):
    root, written = folder
    grey = load_image_folder(root, color_mode="grayscale")
    assert grey.images.shape == (12, 1, 12, 10)
    expected = skimage.color.rgb2gray(written[grey.paths[5]] / 255)
    np.testing.assert_allclose(grey.images[5, 0], expected, atol=1e-6)

    grey_root = tmp_path / "grey"
    (grey_root / "only").mkdir(parents=True)
    skimage.io.imsave(grey_root / "only" / "g.png", class_image(1, 0, rgb=False), check_contrast=False)
    rgba = np.dstack([class_image(0, 1), np.full((12, 10), 128, np.uint8)])
    skimage.io.imsave(grey_root / "only" / "h.png", rgba, check_contrast=False)
    data = load_image_folder(grey_root)
    assert data.images.shape == (2, 3, 12, 10)
    np.testing.assert_array_equal(data.images[0, 0], data.images[0, 2])  # grey repeated in R, G, B
    np.testing.assert_allclose(data.images[1], class_image(0, 1).transpose(2, 0, 1) / 255, atol=1e-7)  # alpha dropped


def test_resizing_is_skimage_resize_with_anti_aliasing(folder):
    root, written = folder
    data = load_image_folder(root, image_size=(5, 4))
    assert data.images.shape == (12, 3, 5, 4)
    source = written[data.paths[2]] / 255
    expected = skimage.transform.resize(source, (5, 4), order=1, anti_aliasing=True)
    np.testing.assert_allclose(data.images[2], expected.transpose(2, 0, 1), atol=1e-6)
    plain = skimage.transform.resize(source, (5, 4), order=1, anti_aliasing=False)
    assert np.abs(data.images[2] - plain.transpose(2, 0, 1)).max() > 1e-3  # the smoothing is there


def test_mixed_sizes_need_image_size(tmp_path):
    write_class_folder(tmp_path, per_class=2)
    odd = tmp_path / "dog" / "big.png"
    skimage.io.imsave(odd, class_image(1, 0, size=(20, 16)), check_contrast=False)
    for stream in (False, True):
        with pytest.raises(DataFileError, match=r"different sizes: .* is 12x10, .*big.png is 20x16; pass image_size"):
            load_image_folder(tmp_path, stream=stream)
    assert load_image_folder(tmp_path, image_size=(12, 10)).images.shape == (7, 3, 12, 10)


def test_non_images_and_corrupt_files_are_skipped_and_counted_or_an_error(folder):
    root, _ = folder
    (root / "cat" / "notes.txt").write_text("not an image")
    corrupt = root / "dog" / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.warns(UserWarning, match="skipped 2 files"):
        data = load_image_folder(root)
    assert len(data) == 12 and sorted(p.name for p in data.skipped) == ["broken.png", "notes.txt"]
    with pytest.warns(UserWarning, match="skipped 2 files"):
        assert len(load_image_folder(root, stream=True)) == 12
    for stream in (False, True):
        with pytest.raises(DataFileError, match=f"{corrupt}: cannot read the image"):
            load_image_folder(root, stream=stream, on_bad_file="error")


def test_a_corrupt_file_found_while_streaming_names_its_path(folder):
    root, _ = folder
    data = load_image_folder(root, stream=True)
    data.paths[3].write_bytes(data.paths[3].read_bytes()[:60])  # truncated after its header
    assert data.images[:3].shape == (3, 3, 12, 10)  # the intact files still read
    with pytest.raises(DataFileError, match=f"{data.paths[3]}: cannot read the image"):
        data.images[[0, 3]]


def test_folder_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "missing")):
        load_image_folder(tmp_path / "missing")
    skimage.io.imsave(tmp_path / "loose.png", class_image(0, 0), check_contrast=False)
    with pytest.raises(DataFileError, match=f"{tmp_path}: no class subfolders"):
        load_image_folder(tmp_path)
    write_class_folder(tmp_path, classes=("a", "c"), per_class=1)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "readme.txt").write_text("x")
    with pytest.raises(DataFileError, match=f"{tmp_path / 'b'}: class 'b' has no readable images"):
        load_image_folder(tmp_path)


def test_bad_arguments(folder):
    root, _ = folder
    with pytest.raises(ValueError, match="color_mode"):
        load_image_folder(root, color_mode="hsv")
    with pytest.raises(ValueError, match="validation_split"):
        load_image_folder(root, validation_split=1.0)
    with pytest.raises(ValueError, match="image_size"):
        load_image_folder(root, image_size=(0, 4))
    with pytest.raises(ValueError, match="on_bad_file"):
        load_image_folder(root, on_bad_file="ignore")


def test_validation_split_is_a_seeded_partition(folder):
    root, _ = folder
    training, validation = load_image_folder(root, validation_split=0.25, seed=3)
    assert (len(training), len(validation)) == (9, 3)
    assert sorted(training.paths + validation.paths) == sorted(load_image_folder(root).paths)
    again = load_image_folder(root, validation_split=0.25, seed=3)[1]
    assert again.paths == validation.paths
    others = {load_image_folder(root, validation_split=0.25, seed=seed)[1].paths for seed in range(6)}
    assert len(others) > 1
    assert training.class_names == validation.class_names == ("cat", "dog", "owl")
    for part in (training, validation):
        assert list(part.paths) == sorted(part.paths)
        assert [p.parent.name for p in part.paths] == [part.class_names[k] for k in part.labels]


def test_streamed_images_index_like_the_loaded_array(folder):
    root, _ = folder
    loaded = load_image_folder(root, image_size=(6, 5))
    streamed = load_image_folder(root, image_size=(6, 5), stream=True)
    assert isinstance(streamed.images, ImageFiles)
    assert streamed.images.shape == loaded.images.shape and len(streamed.images) == 12
    np.testing.assert_array_equal(streamed.labels, loaded.labels)
    for index in (4, slice(2, 7), slice(None, None, -3), np.array([11, 0, 5]), [1, 1]):
        np.testing.assert_array_equal(streamed.images[index], loaded.images[index])


def test_fit_on_a_streamed_folder_equals_fit_on_the_loaded_arrays(folder):
    root, _ = folder
    loaded = load_image_folder(root, validation_split=0.25, seed=0)
    streamed = load_image_folder(root, validation_split=0.25, seed=0, stream=True)

    def train(data):
        dlcore.manual_seed(0)
        model = Sequential([Flatten(), Dense(3 * 12 * 10, 3)])
        training, validation = data
        history = model.fit(training.images, training.labels, optimizer=SGD(model.parameters(), lr=0.5),
                            batch_size=4, iterations=6, eval_every=3, rng=1, verbose=False,
                            validation_data=(validation.images, validation.labels))
        return history.history, model.predict(validation.images)

    (loaded_history, loaded_out), (streamed_history, streamed_out) = train(loaded), train(streamed)
    assert loaded_history == streamed_history and "val_loss" in streamed_history
    np.testing.assert_array_equal(loaded_out, streamed_out)


def test_nothing_in_the_folder_is_modified(folder):
    root, _ = folder
    (root / "cat" / "notes.txt").write_text("left alone")
    before = folder_fingerprint(root)
    with pytest.warns(UserWarning):
        load_image_folder(root, image_size=(4, 4), validation_split=0.5, seed=0)
    with pytest.warns(UserWarning):
        load_image_folder(root, stream=True).images[:]
    assert folder_fingerprint(root) == before
