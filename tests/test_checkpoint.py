"""Checkpoints: round trips, exact resume of fit, mismatch reports, bad files, atomic saves."""
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import dlcore
from dlcore import checkpoint
from dlcore.callbacks import (Callback, CosineDecay, LinearWarmup, ModelCheckpoint, ReduceLROnPlateau,
                              StepDecay)
from dlcore.checkpoint import CheckpointError, CheckpointMismatchError
from dlcore.history import History
from dlcore.layers import BatchNorm2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D
from dlcore.optim import SGD, Adam, AdamW, RMSprop
from tests.robustness import rejects, tried

REPO = Path(__file__).resolve().parents[1]


def small_cnn(seed=0, hidden=16, dtype=np.float32):
    """Conv + batchnorm + pool + dense + dropout: parameters, buffers and dropout state."""
    dlcore.manual_seed(seed)
    return dlcore.Sequential([
        Conv2D(1, 4, 3, padding="same", activation="relu", dtype=dtype, name="conv1"),  # (N, 4, 9, 9)
        BatchNorm2D(4, dtype=dtype, name="bn1"),
        MaxPool2D(2, 2, padding="same", name="pool1"),                                   # (N, 4, 5, 5)
        Flatten(name="flatten"),                                                         # (N, 100)
        Dense(100, hidden, activation="relu", dtype=dtype, name="fc1"),
        Dropout(0.5, name="dropout"),
        Dense(hidden, 3, dtype=dtype, name="fc2"),
    ])


def data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, 9, 9), dtype=np.float32), rng.integers(0, 3, n)


def fit_options(total):
    x, y = data()
    return dict(batch_size=8, iterations=total, eval_every=3, eval_samples=16,
                validation_data=(x[:20], y[:20]), rng=7, progress=False, verbose=False)


def train_steps(model, optimizer, steps=3):
    x, y = data()
    model.fit(x, y, optimizer=optimizer, batch_size=8, iterations=steps, rng=1, progress=False, verbose=False)


