"""Checkpoint, crash, resume: a resumed run ends bit-identical to an uninterrupted one.

Trains the notes' MNIST CNN (Adam, cosine learning-rate decay, early stopping on the
validation loss) with a checkpoint every --checkpoint-every iterations, "crashes" at
--crash-at, resumes from the last checkpoint in a freshly built model and optimizer, and
compares the result with the same run done without interruption. Then writes the history
(JSON and CSV), the accuracy and loss curves, the first-layer filters and the conv1 feature
maps of one test image as PNGs.

    python examples/resume_training.py --data-dir ../shared/datasets/mnist
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import dlcore
from dlcore.backend import to_numpy
from dlcore.callbacks import Callback, CosineDecay, EarlyStopping, ModelCheckpoint
from dlcore.data import load_mnist, train_validation_split
from dlcore.optim import Adam
from dlcore.plots import plot_curves, plot_feature_maps, plot_filters
from dlcore.zoo import mnist_cnn


class SimulatedCrash(RuntimeError):
    """Stands in for a killed process."""


class CrashAt(Callback):
    """Raises SimulatedCrash at the end of one iteration."""

    def __init__(self, iteration: int):
        self.iteration = iteration

    def on_iteration_end(self, iteration, logs):
        if iteration == self.iteration:
            raise SimulatedCrash(f"simulated crash at iteration {iteration}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--checkpoint-every", type=int, default=25)
    parser.add_argument("--crash-at", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-every", type=int, default=20)
    parser.add_argument("--eval-samples", type=int, default=256)
    parser.add_argument("--test-samples", type=int, default=2000, help="test images to score at the end")
    parser.add_argument("--patience", type=int, default=3, help="early stopping: evaluations without improvement")
    parser.add_argument("--backend", choices=dlcore.backend.BACKENDS, default=None)
    parser.add_argument("--data-dir", default=None,
                        help="folder with the MNIST IDX files (default: DLCORE_DATA, else download)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default="runs/resume_training")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if not 0 < args.checkpoint_every <= args.crash_at < args.iterations:
        parser.error("need 0 < --checkpoint-every <= --crash-at < --iterations")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.backend:
        dlcore.set_backend(args.backend)
    print(f"backend: {dlcore.get_backend().name}")
    (x_train, y_train), (x_val, y_val) = train_validation_split(*load_mnist("train", data_dir=args.data_dir))
    x_test, y_test = load_mnist("test", data_dir=args.data_dir)
    x_test, y_test = x_test[: args.test_samples], y_test[: args.test_samples]
    out_dir = Path(args.out_dir)
    options = dict(batch_size=args.batch_size, iterations=args.iterations, validation_data=(x_val, y_val),
                   eval_every=args.eval_every, eval_samples=args.eval_samples, rng=args.seed,
                   progress=not args.no_progress)

    def build(seed):
        model = mnist_cnn(rng=seed)
        return model, Adam(model.parameters(), lr=args.lr)

    def callbacks():
        return [CosineDecay(args.iterations), EarlyStopping("val_loss", patience=args.patience)]

    start = time.perf_counter()
    print(f"\n1) training with a checkpoint every {args.checkpoint_every} iterations; "
          f"the process 'crashes' at iteration {args.crash_at}")
    model, optimizer = build(args.seed)
    saver = ModelCheckpoint(out_dir / "checkpoints" / "ckpt-{iteration:05d}.npz", every=args.checkpoint_every)
    try:
        model.fit(x_train, y_train, optimizer=optimizer, callbacks=[*callbacks(), saver, CrashAt(args.crash_at)],
                  **options)
        print("   early stopping ended the run before the crash")
    except SimulatedCrash as crash:
        print(f"   {crash}")
    print(f"   checkpoints written: {', '.join(p.name for p in saver.saved)}")

    print(f"\n2) a new model and optimizer (other initial weights) resume from {saver.saved[-1].name}")
    model, optimizer = build(args.seed + 1)
    history = model.fit(x_train, y_train, optimizer=optimizer, callbacks=callbacks(),
                        resume_from=saver.saved[-1], **options)

    print("\n3) the same run without interruption, for comparison")
    reference, reference_optimizer = build(args.seed)
    reference_history = reference.fit(x_train, y_train, optimizer=reference_optimizer, callbacks=callbacks(),
                                      **options)

    difference = max(float(np.abs(to_numpy(p.data) - to_numpy(q.data)).max())
                     for p, q in zip(model.parameters(), reference.parameters()))
    identical = difference == 0 and history.history == reference_history.history
    test = model.evaluate(x_test, y_test)
    print(f"\nresumed vs uninterrupted: largest parameter difference {difference:g}, "
          f"histories {'equal' if history.history == reference_history.history else 'differ'} -> "
          f"{'bit-identical' if identical else 'NOT identical'}")
    print(f"test accuracy {test['accuracy']:.4f} on {len(x_test)} images after {history['iteration'][-1]} iterations "
          f"({time.perf_counter() - start:.0f} s for all three runs)")

    written = [history.to_json(out_dir / "history.json"), history.to_csv(out_dir / "history.csv"),
               plot_curves(history, out_dir / "curves.png", title=f"MNIST CNN, test accuracy {test['accuracy']:.4f}"),
               plot_filters(model["conv1"], out_dir / "filters_conv1.png"),
               plot_feature_maps(model, "conv1", x_test[0], out_dir / "feature_maps_conv1.png")]
    print("wrote " + ", ".join(str(path) for path in written))
    return {"identical": identical, "difference": difference, "test": test}


if __name__ == "__main__":
    main()
