"""Transfer learning: reuse the convolutional part of a network trained on digits 0-4 for digits 5-9.

1. Pretrain the notes' CNN (5 outputs) on the training digits 0-4.
2. Take --labels training digits 5-9 (a few hundred). Compare, with the same budget:
   - from scratch: a fresh notes' CNN trained on those labels only;
   - transfer: the pretrained conv1..flatten, frozen, under a new fully connected head
     (fc 3136->1024 + ReLU, dropout, fc 1024->5); backward stops at the new head, and
     then --fine-tune-iterations more with every layer unfrozen at a tenth of the rate;
   - feature extraction: the pretrained "flatten" activations computed once with
     `features`, and the same new head trained on them alone (no convolutions per step).
3. Print the accuracy of each on the test digits 5-9.

    python examples/transfer_learning.py --data-dir ../shared/datasets/mnist
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import dlcore
from dlcore.data import load_mnist, train_validation_split
from dlcore.init import Constant, TruncatedNormal
from dlcore.layers import Dense, Dropout
from dlcore.models import Sequential
from dlcore.optim import Adam
from dlcore.zoo import mnist_cnn


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-iterations", type=int, default=2_000)
    parser.add_argument("--iterations", type=int, default=500, help="training of the new head / from scratch")
    parser.add_argument("--fine-tune-iterations", type=int, default=200)
    parser.add_argument("--labels", type=int, default=300, help="labelled training digits 5-9")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--test-limit", type=int, default=None, help="evaluate on the first N test digits 5-9")
    parser.add_argument("--backend", choices=dlcore.backend.BACKENDS, default=None)
    parser.add_argument("--data-dir", default=None, help="folder with the MNIST IDX files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def new_head(rng, name_prefix: str = "new_") -> list:
    """fc 3136->1024 + ReLU -> dropout -> fc 1024->5, initialized as the notes' head."""
    common = dict(weight_init=TruncatedNormal(0.1), bias_init=Constant(0.1), rng=rng)
    return [Dense(7 * 7 * 64, 1024, activation="relu", name=f"{name_prefix}fc1", **common),
            Dropout(0.5, rng=rng, name=f"{name_prefix}dropout"),
            Dense(1024, 5, name=f"{name_prefix}fc2", **common)]


def main(argv=None) -> dict[str, float]:
    args = parse_args(argv)
    if args.backend:
        dlcore.set_backend(args.backend)
    print(f"backend: {dlcore.get_backend().name}")
    dlcore.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    (x_train, y_train), _ = train_validation_split(*load_mnist("train", data_dir=args.data_dir))
    x_test, y_test = load_mnist("test", data_dir=args.data_dir)
    low, high = y_train < 5, y_train >= 5
    few = rng.choice(np.flatnonzero(high), size=args.labels, replace=False)
    x_few, y_few = x_train[few], y_train[few] - 5
    test = (y_test >= 5).nonzero()[0][: args.test_limit]
    x_test, y_test = x_test[test], y_test[test] - 5
    print(f"pretraining on {low.sum()} digits 0-4; {len(x_few)} labelled digits 5-9; "
          f"testing on {len(x_test)} digits 5-9")
    fit = dict(batch_size=args.batch_size, rng=args.seed, progress=not args.no_progress, verbose=False)

    def timed(what, model, x, y, lr, iterations):
        start = time.perf_counter()
        model.fit(x, y, optimizer=Adam(model.parameters(), lr=lr), iterations=iterations, **fit)
        print(f"  {what}: {iterations} iterations in {time.perf_counter() - start:.0f} s")

    base = mnist_cnn(num_classes=5)
    timed("pretraining", base, x_train[low], y_train[low], args.lr, args.pretrain_iterations)

    results = {}
    budget = args.iterations + args.fine_tune_iterations
    scratch = mnist_cnn(num_classes=5)
    timed("from scratch", scratch, x_few, y_few, args.lr, budget)
    results["from scratch"] = scratch.evaluate(x_test, y_test)["accuracy"]

    head = Sequential(new_head(rng, name_prefix="extracted_"))
    features = base.features(x_few, "flatten")  # (labels, 3136), computed once
    print(f"  extracted 'flatten' features {features.shape}")
    timed("head on extracted features", head, features, y_few, args.lr, budget)
    results["feature extraction"] = head.evaluate(base.features(x_test, "flatten"), y_test)["accuracy"]

    # the transfer model shares the base's layers: fine-tuning changes them, so it comes last
    transfer = Sequential(base.up_to("flatten").freeze().layers + new_head(rng))
    timed("transfer, frozen base", transfer, x_few, y_few, args.lr, args.iterations)
    results["transfer (frozen base)"] = transfer.evaluate(x_test, y_test)["accuracy"]
    if args.fine_tune_iterations:
        transfer.unfreeze()
        timed("transfer, fine-tuning", transfer, x_few, y_few, args.lr / 10, args.fine_tune_iterations)
        results["transfer + fine-tuning"] = transfer.evaluate(x_test, y_test)["accuracy"]

    print(f"accuracy on the test digits 5-9 after training on {args.labels} labels:")
    for what, accuracy in results.items():
        print(f"  {what:<24}{accuracy:.4f}")
    return results


if __name__ == "__main__":
    main()