def assert_same_state(a, b, opt_a=None, opt_b=None):
    for (name, p), q in zip(a.named_parameters().items(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    for (name, buf), other in zip(a.named_buffers().items(), b.named_buffers().values()):
        np.testing.assert_array_equal(buf, other, err_msg=name)
    assert [layer.extra_state() for layer in a.layers] == [layer.extra_state() for layer in b.layers]
    if opt_a is not None:
        assert (opt_a.steps, opt_a.lr, opt_a.initial_lr) == (opt_b.steps, opt_b.lr, opt_b.initial_lr)
        assert opt_a.parameter_steps == opt_b.parameter_steps
        for slot, arrays in opt_a.state_slots().items():
            for x, y in zip(arrays, opt_b.state_slots()[slot]):
                if x is not None:
                    np.testing.assert_array_equal(x, y, err_msg=slot)


class CrashAt(Callback):
    """Raises KeyboardInterrupt at the end of one iteration: a run killed mid-way."""

    def __init__(self, iteration):
        self.iteration = iteration

    def on_iteration_end(self, iteration, logs):
        if iteration == self.iteration:
            raise KeyboardInterrupt


# ---- round trips
@pytest.mark.parametrize("make_optimizer", [
    lambda params: Adam(params, lr=1e-2),
    lambda params: SGD(params, lr=0.05, momentum=0.9),
    lambda params: AdamW(params, lr=1e-2, weight_decay=0.1),
    lambda params: RMSprop(params, lr=1e-3, momentum=0.9, centered=True),
], ids=["adam", "sgd-momentum", "adamw", "rmsprop-centered-momentum"])
def test_save_and_load_restore_weights_buffers_layer_state_and_optimizer(tmp_path, make_optimizer):
    model = small_cnn(seed=0)
    optimizer = make_optimizer(model.parameters())
    train_steps(model, optimizer)
    optimizer.lr = 0.003  # as a schedule would have left it
    extra = {"note": "after 3 steps", "epoch": np.int64(2), "big": 2**70, "lr": 0.1}
    path = checkpoint.save(tmp_path / "ckpt.npz", model, optimizer, extra=extra)

    fresh = small_cnn(seed=1)
    fresh_optimizer = make_optimizer(fresh.parameters())
    saved = checkpoint.load(path, fresh, fresh_optimizer)
    assert_same_state(model, fresh, optimizer, fresh_optimizer)
    assert fresh["dropout"].calls == 3 and fresh["dropout"].seed == model["dropout"].seed
    assert saved.extra == {"note": "after 3 steps", "epoch": 2, "big": 2**70, "lr": 0.1}
    assert saved.training_state is None


def test_file_layout_is_plain_arrays_with_readable_keys(tmp_path):
    model = small_cnn()
    optimizer = Adam(model.parameters())
    train_steps(model, optimizer, steps=1)
    path = checkpoint.save(tmp_path / "ckpt.npz", model, optimizer)
    with np.load(path, allow_pickle=False) as archive:
        keys = set(archive.files)
        assert not any(archive[key].dtype.hasobject for key in keys)
        assert archive["param/conv1.weight"].shape == (4, 1, 3, 3)
        assert archive["buffer/bn1.running_mean"].shape == (4,)
        assert int(archive["state/dropout.calls"]) == 1
        assert str(archive["optim/type"]) == "Adam" and int(archive["optim/steps"]) == 1
    assert {"optim/exp_avg/fc1.weight", "optim/exp_avg_sq/fc2.bias", "meta/format"} <= keys


def _train_with_fc1_frozen_at_first(model, optimizer):
    """2 steps with fc1 frozen, then 3 with it trained: fc1 has had 3 updates, the rest 5."""
    model["fc1"].freeze()
    train_steps(model, optimizer, steps=2)
    model["fc1"].freeze(False)
    train_steps(model, optimizer, steps=3)


def test_each_parameters_step_count_is_saved_and_restored(tmp_path):
    model = small_cnn(seed=0)
    optimizer = Adam(model.parameters(), lr=1e-2)
    _train_with_fc1_frozen_at_first(model, optimizer)
    path = checkpoint.save(tmp_path / "ckpt.npz", model, optimizer)
    with np.load(path, allow_pickle=False) as archive:
        assert int(archive["optim/steps"]) == 5
        assert int(archive["optim/step/fc1.weight"]) == int(archive["optim/step/fc1.bias"]) == 3
        assert int(archive["optim/step/conv1.weight"]) == int(archive["optim/step/fc2.bias"]) == 5
    fresh = small_cnn(seed=1)
    fresh_optimizer = Adam(fresh.parameters(), lr=1e-2)
    checkpoint.load(path, fresh, fresh_optimizer)
    assert_same_state(model, fresh, optimizer, fresh_optimizer)
    assert sorted(set(fresh_optimizer.parameter_steps)) == [3, 5]


def test_checkpoints_without_per_parameter_step_counts_still_load(tmp_path):
    """Checkpoints written before the per-parameter counts hold only optim/steps: every parameter
    gets that count, as those versions used it for all of them."""
    model = small_cnn(seed=0)
    optimizer = Adam(model.parameters(), lr=1e-2)
    _train_with_fc1_frozen_at_first(model, optimizer)
    path = checkpoint.save(tmp_path / "new.npz", model, optimizer)
    with np.load(path, allow_pickle=False) as archive:
        old_format = {key: archive[key] for key in archive.files if not key.startswith("optim/step/")}
    np.savez(tmp_path / "old.npz", **old_format)
    fresh = small_cnn(seed=1)
    fresh_optimizer = Adam(fresh.parameters(), lr=1e-2)
    checkpoint.load(tmp_path / "old.npz", fresh, fresh_optimizer)
    assert fresh_optimizer.steps == 5 and fresh_optimizer.parameter_steps == [5] * len(fresh_optimizer.params)
    np.testing.assert_array_equal(fresh_optimizer.exp_avgs[0], optimizer.exp_avgs[0])


def test_a_missing_or_foreign_parameter_step_count_is_a_mismatch(tmp_path):
    model = small_cnn(seed=0)
    optimizer = Adam(model.parameters(), lr=1e-2)
    train_steps(model, optimizer, steps=1)
    path = checkpoint.save(tmp_path / "ckpt.npz", model, optimizer)
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files if key != "optim/step/fc2.bias"}
    arrays["optim/step/fc9.weight"] = np.asarray(1, dtype=np.int64)
    np.savez(tmp_path / "edited.npz", **arrays)
    fresh = small_cnn(seed=1)
    with rejects(CheckpointMismatchError) as info:
        checkpoint.load(tmp_path / "edited.npz", fresh, Adam(fresh.parameters()))
    message = str(info.value)
    assert "optim/step/fc2.bias: missing from the checkpoint" in message
    assert "optim/step/fc9.weight: in the checkpoint but not in the model" in message


def test_save_weights_and_load_weights_also_from_a_training_checkpoint(tmp_path):
    model = small_cnn(seed=0)
    optimizer = Adam(model.parameters(), lr=1e-2)
    train_steps(model, optimizer)
    model.save_weights(tmp_path / "weights.npz")
    fresh = small_cnn(seed=5)
    fresh.load_weights(tmp_path / "weights.npz")
    assert_same_state(model, fresh)

    x, y = data()
    model.fit(x, y, optimizer=optimizer, callbacks=[ModelCheckpoint(tmp_path / "train.npz", every=2)],
              **fit_options(2))
    other = small_cnn(seed=6)
    other.load_weights(tmp_path / "train.npz")  # optimizer and progress sections are ignored
    assert_same_state(model, other)


def test_arrays_come_back_on_the_models_backend(tmp_path):
    model = small_cnn()
    model.save_weights(tmp_path / "w.npz")
    fresh = small_cnn(seed=3)
    weight = fresh["conv1"].weight.data
    fresh.load_weights(tmp_path / "w.npz")
    assert fresh["conv1"].weight.data is weight  # copied in place, on the model's own arrays
    assert isinstance(weight, dlcore.get_backend().xp.ndarray)


# ---- exact resume
@pytest.mark.parametrize("case", ["adam-cosine", "sgd-step", "adamw-warmup-clip", "rmsprop-plateau-clip"])
def test_resumed_fit_is_bit_identical_to_the_uninterrupted_run(tmp_path, case):
    """2k iterations straight == k iterations, a crash, a rebuilt model and optimizer, and a
    resume from the checkpoint: parameters, buffers, dropout state, optimizer, history."""
    total, k = 24, 12
    x, y = data()

    clipping = {"adamw-warmup-clip": {"clip_grad_norm": 0.5}, "rmsprop-plateau-clip": {"clip_grad_value": 0.01}}
    options = fit_options(total) | clipping.get(case, {})

    def optimizer_and_schedule(model):
        if case == "adam-cosine":
            return Adam(model.parameters(), lr=1e-2), CosineDecay(total, min_lr=1e-4)
        if case == "adamw-warmup-clip":
            return AdamW(model.parameters(), lr=1e-2), LinearWarmup(5, then=CosineDecay(total - 5))
        if case == "rmsprop-plateau-clip":  # training loss in max mode: a plateau at every evaluation
            return RMSprop(model.parameters(), lr=1e-3, momentum=0.5), ReduceLROnPlateau("loss", 0.5, 1, mode="max")
        return SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True), StepDecay(5, 0.5)

    straight = small_cnn(seed=0)
    straight_opt, schedule = optimizer_and_schedule(straight)
    straight_history = straight.fit(x, y, optimizer=straight_opt, callbacks=[schedule], **options)

    crashed = small_cnn(seed=0)
    crashed_opt, schedule = optimizer_and_schedule(crashed)
    saver = ModelCheckpoint(tmp_path / "ckpt.npz", every=k)
    with pytest.raises(KeyboardInterrupt):
        crashed.fit(x, y, optimizer=crashed_opt, callbacks=[schedule, saver, CrashAt(k + 4)], **options)
    assert saver.saved == [tmp_path / "ckpt.npz"]

    resumed = small_cnn(seed=99)  # a new process would build other initial weights
    resumed_opt, schedule = optimizer_and_schedule(resumed)
    resumed_history = resumed.fit(x, y, optimizer=resumed_opt, callbacks=[schedule],
                                  resume_from=tmp_path / "ckpt.npz", **options)
    if case == "rmsprop-plateau-clip":
        assert resumed_opt.lr < 1e-3 and schedule.reductions  # the resumed run went on reducing

    assert_same_state(straight, resumed, straight_opt, resumed_opt)
    assert resumed_history.history == straight_history.history
    assert resumed_history["iteration"] == [3, 6, 9, 12, 15, 18, 21, 24]


