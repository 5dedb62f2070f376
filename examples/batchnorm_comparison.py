"""Train the notes' MNIST CNN and its batchnorm variant with the same budget and compare.

Both get the same iterations, batch size, learning rate (Adam), data order and
evaluation schedule; every --eval-every iterations the accuracy on --eval-samples
training and validation images is recorded. Prints each variant's test accuracy and
time, and writes one PNG with the accuracy curves of both.

    python examples/batchnorm_comparison.py --data-dir ../shared/datasets/mnist
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import dlcore
from dlcore.data import load_mnist, train_validation_split
from dlcore.optim import Adam
from dlcore.zoo import mnist_cnn, mnist_cnn_batchnorm

VARIANTS = {"notes' CNN": mnist_cnn, "with batchnorm": mnist_cnn_batchnorm}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1_000)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--eval-samples", type=int, default=2_048)
    parser.add_argument("--train-limit", type=int, default=None, help="train on the first N training images only")
    parser.add_argument("--backend", choices=dlcore.backend.BACKENDS, default=None)
    parser.add_argument("--data-dir", default=None, help="folder with the MNIST IDX files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default="runs/batchnorm_comparison", help="where the plot and histories go")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def plot_curves(histories: dict, path: Path, title: str) -> Path:
    """Validation (solid) and training-subset (dashed) accuracy of each variant against the iteration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (name, history), color in zip(histories.items(), ("tab:blue", "tab:orange")):
        ax.plot(history["iteration"], history["val_accuracy"], color=color, marker="o", markersize=3,
                label=f"{name}, validation")
        ax.plot(history["iteration"], history["accuracy"], color=color, linestyle="--", label=f"{name}, training")
    ax.set_xlabel("iteration")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv=None) -> dict[str, float]:
    args = parse_args(argv)
    if args.backend:
        dlcore.set_backend(args.backend)
    print(f"backend: {dlcore.get_backend().name}")
    (x_train, y_train), (x_val, y_val) = train_validation_split(*load_mnist("train", data_dir=args.data_dir))
    x_test, y_test = load_mnist("test", data_dir=args.data_dir)
    if args.train_limit:
        x_train, y_train = x_train[: args.train_limit], y_train[: args.train_limit]
    print(f"train {len(x_train)}, validation {len(x_val)}, test {len(x_test)} images; "
          f"{args.iterations} iterations of {args.batch_size}, Adam lr {args.lr}")

    histories, results = {}, {}
    for name, build in VARIANTS.items():
        dlcore.manual_seed(args.seed)
        model = build()
        start = time.perf_counter()
        history = model.fit(
            x_train, y_train, optimizer=Adam(model.parameters(), lr=args.lr), batch_size=args.batch_size,
            iterations=args.iterations, validation_data=(x_val, y_val), eval_every=args.eval_every,
            eval_samples=args.eval_samples, rng=args.seed, progress=not args.no_progress, verbose=False,
        )
        seconds = time.perf_counter() - start
        test = model.evaluate(x_test, y_test)
        histories[name], results[name] = history.history, test["accuracy"]
        print(f"{name:<16} test accuracy {test['accuracy']:.4f} (loss {test['loss']:.4f}), "
              f"validation curve {' '.join(f'{a:.3f}' for a in history['val_accuracy'])}, {seconds:.0f} s")

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    title = ", ".join(f"{name} {accuracy:.4f}" for name, accuracy in results.items())
    plot = plot_curves(histories, out_dir / "accuracy.png", f"test accuracy: {title}")
    record = {"args": vars(args), "test_accuracy": results, "histories": histories}
    (out_dir / "histories.json").write_text(json.dumps(record, indent=1))
    print(f"wrote {plot} and {out_dir / 'histories.json'}")
    return results


if __name__ == "__main__":
    main()
