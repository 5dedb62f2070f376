"""Train the zoo's ResNet on Fashion-MNIST beside the notes' CNN, with the same time budget.

Both get the same data (55,000 training images, the last 5,000 as validation, the 10,000
test images), the same augmentation (horizontal flips and shifts of up to 2 pixels) and the
same optimizer schedule (Adam, cosine decay to zero over the run). A run is sized to the
budget: a few timed steps measure each model's speed on this machine, and the run gets as
many iterations as fit in `--minutes` at that speed. Prints each model's test accuracy and
its measured time, and writes both histories.

    python examples/resnet_fashion_mnist.py --data-dir /usr/share/datasets/fashion-mnist

Fashion-MNIST: the loader downloads it (dataset="fashion_mnist"), or Debian's package
`dataset-fashion-mnist` installs it in /usr/share/datasets/fashion-mnist.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import dlcore
from dlcore.callbacks import CosineDecay
from dlcore.data import Compose, RandomFlip, RandomTranslation, load_mnist, train_validation_split
from dlcore.losses import SoftmaxCrossEntropy
from dlcore.optim import Adam
from dlcore.zoo import mnist_cnn, resnet


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training time budget of each model")
    parser.add_argument("--depth", type=int, default=20, help="ResNet depth, 6n + 2 (8, 14, 20, ...)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's initial rate, decayed to 0 by a cosine")
    parser.add_argument("--models", default="resnet,notes_cnn", help="comma-separated: resnet, notes_cnn")
    parser.add_argument("--backend", choices=dlcore.backend.BACKENDS, default=None)
    parser.add_argument("--data-dir", default=None, help="folder with the Fashion-MNIST IDX files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-limit", type=int, default=None, help="evaluate on the first N test images only")
    parser.add_argument("--out-dir", default="runs/resnet_fashion_mnist")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


BUILDERS = {
    "resnet": lambda args: resnet(args.depth, input_shape=(1, 28, 28), num_classes=10, rng=args.seed),
    "notes_cnn": lambda args: mnist_cnn(rng=args.seed),
}


def seconds_per_step(model, x, y, batch_size: int, steps: int = 6) -> float:
    """The median time of a training step of `model` (a throwaway copy: its weights change)
    after two warm-up steps."""
    optimizer, loss_fn = Adam(model.parameters(), lr=1e-3), SoftmaxCrossEntropy()
    times = []
    for step in range(steps + 2):
        index = slice(step * batch_size, (step + 1) * batch_size)
        start = time.perf_counter()
        loss_fn(model(x[index]), y[index])
        model.backward(loss_fn.backward())
        optimizer.step()
        times.append(time.perf_counter() - start)
    return float(np.median(times[2:]))


def train(name: str, args, data) -> dict:
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data
    step = seconds_per_step(BUILDERS[name](args), x_train, y_train, args.batch_size)
    dlcore.manual_seed(args.seed)
    model = BUILDERS[name](args)
    iterations = max(1, int(args.minutes * 60 / step))
    print(f"{name}: {sum(p.data.size for p in model.parameters()):,} parameters, {step * 1e3:.0f} ms per "
          f"step of {args.batch_size} -> {iterations} iterations ({iterations * args.batch_size / len(x_train):.1f} "
          "epochs) in the budget")
    augment = Compose([RandomFlip(horizontal=True), RandomTranslation(2)], seed=args.seed)
    optimizer = Adam(model.parameters(), lr=args.lr)
    start = time.perf_counter()
    history = model.fit(x_train, y_train, optimizer=optimizer, batch_size=args.batch_size, iterations=iterations,
                        validation_data=(x_val, y_val), eval_every=max(1, iterations // 5), eval_samples=1_000,
                        augment=augment, callbacks=[CosineDecay(iterations)], rng=args.seed,
                        progress=not args.no_progress)
    seconds = time.perf_counter() - start
    test = model.evaluate(x_test, y_test, batch_size=500)
    print(f"{name}: test accuracy {test['accuracy']:.4f} after {iterations} iterations in {seconds / 60:.1f} min")
    return {"test": test, "seconds": seconds, "iterations": iterations, "history": history.history}


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.backend:
        dlcore.set_backend(args.backend)
    print(f"backend: {dlcore.get_backend().name}")
    train_split = train_validation_split(*load_mnist("train", data_dir=args.data_dir, dataset="fashion_mnist"))
    x_test, y_test = load_mnist("test", data_dir=args.data_dir, dataset="fashion_mnist")
    if args.test_limit:
        x_test, y_test = x_test[: args.test_limit], y_test[: args.test_limit]
    data = (*train_split, (x_test, y_test))
    print(f"train {len(data[0][0])}, validation {len(data[1][0])}, test {len(x_test)} images; "
          f"{args.minutes:g} minutes per model")
    results = {name: train(name, args, data) for name in args.models.split(",")}
    print(f"\n{'model':<12}{'test accuracy':>15}{'minutes':>10}{'iterations':>12}")
    for name, result in results.items():
        print(f"{name:<12}{result['test']['accuracy']:>15.4f}{result['seconds'] / 60:>10.1f}{result['iterations']:>12}")
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    print(f"wrote {out_dir / 'results.json'}")
    return results


if __name__ == "__main__":
    main()