def test_resume_with_augmentation_continues_the_augmentation_stream(tmp_path):
    """The augmentation pipeline's generator is part of the checkpoint."""
    from dlcore.data.augment import Compose, GaussianNoise, RandomTranslation

    total, k = 12, 6
    x, y = data()

    def train(model, augment, **extra):
        opt = Adam(model.parameters(), lr=1e-2)
        model.fit(x, y, optimizer=opt, augment=augment, **fit_options(total), **extra)
        return opt

    straight = small_cnn(seed=0)
    straight_opt = train(straight, Compose([RandomTranslation(1), GaussianNoise(0.1)], seed=3))
    crashed = small_cnn(seed=0)
    with pytest.raises(KeyboardInterrupt):
        train(crashed, Compose([RandomTranslation(1), GaussianNoise(0.1)], seed=3),
              callbacks=[ModelCheckpoint(tmp_path / "ckpt.npz", every=k), CrashAt(k + 2)])
    resumed = small_cnn(seed=5)
    resumed_opt = train(resumed, Compose([RandomTranslation(1), GaussianNoise(0.1)], seed=42),
                        resume_from=tmp_path / "ckpt.npz")
    assert_same_state(straight, resumed, straight_opt, resumed_opt)
    with rejects(ValueError, match="disagree on whether training is augmented"):
        train(small_cnn(seed=0), None, resume_from=tmp_path / "ckpt.npz")


