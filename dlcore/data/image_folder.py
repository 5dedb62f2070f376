"""Your own images: a folder with one subfolder per class, as Keras' image_dataset_from_directory.

    photos/
      cat/  a.png  b.jpg ...
      dog/  c.bmp  d/e.tiff ...    (subfolders of a class folder belong to that class)

Class names are the subfolder names in sorted order; label i names class_names[i]. Files
are read by scikit-image (PNG, JPEG, BMP, TIFF), converted to RGB (alpha dropped, grey
repeated) or grayscale, resized to image_size with anti-aliasing and scaled to float32 in
[0, 1], NCHW. Files of other types are skipped; files that cannot be read are skipped and
counted (a warning names them), or raise with on_bad_file="error". Nothing in the folder is
written to.

load_image_folder(..., stream=False) decodes every image into one array; stream=True gives
an ImageFiles, a Dataset-like stand-in for that array (len, shape, indexing by int, slice or
index array) that reads only the images each batch asks for, so fit, evaluate and predict
take folders that do not fit in memory: fit(model, data.images, data.labels, ...).
"""
from __future__ import annotations

import operator
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import skimage.color
import skimage.io
import skimage.transform
import skimage.util

from dlcore.data.errors import DataFileError
from dlcore.seeding import as_generator

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
COLOR_MODES = {"rgb": 3, "grayscale": 1}  # color_mode -> channels C
BAD_FILE_POLICIES = ("skip", "error")


@dataclass(frozen=True)
class ImageFolder:
    """A labelled set of images read from a class-per-subfolder folder.

    images       float32 (N, C, H, W) in [0, 1]: an array, or an ImageFiles when streamed
    labels       int64 (N,), indices into class_names
    class_names  the class subfolder names, sorted
    paths        the image file of each sample, (N,)
    skipped      the files that were not images or could not be read
    """

    images: np.ndarray | ImageFiles
    labels: np.ndarray
    class_names: tuple[str, ...]
    paths: tuple[Path, ...]
    skipped: tuple[Path, ...] = ()

    def __len__(self) -> int:
        return len(self.labels)


class ImageFiles:
    """Images on disk that index like a float32 array (N, C, H, W) in [0, 1]: files[i] is
    (C, H, W), files[slice or index array] is (B, C, H, W), each read when asked for."""

    dtype = np.dtype(np.float32)

    def __init__(self, paths: Sequence[Path], image_size: tuple[int, int], color_mode: str):
        self.paths = tuple(paths)
        self.image_size = image_size
        self.color_mode = color_mode

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.paths), COLOR_MODES[self.color_mode], *self.image_size)

    @property
    def ndim(self) -> int:
        return 4

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index):
        if isinstance(index, slice):
            rows = range(len(self.paths))[index]
        else:
            rows = np.arange(len(self.paths))[index]
            if rows.ndim == 0:
                return self._read(int(rows))
        batch = np.empty((len(rows), *self.shape[1:]), np.float32)  # (B, C, H, W)
        for out_row, row in enumerate(rows):
            batch[out_row] = self._read(int(row))
        return batch

    def _read(self, row: int) -> np.ndarray:
        path = self.paths[row]
        try:
            image = skimage.io.imread(path)
        except Exception as error:  # each imaging plugin raises its own types for a bad file
            raise DataFileError(path, f"cannot read the image: {error}") from error
        return as_chw(image, path, self.image_size, self.color_mode)


