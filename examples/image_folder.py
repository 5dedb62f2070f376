"""Train a small CNN on a folder of your own images, one subfolder per class, and report per class.

    photos/cat/*.jpg  photos/dog/*.png  ...     -> python examples/image_folder.py photos

The folder is read by dlcore.data.load_image_folder (resized to --image-size, RGB, a seeded
20% held out for validation; --stream reads each batch from disk instead of loading the
folder). Without a folder the example writes a demo one first: crops of scikit-image's
sample photos (astronaut, coffee, chelsea the cat, rocket), one class per photo. It prints
the per-class precision / recall table of the validation images and writes the training
curves and the confusion matrix as PNGs.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import skimage.data
import skimage.io
import skimage.transform

import dlcore
from dlcore.data import Compose, RandomFlip, load_image_folder
from dlcore.layers import Conv2D, Dense, GlobalAvgPool2D, MaxPool2D
from dlcore.metrics import class_report, confusion_matrix
from dlcore.optim import Adam
from dlcore.plots import plot_confusion_matrix, plot_curves

DEMO_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=None,
                        help="images, one subfolder per class (default: write a demo folder into --out-dir)")
    parser.add_argument("--image-size", type=int, nargs=2, default=(32, 32), metavar=("H", "W"))
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--stream", action="store_true", help="read each batch from disk")
    parser.add_argument("--demo-images", type=int, default=24, help="images per class of the demo folder")
    parser.add_argument("--backend", choices=dlcore.backend.BACKENDS, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default="runs/image_folder", help="where the plots (and the demo folder) go")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def write_demo_folder(root: Path, per_class: int, seed: int) -> Path:
    """root/<photo>/<i>.png: random 96x96 crops of each sample photo, as 8-bit RGB."""
    rng = np.random.default_rng(seed)
    for name in DEMO_PHOTOS:
        photo = getattr(skimage.data, name)()  # (H, W, 3) uint8
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            top, left = rng.integers(0, photo.shape[0] - 96), rng.integers(0, photo.shape[1] - 96)
            skimage.io.imsave(root / name / f"{index:03d}.png", photo[top:top + 96, left:left + 96],
                              check_contrast=False)
    return root


def small_cnn(num_classes: int) -> dlcore.Sequential:
    """conv 3x3x16 + ReLU, max-pool, conv 3x3x32 + ReLU, global average pool, dense -> classes."""
    return dlcore.Sequential([
        Conv2D(3, 16, 3, padding="same", activation="relu"), MaxPool2D(2),
        Conv2D(16, 32, 3, padding="same", activation="relu"), GlobalAvgPool2D(),
        Dense(32, num_classes),
    ])


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.backend:
        dlcore.set_backend(args.backend)
    dlcore.manual_seed(args.seed)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(args.folder) if args.folder else write_demo_folder(out_dir / "demo_images", args.demo_images, args.seed)

    training, validation = load_image_folder(folder, image_size=tuple(args.image_size), color_mode="rgb",
                                             validation_split=0.2, seed=args.seed, stream=args.stream)
    print(f"{folder}: classes {', '.join(training.class_names)}; "
          f"{len(training)} training, {len(validation)} validation images")

    model = small_cnn(len(training.class_names))
    history = model.fit(training.images, training.labels, optimizer=Adam(model.parameters(), lr=args.lr),
                        batch_size=args.batch_size, iterations=args.iterations, eval_every=args.eval_every,
                        validation_data=(validation.images, validation.labels), rng=args.seed,
                        augment=Compose([RandomFlip()], seed=args.seed), progress=not args.no_progress)

    scores = model.predict(validation.images)  # (N, K) logits
    confusion = confusion_matrix(validation.labels, scores, num_classes=len(validation.class_names))
    report = class_report(confusion, validation.class_names)
    print(report)
    plot_curves(history, out_dir / "curves.png", title=f"{folder.name}: {len(training)} images")
    plot_confusion_matrix(confusion, out_dir / "confusion.png", validation.class_names, title="validation")
    print(f"plots: {out_dir / 'curves.png'}, {out_dir / 'confusion.png'}")
    return {"report": report, "history": history}


if __name__ == "__main__":
    main()