def test_resume_in_a_fresh_process(tmp_path):
    """The checkpoint alone carries the run: a second Python process finishes it."""
    script = f"""
import sys, numpy as np
sys.path.insert(0, {str(REPO)!r})
from tests.test_checkpoint import small_cnn, data, fit_options
from dlcore.optim import Adam
model = small_cnn(seed=123)
x, y = data()
model.fit(x, y, optimizer=Adam(model.parameters(), lr=1e-2), resume_from=sys.argv[1], **fit_options(18))
np.savez(sys.argv[2], *[p.data for p in model.parameters()])
"""
    x, y = data()
    straight = small_cnn(seed=0)
    straight.fit(x, y, optimizer=Adam(straight.parameters(), lr=1e-2), **fit_options(18))
    first = small_cnn(seed=0)
    with pytest.raises(KeyboardInterrupt):
        first.fit(x, y, optimizer=Adam(first.parameters(), lr=1e-2),
                  callbacks=[ModelCheckpoint(tmp_path / "ckpt.npz", every=9), CrashAt(10)], **fit_options(18))
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "ckpt.npz"), str(tmp_path / "out.npz")],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "DLCORE_BACKEND": "numpy"})
    assert done.returncode == 0, done.stderr
    with np.load(tmp_path / "out.npz") as out:
        for i, p in enumerate(straight.parameters()):
            np.testing.assert_array_equal(out[f"arr_{i}"], p.data)


def test_resume_errors_change_nothing(tmp_path):
    x, y = data()
    model = small_cnn(seed=0)
    model.fit(x, y, optimizer=Adam(model.parameters()), callbacks=[ModelCheckpoint(tmp_path / "c.npz", every=6)],
              **fit_options(6))
    model.save_weights(tmp_path / "weights.npz")
    fresh = small_cnn(seed=1)
    before = [p.data.copy() for p in fresh.parameters()]
    options = fit_options(12)
    with rejects(ValueError, match="holds weights but no training progress"):
        fresh.fit(x, y, optimizer=Adam(fresh.parameters()), resume_from=tmp_path / "weights.npz", **options)
    with rejects(ValueError, match="60 samples in batches of 8; this fit has 60 in batches of 10"):
        fresh.fit(x, y, optimizer=Adam(fresh.parameters()), resume_from=tmp_path / "c.npz",
                  **{**options, "batch_size": 10})
    with rejects(ValueError, match="at iteration 6, beyond this run's 4 iterations"):
        fresh.fit(x, y, optimizer=Adam(fresh.parameters()), resume_from=tmp_path / "c.npz", **fit_options(4))
    with rejects(CheckpointMismatchError, match="optim/type: the optimizer is SGD, the checkpoint's is Adam"):
        fresh.fit(x, y, optimizer=SGD(fresh.parameters()), resume_from=tmp_path / "c.npz", **options)
    for p, old in zip(fresh.parameters(), before):
        np.testing.assert_array_equal(p.data, old)


