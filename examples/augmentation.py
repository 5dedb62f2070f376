"""Train the notes' MNIST CNN with and without data augmentation; compare them on a rotated and shifted test set.

Both runs get the same budget, initial weights and batch order (Adam, lr 1e-3, batch 50,
1,500 iterations by default); the augmented run sees every training batch randomly
rotated (up to +-30 degrees), shifted (up to +-4 px) and zoomed (0.9x to 1.1x), drawn
afresh per batch. The transformed test set rotates each test image by up to +-30 degrees
and shifts it by up to +-4 px (one fixed, seeded draw per image). Prints both models'
accuracy on the clean and on the transformed test set, and saves a PNG grid of training
digits above augmented versions of them.

    python examples/augmentation.py --data-dir ../shared/datasets/mnist
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import dlcore
from dlcore.data import Compose, RandomRotation, RandomScale, RandomTranslation, load_mnist
from dlcore.optim import Adam
from dlcore.zoo import mnist_cnn


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1_500, help="training iterations of each model")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--backend", choices=dlcore.backend.BACKENDS, default=None,
                        help="numpy, cupy or emu (default: DLCORE_BACKEND, else cupy if a GPU is usable)")
    parser.add_argument("--data-dir", default=None,
                        help="folder with the MNIST IDX files (default: DLCORE_DATA, else download)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-limit", type=int, default=None,
                        help="evaluate on the first N test images only (quick runs)")
    parser.add_argument("--out-dir", default="runs/augmentation", help="where the grid and results go")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def training_augmentation(seed: int) -> Compose:
    """Random rotation, shift and zoom, fused by Compose into one warp per image."""
    return Compose([RandomRotation(30), RandomTranslation(4), RandomScale((0.9, 1.1))], seed=seed)


def rotated_and_shifted(images: np.ndarray, seed: int) -> np.ndarray:
    """A copy of images (N, 1, 28, 28), each rotated by up to +-30 degrees and shifted by up to +-4 px."""
    return Compose([RandomRotation(30), RandomTranslation(4)], seed=seed)(images)


class TimedCalls:
    """Forwards calls to `function` and adds up the seconds spent in them."""

    def __init__(self, function):
        self.function, self.calls, self.seconds = function, 0, 0.0

    def __call__(self, *args):
        start = time.perf_counter()
        result = self.function(*args)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return result


def train(x, y, args, augment=None):
    """The notes' network trained on (x, y); the same initial weights and batches for every call."""
    dlcore.manual_seed(args.seed)
    model = mnist_cnn()
    model.fit(x, y, optimizer=Adam(model.parameters(), lr=args.lr), batch_size=args.batch_size,
              iterations=args.iterations, rng=args.seed, progress=not args.no_progress,
              verbose=False, augment=augment)
    return model


def save_grid(images: np.ndarray, augment: Compose, path: Path, copies: int = 3) -> Path:
    """A PNG grid: images (n, 1, H, W) in the top row, `copies` rows of augmented versions below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [images] + [augment(images) for _ in range(copies)]
    fig, axes = plt.subplots(len(rows), len(images), figsize=(1.1 * len(images), 1.2 * len(rows)))
    for row, (batch, row_axes) in enumerate(zip(rows, axes)):
        for image, ax in zip(batch[:, 0], row_axes):
            ax.imshow(image, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        row_axes[0].set_ylabel("original" if row == 0 else f"augmented {row}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.backend:
        dlcore.set_backend(args.backend)
    print(f"backend: {dlcore.get_backend().name}")
    x_train, y_train = load_mnist("train", data_dir=args.data_dir)
    x_test, y_test = load_mnist("test", data_dir=args.data_dir)
    x_test, y_test = x_test[: args.test_limit], y_test[: args.test_limit]
    test_sets = {"clean test": x_test, "rotated+shifted test": rotated_and_shifted(x_test, seed=args.seed)}
    print(f"train {len(x_train)}, test {len(x_test)} images; {args.iterations} iterations "
          f"of {args.batch_size} per model")

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    grid = save_grid(x_train[:10], training_augmentation(args.seed + 1), out_dir / "augmented_digits.png")

    augment = TimedCalls(training_augmentation(args.seed + 1))
    accuracy, seconds = {}, {}
    for name, augment_or_none in (("plain", None), ("augmented", augment)):
        start = time.perf_counter()
        model = train(x_train, y_train, args, augment_or_none)
        seconds[name] = time.perf_counter() - start
        accuracy[name] = {test: model.evaluate(x, y_test)["accuracy"] for test, x in test_sets.items()}

    print(f"\n{'':<10}" + "".join(f"{test:>22}" for test in test_sets))
    for name, scores in accuracy.items():
        print(f"{name:<10}" + "".join(f"{scores[test]:>22.4f}" for test in test_sets))
    print(f"\ntraining time: plain {seconds['plain']:.0f} s, augmented {seconds['augmented']:.0f} s, "
          f"of which augmentation {augment.seconds:.1f} s "
          f"({1e3 * augment.seconds / augment.calls:.2f} ms per batch of {args.batch_size})")

    record = {"args": vars(args), "accuracy": accuracy, "seconds": seconds,
              "augmentation_ms_per_batch": 1e3 * augment.seconds / augment.calls}
    (out_dir / "results.json").write_text(json.dumps(record, indent=1))
    print(f"wrote {grid} and {out_dir / 'results.json'}")
    return accuracy


if __name__ == "__main__":
    main()
