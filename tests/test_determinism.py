"""The same seed gives bit-identical training on the NumPy backend, and on the emu
backend in deterministic mode, across separate processes."""
import os
import subprocess
import sys

import pytest

TRAIN_AND_HASH = """
import hashlib, sys
import numpy as np
import dlcore
from dlcore.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D
from dlcore.backend import to_numpy
from dlcore.optim import Adam

dlcore.set_backend(sys.argv[1])
dlcore.manual_seed(int(sys.argv[2]))
model = dlcore.Sequential([
    Conv2D(1, 4, 3, padding="same", activation="relu"), MaxPool2D(2, 2, padding="same"),
    Flatten(), Dense(4 * 5 * 5, 16, activation="relu"), Dropout(0.5), Dense(16, 3),
])
rng = np.random.default_rng(0)
x, y = rng.random((24, 1, 9, 9), dtype=np.float32), rng.integers(0, 3, 24)
model.fit(x, y, optimizer=Adam(model.parameters(), lr=1e-2), batch_size=6, iterations=4,
          rng=int(sys.argv[2]), progress=False, verbose=False)
digest = hashlib.sha256()
for p in model.parameters():
    digest.update(to_numpy(p.data).tobytes())
print(digest.hexdigest())
"""


def _train(backend: str, seed: int) -> str:
    env = {**os.environ, "DLCORE_EMU_DETERMINISTIC": "1"}
    done = subprocess.run([sys.executable, "-c", TRAIN_AND_HASH, backend, str(seed)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


@pytest.mark.parametrize("backend", ["numpy", "emu"])
def test_same_seed_gives_bit_identical_parameters(backend):
    first = _train(backend, seed=11)
    assert _train(backend, seed=11) == first
    assert _train(backend, seed=12) != first
