"""Hint a model with two inputs at once: MNIST pixels and noisy high-level features.

The "high-level features" stand in for what one knows about a sample besides its image
(for a car: brand, model, age). Here they are a 12-vector made from the true label:
a one-hot of the digit, switched to a random other digit with probability --hint-noise,
and the bits "digit >= 5" and "digit is odd", each flipped with probability --bit-noise.
They are informative but noisy, so a model should not trust them blindly.

Four models, same budget: image only (a small CNN), hints only (a small dense net), and
the two-branch model (CNN branch + hint branch, concatenated, dense head) without and
with per-branch regularization: dropout on one branch's output and L2 weight decay on
its parameters through an optimizer parameter group, so that branch's features count
less (--regularize picks the branch). Prints each model's test accuracy, overall and on
the test digits whose one-hot hint is wrong.

    python examples/hinted_model.py --data-dir ../shared/datasets/mnist
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import dlcore
from dlcore.data import load_mnist
from dlcore.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D
from dlcore.models import MultiInput, Sequential
from dlcore.optim import Adam

NUM_CLASSES = 10
HINT_SIZE = NUM_CLASSES + 2


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1_000)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--train-size", type=int, default=2_000,
                        help="labelled training images (few, so that the hints matter)")
    parser.add_argument("--hint-noise", type=float, default=0.3, help="probability that the one-hot hint is wrong")
    parser.add_argument("--bit-noise", type=float, default=0.2, help="flip probability of the two hint bits")
    parser.add_argument("--regularize", choices=("image", "hints"), default="image",
                        help="the branch that gets dropout and weight decay in the regularized model")
    parser.add_argument("--dropout", type=float, default=0.5, help="dropout rate on the regularized branch")
    parser.add_argument("--weight-decay", type=float, default=1e-3, help="L2 on the regularized branch")
    parser.add_argument("--backend", choices=dlcore.backend.BACKENDS, default=None)
    parser.add_argument("--data-dir", default=None, help="folder with the MNIST IDX files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def make_hints(labels: np.ndarray, hint_noise: float, bit_noise: float, rng: np.random.Generator) -> np.ndarray:
    """labels (N,) -> hints (N, 12) float32: a noisy one-hot (10), noisy "digit >= 5", noisy "digit is odd"."""
    n = len(labels)
    wrong = rng.random(n) < hint_noise
    shift = rng.integers(1, NUM_CLASSES, n)  # a uniformly random other digit
    hinted = np.where(wrong, (labels + shift) % NUM_CLASSES, labels)
    bits = np.stack([labels >= 5, labels % 2 == 1], axis=1) ^ (rng.random((n, 2)) < bit_noise)
    return np.concatenate([np.eye(NUM_CLASSES)[hinted], bits], axis=1).astype(np.float32)  # (N, 12)


def image_branch(rng, dropout: float = 0.0) -> list:
    """(N, 1, 28, 28) -> (N, 64): conv 5x5x8 -> pool -> conv 5x5x16 -> pool -> dense 64, ReLUs."""
    return [
        Conv2D(1, 8, 5, padding="same", activation="relu", rng=rng, name="image_conv1"),   # (N, 8, 28, 28)
        MaxPool2D(2, name="image_pool1"),                                                   # (N, 8, 14, 14)
        Conv2D(8, 16, 5, padding="same", activation="relu", rng=rng, name="image_conv2"),  # (N, 16, 14, 14)
        MaxPool2D(2, name="image_pool2"),                                                   # (N, 16, 7, 7)
        Flatten(name="image_flatten"),                                                      # (N, 784)
        Dense(784, 64, activation="relu", rng=rng, name="image_fc"),                       # (N, 64)
        Dropout(dropout, rng=rng, name="image_dropout"),
    ]


def hint_branch(rng, dropout: float = 0.0) -> list:
    """(N, 12) -> (N, 32)."""
    return [Dense(HINT_SIZE, 32, activation="relu", rng=rng, name="hint_fc"),
            Dropout(dropout, rng=rng, name="hint_dropout")]


def build(kind: str, args, rng):
    """(model, optimizer) for kind "image", "hints", "hinted" or "hinted_regularized"."""
    if kind == "image":
        model = Sequential(image_branch(rng) + [Dense(64, NUM_CLASSES, rng=rng, name="head")])
        return model, Adam(model.parameters(), lr=args.lr)
    if kind == "hints":
        model = Sequential(hint_branch(rng) + [Dense(32, NUM_CLASSES, rng=rng, name="head")])
        return model, Adam(model.parameters(), lr=args.lr)
    regularized = kind == "hinted_regularized"
    image_rate = args.dropout if regularized and args.regularize == "image" else 0.0
    hint_rate = args.dropout if regularized and args.regularize == "hints" else 0.0
    model = MultiInput(branches=[image_branch(rng, image_rate), hint_branch(rng, hint_rate)],
                       head=[Dense(64 + 32, NUM_CLASSES, rng=rng, name="head")])  # (N, 96) -> (N, 10)
    target = 0 if args.regularize == "image" else 1
    decay = args.weight_decay if regularized else 0.0
    groups = [{"params": branch.parameters(), "weight_decay": decay if i == target else 0.0}
              for i, branch in enumerate(model.branches)]
    return model, Adam(groups + [{"params": model.head.parameters()}], lr=args.lr)


def main(argv=None) -> dict[str, float]:
    args = parse_args(argv)
    if args.backend:
        dlcore.set_backend(args.backend)
    print(f"backend: {dlcore.get_backend().name}")
    rng = np.random.default_rng(args.seed)
    images, labels = load_mnist("train", data_dir=args.data_dir)
    chosen = rng.choice(len(images), size=args.train_size, replace=False)
    x_train, y_train = images[chosen], labels[chosen]
    x_test, y_test = load_mnist("test", data_dir=args.data_dir)
    h_train = make_hints(y_train, args.hint_noise, args.bit_noise, rng)
    h_test = make_hints(y_test, args.hint_noise, args.bit_noise, rng)
    hint_wrong = h_test[:, :NUM_CLASSES].argmax(axis=1) != y_test
    print(f"train {len(x_train)} images with hints, test {len(x_test)}; "
          f"the one-hot hint is wrong for {hint_wrong.mean():.1%} of the test digits")

    inputs = {"image": (x_train, x_test), "hints": (h_train, h_test),
              "hinted": ((x_train, h_train), (x_test, h_test))}
    accuracies = {}
    print(f"{'model':<22}{'test accuracy':>15}{'where hint wrong':>18}{'seconds':>9}")
    for kind in ("image", "hints", "hinted", "hinted_regularized"):
        train_x, test_x = inputs[kind.removesuffix("_regularized")]
        dlcore.manual_seed(args.seed)
        model, optimizer = build(kind, args, np.random.default_rng(args.seed))
        start = time.perf_counter()
        model.fit(train_x, y_train, optimizer=optimizer, batch_size=args.batch_size, iterations=args.iterations,
                  rng=args.seed, progress=not args.no_progress, verbose=False)
        seconds = time.perf_counter() - start
        correct = model.predict(test_x).argmax(axis=1) == y_test
        accuracies[kind] = float(correct.mean())
        print(f"{kind:<22}{correct.mean():>15.4f}{correct[hint_wrong].mean():>18.4f}{seconds:>9.0f}")
    return accuracies


if __name__ == "__main__":
    main()
