"""Small folders of generated images, one subfolder per class, for the image-folder tests."""
import hashlib
from pathlib import Path

import numpy as np
import skimage.io


def class_image(label: int, index: int, size=(12, 10), rgb=True) -> np.ndarray:
    """uint8 (H, W, 3) or (H, W): class `label` is bright in its own vertical band, `index`
    shifts the shade so that no two images are equal."""
    height, width = size
    image = np.full((height, width, 3), 20 + 7 * index, np.uint8)
    band = slice(label * width // 3, (label + 1) * width // 3)
    image[:, band] = 230 - 5 * index
    image[..., 1] //= 2  # R, G and B differ, so colour conversions are visible
    return image if rgb else image[..., 0]


def write_class_folder(root: Path, classes=("cat", "dog", "owl"), per_class=4, size=(12, 10),
                       extension=".png") -> dict[Path, np.ndarray]:
    """root/<class>/<i>.png for every class; returns {path: the uint8 image written}."""
    written = {}
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            path = root / name / f"{index:02d}{extension}"
            image = class_image(label, index, size)
            skimage.io.imsave(path, image, check_contrast=False)
            written[path] = image
    return written


def folder_fingerprint(root: Path) -> dict:
    """{relative path: (bytes md5, mtime_ns)} of every file under root."""
    return {
        str(path.relative_to(root)): (hashlib.md5(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*")) if path.is_file()
    }
