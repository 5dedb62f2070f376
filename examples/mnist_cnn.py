"""Train the course notes' MNIST CNN with the notes' recipe.

Adam (lr 1e-4), batch 32, 20,000 iterations; every 1,000 iterations the accuracy on
2,048-sample subsets of the training and validation sets; then the accuracy on the
whole test set (the notes report 99.15%) and a PNG plot of the two accuracy curves.

    python examples/mnist_cnn.py --data-dir ../shared/datasets/mnist
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import dlcore
from dlcore.data import load_mnist, train_validation_split
from dlcore.optim import Adam
from dlcore.plots import plot_history
from dlcore.zoo import mnist_cnn


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--eval-every", type=int, default=1_000)
    parser.add_argument("--eval-samples", type=int, default=2_048)
    parser.add_argument("--backend", choices=dlcore.backend.BACKENDS, default=None,
                        help="numpy, cupy or emu (default: DLCORE_BACKEND, else cupy if a GPU is usable)")
    parser.add_argument("--data-dir", default=None,
                        help="folder with the MNIST IDX files (default: DLCORE_DATA, else download)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-limit", type=int, default=None,
                        help="train on the first N training images only (quick runs, the emu backend)")
    parser.add_argument("--test-limit", type=int, default=None,
                        help="evaluate on the first N test images only")
    parser.add_argument("--out-dir", default="runs/mnist_cnn", help="where the plot and history go")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv=None) -> float:
    args = parse_args(argv)
    if args.backend:
        dlcore.set_backend(args.backend)
    print(f"backend: {dlcore.get_backend().name}")
    dlcore.manual_seed(args.seed)

    (x_train, y_train), (x_val, y_val) = train_validation_split(*load_mnist("train", data_dir=args.data_dir))
    x_test, y_test = load_mnist("test", data_dir=args.data_dir)
    if args.train_limit:
        x_train, y_train = x_train[: args.train_limit], y_train[: args.train_limit]
    if args.test_limit:
        x_test, y_test = x_test[: args.test_limit], y_test[: args.test_limit]
    print(f"train {len(x_train)}, validation {len(x_val)}, test {len(x_test)} images")

    model = mnist_cnn()
    optimizer = Adam(model.parameters(), lr=args.lr)
    start = time.perf_counter()
    history = model.fit(
        x_train, y_train, optimizer=optimizer, batch_size=args.batch_size,
        iterations=args.iterations, validation_data=(x_val, y_val),
        eval_every=args.eval_every, eval_samples=args.eval_samples,
        rng=args.seed, progress=not args.no_progress,
    )
    seconds = time.perf_counter() - start
    test = model.evaluate(x_test, y_test)
    print(f"test accuracy {test['accuracy']:.4f} (loss {test['loss']:.4f}) "
          f"after {args.iterations} iterations in {seconds:.0f} s")

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_history(history, out_dir / "accuracy.png", metrics=("accuracy", "val_accuracy"),
                 title=f"MNIST CNN, test accuracy {test['accuracy']:.4f}")
    record = {"args": vars(args), "test": test, "seconds": seconds, "history": history.history}
    (out_dir / "history.json").write_text(json.dumps(record, indent=1))
    print(f"wrote {out_dir / 'accuracy.png'} and {out_dir / 'history.json'}")
    return test["accuracy"]


if __name__ == "__main__":
    main()
