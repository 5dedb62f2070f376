"""One training step of the notes' network and one evaluation forward, on random images: the
process that compute-sanitizer runs (`python -m dlcore.gpu_check.one_step --backend cupy`).

On cupy, CuPy's memory pool is turned off so that every array is its own allocation and
memcheck sees an access past any array's end.
"""
from __future__ import annotations

import argparse

import numpy as np

from dlcore.backend import get_backend, to_backend, to_numpy, use_backend
from dlcore.gpu_check.training import LEARNING_RATE, training_step
from dlcore.losses import SoftmaxCrossEntropy
from dlcore.optim import Adam
from dlcore.zoo import mnist_cnn


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="One training step of the notes' network (for compute-sanitizer).")
    parser.add_argument("--backend", default="cupy", choices=("numpy", "cupy", "emu"))
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    images = rng.random((args.batch_size, 1, 28, 28), dtype=np.float32)  # (N, 1, 28, 28)
    labels = rng.integers(0, 10, args.batch_size)
    with use_backend(args.backend):
        if args.backend == "cupy":
            get_backend().xp.cuda.set_allocator(None)
        model = mnist_cnn(rng=0)
        loss = training_step(model, Adam(model.parameters(), lr=LEARNING_RATE), SoftmaxCrossEntropy(),
                             to_backend(images), to_backend(labels))
        model.eval()
        logits = to_numpy(model(to_backend(images)))  # (N, 10)
    print(f"one step on {args.backend}: loss {loss:.4f}, eval logits finite: {bool(np.isfinite(logits).all())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