def load_image_folder(
    path: str | os.PathLike,
    image_size: tuple[int, int] | None = None,
    color_mode: str = "rgb",
    validation_split: float | None = None,
    seed: int | np.random.Generator | None = None,
    stream: bool = False,
    on_bad_file: str = "skip",
) -> ImageFolder | tuple[ImageFolder, ImageFolder]:
    """Read a folder of images, one subfolder per class.

    image_size        (H, W) every image is resized to; None keeps the images' own size,
                      which must then be the same for all of them
    color_mode        "rgb" (C = 3) or "grayscale" (C = 1)
    validation_split  None, or the fraction in (0, 1) of the images to hold out: they are
                      drawn at random with `seed` (an int, a Generator, or None for dlcore's
                      default generator), and (training, validation) is returned
    stream            False: decode every image now into an array; True: images is an
                      ImageFiles that reads each batch from disk when indexed
    on_bad_file       "skip" (count them in `skipped`, warn) or "error" (DataFileError)
    Returns an ImageFolder (images, labels, class_names, paths, skipped), or a pair of them.
    Each part keeps the images in sorted class / file order.
    Raises DataFileError naming the path for a folder without class subfolders, a class
    without images, images of different sizes without image_size, or (with "error") a bad
    file; FileNotFoundError when `path` is not a folder.
    """
    root = Path(path)
    if color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be one of {sorted(COLOR_MODES)}, found {color_mode!r}")
    if on_bad_file not in BAD_FILE_POLICIES:
        raise ValueError(f"on_bad_file must be one of {BAD_FILE_POLICIES}, found {on_bad_file!r}")
    if image_size is not None:
        image_size = _checked_size(image_size)
    if validation_split is not None and not 0.0 < validation_split < 1.0:
        raise ValueError(f"validation_split must be a fraction in (0, 1) or None, found {validation_split!r}")
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (expected one subfolder per class)")

    class_names, candidates = _scan(root)
    reader = _read_all if not stream else _probe_all
    paths, labels, sizes, images, skipped = reader(candidates, image_size, color_mode, on_bad_file)
    _check_every_class_has_images(root, class_names, labels)
    if image_size is None:
        image_size = _common_size(root, paths, sizes)
    if skipped:
        shown = ", ".join(str(p) for p in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        warnings.warn(f"{root}: skipped {len(skipped)} files that are not readable images: {shown}", stacklevel=2)

    def part(rows: np.ndarray) -> ImageFolder:
        part_paths = tuple(paths[row] for row in rows)
        part_images = ImageFiles(part_paths, image_size, color_mode) if stream else np.stack(
            [images[row] for row in rows]).astype(np.float32, copy=False)
        return ImageFolder(part_images, labels[rows], class_names, part_paths, tuple(skipped))

    everything = np.arange(len(paths))
    if validation_split is None:
        return part(everything)
    n_validation = int(validation_split * len(paths))
    if not 0 < n_validation < len(paths):
        raise ValueError(f"validation_split={validation_split} of {len(paths)} images leaves "
                         f"{n_validation} for validation: both parts need at least one image")
    order = as_generator(seed).permutation(len(paths))
    return part(np.sort(order[:-n_validation])), part(np.sort(order[-n_validation:]))


def as_chw(image: np.ndarray, path: Path, image_size: tuple[int, int] | None, color_mode: str) -> np.ndarray:
    """A decoded image (H, W), (H, W, 2|3|4) of any integer or float dtype -> float32
    (C, H', W') in [0, 1] in `color_mode`, resized to image_size with anti-aliasing."""
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4)):
        raise DataFileError(path, f"expected a 2-D grey, RGB or RGBA image, found an array of shape {image.shape}")
    image = skimage.util.img_as_float32(image)  # integers scaled by their range -> [0, 1]
    if image.ndim == 3 and image.shape[2] in (1, 2):  # grey, grey + alpha
        image = image[..., 0]
    elif image.ndim == 3:  # RGB, RGBA: alpha dropped
        image = image[..., :3]
    if color_mode == "grayscale" and image.ndim == 3:
        image = skimage.color.rgb2gray(image)  # (H, W), ITU-R 601 luma weights
    elif color_mode == "rgb" and image.ndim == 2:
        image = skimage.color.gray2rgb(image)  # (H, W, 3)
    if image_size is not None and image.shape[:2] != image_size:
        image = skimage.transform.resize(image, image_size, order=1, anti_aliasing=True)
    image = image[None] if image.ndim == 2 else image.transpose(2, 0, 1)  # (C, H, W)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _scan(root: Path) -> tuple[tuple[str, ...], list[tuple[Path, int | None]]]:
    """(class names, [(file, label), ...]) in sorted order; label None marks a file that is
    not an image by its extension."""
    class_dirs = sorted((entry for entry in root.iterdir() if entry.is_dir()), key=lambda entry: entry.name)
    if not class_dirs:
        raise DataFileError(root, "no class subfolders: put the images of each class in a subfolder "
                                  "named after the class (root/cat/*.png, root/dog/*.png)")
    candidates = []
    for label, class_dir in enumerate(class_dirs):
        for dirpath, dirnames, filenames in os.walk(class_dir):
            dirnames.sort()
            for name in sorted(filenames):
                file = Path(dirpath) / name
                candidates.append((file, label if file.suffix.lower() in IMAGE_EXTENSIONS else None))
    return tuple(entry.name for entry in class_dirs), candidates


def _read_all(candidates, image_size, color_mode, on_bad_file):
    """Decode every image file: (paths, labels (N,), sizes, images, skipped)."""
    paths, labels, sizes, images, skipped = [], [], [], [], []
    for file, label in candidates:
        if label is None:
            skipped.append(file)
            continue
        try:
            image = skimage.io.imread(file)
            chw = as_chw(image, file, image_size, color_mode)
        except Exception as error:  # a plugin's own error types, or as_chw's DataFileError
            if on_bad_file == "error":
                raise error if isinstance(error, DataFileError) else DataFileError(
                    file, f"cannot read the image: {error}") from error
            skipped.append(file)
            continue
        paths.append(file), labels.append(label), sizes.append(image.shape[:2]), images.append(chw)
    return paths, np.array(labels, np.int64), sizes, images, skipped


def _probe_all(candidates, image_size, color_mode, on_bad_file):
    """Read only each image file's header (its size): (paths, labels (N,), sizes, None, skipped)."""
    paths, labels, sizes, skipped = [], [], [], []
    for file, label in candidates:
        if label is None:
            skipped.append(file)
            continue
        try:
            shape = iio.improps(file).shape
        except Exception as error:  # a plugin's own error types
            if on_bad_file == "error":
                raise DataFileError(file, f"cannot read the image: {error}") from error
            skipped.append(file)
            continue
        paths.append(file), labels.append(label), sizes.append(tuple(shape[:2]))
    return paths, np.array(labels, np.int64), sizes, None, skipped


def _check_every_class_has_images(root: Path, class_names: tuple[str, ...], labels: np.ndarray) -> None:
    counts = np.bincount(labels, minlength=len(class_names))
    empty = [name for name, count in zip(class_names, counts) if count == 0]
    if empty:
        raise DataFileError(root / empty[0], f"class {empty[0]!r} has no readable images "
                                             f"({', '.join(IMAGE_EXTENSIONS)}); add images or remove the folder"
                            + (f" (also empty: {', '.join(empty[1:])})" if len(empty) > 1 else ""))


def _common_size(root: Path, paths: list[Path], sizes: list[tuple[int, int]]) -> tuple[int, int]:
    first = sizes[0]
    for file, size in zip(paths, sizes):
        if size != first:
            raise DataFileError(root, f"images of different sizes: {paths[0]} is {first[0]}x{first[1]}, "
                                      f"{file} is {size[0]}x{size[1]}; pass image_size=(H, W) to resize them all")
    return first


def _checked_size(image_size) -> tuple[int, int]:
    size = tuple(operator.index(side) for side in image_size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"image_size must be (height, width) of positive ints, found {image_size!r}")
    return size