# ---- mismatches
def test_a_model_of_another_shape_gets_every_mismatch_in_one_error(tmp_path):
    small_cnn(hidden=16).save_weights(tmp_path / "w.npz")
    other = dlcore.Sequential([
        Conv2D(1, 4, 3, padding="same", activation="relu", name="conv1"),
        BatchNorm2D(4, name="bn1"),
        MaxPool2D(2, 2, padding="same", name="pool1"),
        Flatten(name="flatten"),
        Dense(100, 32, activation="relu", name="fc1"),        # 32 hidden units, not 16
        Dense(32, 3, dtype=np.float64, name="fc2"),            # float64, and 32 inputs
        Dense(3, 3, name="fc3"),                               # not in the checkpoint
    ])  # and no dropout layer
    before = other["conv1"].weight.data.copy()
    with rejects(CheckpointMismatchError) as info:
        other.load_weights(tmp_path / "w.npz")
    message = str(info.value)
    for line in [
        "param/fc1.weight: shape (100, 32) in the model, (100, 16) in the checkpoint",
        "param/fc1.bias: shape (32,) in the model, (16,) in the checkpoint",
        "param/fc2.weight: shape (32, 3) in the model, (16, 3) in the checkpoint",
        "param/fc2.weight: dtype float64 in the model, float32 in the checkpoint",
        "param/fc2.bias: dtype float64 in the model, float32 in the checkpoint",
        "param/fc3.weight: missing from the checkpoint (the model's is (3, 3) float32)",
        "state/dropout.calls: in the checkpoint but not in the model",
        "state/dropout.seed: in the checkpoint but not in the model",
    ]:
        assert line in message
    assert len(info.value.problems) == 9 and "(9 problems)" in message
    np.testing.assert_array_equal(other["conv1"].weight.data, before)  # nothing was loaded


def test_unexpected_parameters_and_missing_optimizer_state_are_reported(tmp_path):
    small_cnn().save_weights(tmp_path / "w.npz")
    smaller = dlcore.Sequential([Conv2D(1, 4, 3, padding="same", name="conv1"), BatchNorm2D(4, name="bn1"),
                                 Dropout(0.5, name="dropout")])
    with rejects(CheckpointMismatchError) as info:
        checkpoint.load(tmp_path / "w.npz", smaller, Adam(smaller.parameters()))
    message = str(info.value)
    assert "param/fc1.weight: in the checkpoint ((100, 16) float32) but not in the model" in message
    assert "param/fc2.bias: in the checkpoint ((3,) float32) but not in the model" in message
    assert "optim: the checkpoint holds no optimizer state" in message


def test_an_optimizer_over_foreign_parameters_is_refused(tmp_path):
    model, stranger = small_cnn(), small_cnn(seed=2)
    with rejects(ValueError, match="not the model's"):
        checkpoint.save(tmp_path / "c.npz", model, Adam(stranger.parameters()))


