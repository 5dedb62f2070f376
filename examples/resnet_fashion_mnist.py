"""Train the zoo's ResNet on Fashion-MNIST beside the notes' CNN, with the same time budget.

Both get the same data (55,000 training images, the last 5,000 as validation, the 10,000
test images), the same augmentation (horizontal flips and shifts of up to 2 pixels) and the
same optimizer schedule: Adam with a learning rate that falls along half a cosine from
`--lr` to zero over the wall-clock budget (`--minutes`), training stopping when the budget
is spent, evaluations included. So each model trains as far as this machine lets it in
the same time. Prints each model's test accuracy, iterations and minutes, and writes both
histories.

    python examples/resnet_fashion_mnist.py --data-dir /usr/share/datasets/fashion-mnist

Fashion-MNIST: the loader downloads it (dataset="fashion_mnist"), or Debian's package
`dataset-fashion-mnist` installs it in /usr/share/datasets/fashion-mnist.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import dlcore
from dlcore.callbacks import Callback
from dlcore.data import Compose, RandomFlip, RandomTranslation, load_mnist, train_validation_split
from dlcore.optim import Adam
from dlcore.zoo import mnist_cnn, resnet


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training time budget of each model")
    parser.add_argument("--depth", type=int, default=14, help="ResNet depth, 6n + 2 (8, 14, 20, ...)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--eval-every", type=int, default=500, help="iterations between evaluations (1,000 samples)")
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


class TimeBudget(Callback):
    """lr = lr0 * (1 + cos(pi * t / budget)) / 2 at elapsed time t, and the end of training
    once the budget is spent: a cosine schedule over wall-clock time instead of iterations."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def on_train_begin(self):
        self.start = time.perf_counter()

    def fraction(self) -> float:
        return min((time.perf_counter() - self.start) / self.seconds, 1.0)

    def on_iteration_begin(self, iteration: int):
        self.run.optimizer.lr = self.run.optimizer.initial_lr * (1 + math.cos(math.pi * self.fraction())) / 2

    def on_iteration_end(self, iteration: int, logs: dict):
        self.run.stop_training = self.fraction() >= 1.0

    def on_train_end(self):
        self.iterations = self.run.iteration


def train(name: str, args, data) -> dict:
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data
    dlcore.manual_seed(args.seed)
    model = BUILDERS[name](args)
    print(f"{name}: {sum(p.data.size for p in model.parameters()):,} parameters")
    augment = Compose([RandomFlip(horizontal=True), RandomTranslation(2)], seed=args.seed)
    optimizer = Adam(model.parameters(), lr=args.lr)
    budget = TimeBudget(args.minutes * 60)
    start = time.perf_counter()
    history = model.fit(x_train, y_train, optimizer=optimizer, batch_size=args.batch_size, iterations=10**7,
                        validation_data=(x_val, y_val), eval_every=args.eval_every, eval_samples=1_000,
                        augment=augment, callbacks=[budget], rng=args.seed, progress=not args.no_progress)
    seconds = time.perf_counter() - start
    iterations = budget.iterations
    test = model.evaluate(x_test, y_test, batch_size=500)
    print(f"{name}: test accuracy {test['accuracy']:.4f} after {iterations} iterations "
          f"({iterations * args.batch_size / len(x_train):.1f} epochs) in {seconds / 60:.1f} min")
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