# ---- bad files
def test_files_that_are_not_checkpoints_are_clear_errors(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    np.save(tmp_path / "single.npy", np.zeros(3))
    np.savez(tmp_path / "pickled.npz", objects=np.array([{"a": 1}], dtype=object))
    np.savez(tmp_path / "foreign.npz", weights=np.zeros(3))
    np.savez(tmp_path / "future.npz", **{"meta/format": np.int64(99)})
    model = small_cnn()
    cases = [("junk.npz", "not a readable .npz checkpoint"),
             ("single.npy", "a single .npy array"),
             ("pickled.npz", "not a readable .npz checkpoint .*pickle"),
             ("foreign.npz", "without meta/format, not a dlcore checkpoint"),
             ("future.npz", "checkpoint format 99; this dlcore reads format 1")]
    for name, match in cases:
        with rejects(CheckpointError, match=match):
            checkpoint.load(tmp_path / name, model)
    with rejects(FileNotFoundError):
        checkpoint.load(tmp_path / "absent.npz", model)


def test_truncated_and_corrupted_checkpoints_are_rejected(tmp_path):
    model = small_cnn()
    good = model.save_weights(tmp_path / "good.npz").read_bytes()
    rng = np.random.default_rng(0)
    for cut in [10, len(good) // 3, len(good) - 30]:
        (tmp_path / "cut.npz").write_bytes(good[:cut])
        with pytest.raises(CheckpointError):
            checkpoint.load(tmp_path / "cut.npz", model)
        tried("fuzzed files")
    loaded = 0
    for position in rng.integers(0, len(good), 40):
        corrupted = bytearray(good)
        corrupted[position] ^= 0xFF
        (tmp_path / "bad.npz").write_bytes(bytes(corrupted))
        try:  # a flip in the payload fails the zip CRC; one in a timestamp changes nothing
            checkpoint.load(tmp_path / "bad.npz", model)
            loaded += 1
        except CheckpointError:
            pass
        tried("fuzzed files")
    assert loaded < 40


# ---- atomic saves
def test_a_save_that_fails_midway_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    model = small_cnn(seed=0)
    path = model.save_weights(tmp_path / "w.npz")
    trained = small_cnn(seed=1)

    def write_half_then_die(file, **arrays):
        file.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", write_half_then_die)
    with pytest.raises(OSError, match="disk full"):
        trained.save_weights(path)
    tried("fault injections")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]  # no temporary file left
    fresh = small_cnn(seed=2)
    fresh.load_weights(path)
    assert_same_state(model, fresh)


def test_a_process_killed_while_saving_leaves_a_loadable_checkpoint(tmp_path):
    """SIGKILL a process that saves a 16 MB checkpoint over and over: the file is always whole."""
    script = """
import sys
import numpy as np
import dlcore
from dlcore.layers import Dense
model = dlcore.Sequential([Dense(2048, 2048, rng=0)])
model.save_weights(sys.argv[1])
print("first", flush=True)
i = 0
while True:
    i += 1
    model.layers[0].bias.data[...] = i
    model.save_weights(sys.argv[1])
"""
    path = tmp_path / "w.npz"
    for delay in (0.05, 0.2, 0.45):
        process = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True,
                                   env={**os.environ, "DLCORE_BACKEND": "numpy"})
        try:
            assert process.stdout.readline().strip() == "first"
            time.sleep(delay)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        tried("fault injections")
        model = dlcore.Sequential([Dense(2048, 2048, rng=1)])
        model.load_weights(path)
        bias = model.layers[0].bias.data
        assert np.all(bias == bias[0])  # one whole save, not a mix of two
        for leftover in tmp_path.glob(".w.npz.*.tmp"):
            leftover.unlink()


# ---- the example
@pytest.mark.slow
def test_resume_training_example_reports_a_bit_identical_resume(tmp_path, mnist_path):
    spec = importlib.util.spec_from_file_location("resume_training", REPO / "examples" / "resume_training.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    result = example.main(["--data-dir", str(mnist_path), "--out-dir", str(tmp_path), "--iterations", "10",
                           "--checkpoint-every", "4", "--crash-at", "6", "--eval-every", "5",
                           "--eval-samples", "64", "--test-samples", "200", "--no-progress"])
    assert result["identical"] and result["difference"] == 0
    assert History.from_json(tmp_path / "history.json")["iteration"] == [5, 10]
    for name in ("history.csv", "curves.png", "filters_conv1.png", "feature_maps_conv1.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["ckpt-00004.npz"]


# ---- history files
def test_history_round_trips_through_json_and_csv(tmp_path):
    history = History()
    history.record(iteration=10, loss=0.1 + 0.2, accuracy=1 / 3)
    history.record(iteration=20, loss=float("inf"), accuracy=2 / 3)
    history.to_json(tmp_path / "h.json")
    assert History.from_json(tmp_path / "h.json").history == history.history  # floats bit-exact
    history.to_csv(tmp_path / "h.csv")
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert lines[0] == "iteration,loss,accuracy"
    assert lines[1] == f"10,{0.1 + 0.2!r},{1 / 3!r}"
    (tmp_path / "list.json").write_text(json.dumps([1, 2]))
    with rejects(ValueError, match="expected a JSON object of lists"):
        History.from_json(tmp_path / "list.json")
