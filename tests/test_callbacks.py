"""Callbacks for fit: hook order, stopping, early stopping, learning-rate schedules,
periodic checkpoints, the progress bar, and their argument checks."""
import math
import re

import numpy as np
import pytest

import dlcore
from dlcore import checkpoint
from dlcore.callbacks import (Callback, CosineDecay, EarlyStopping, ExponentialDecay, LearningRateScheduler,
                              LinearWarmup, ModelCheckpoint, ProgressBar, ReduceLROnPlateau, StepDecay)
from dlcore.layers import Dense
from dlcore.losses import SoftmaxCrossEntropy
from dlcore.optim import SGD, Adam, clip_grad_norm
from tests.robustness import rejects


def blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[3, 0, 0, 0], [0, 3, 0, 0], [0, 0, 3, 0]], dtype=np.float32)
    y = rng.integers(0, 3, n)
    return centers[y] + rng.standard_normal((n, 4)).astype(np.float32), y


def mlp(seed=0):
    return dlcore.Sequential([Dense(4, 16, activation="relu", rng=seed), Dense(16, 3, rng=seed)])


def train(model, callbacks, iterations=20, optimizer=None, **options):
    x, y = blobs()
    optimizer = optimizer or Adam(model.parameters(), lr=1e-2)
    options = {"batch_size": 10, "eval_every": 5, "validation_data": (x[:40], y[:40]), "rng": 0,
               "progress": False, "verbose": False, **options}
    return model.fit(x, y, optimizer=optimizer, iterations=iterations, callbacks=callbacks, **options)


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_train_begin(self):
        self.calls.append(("train_begin", self.run.iteration))

    def on_iteration_begin(self, iteration):
        self.calls.append(("begin", iteration, self.run.optimizer.lr))

    def on_evaluation(self, iteration, record):
        self.calls.append(("evaluation", iteration, record["iteration"]))

    def on_iteration_end(self, iteration, logs):
        self.calls.append(("end", iteration, logs["loss"]))

    def on_train_end(self):
        self.calls.append(("train_end", self.run.iteration))


def test_hooks_run_in_order_with_evaluations_before_the_iteration_end():
    recorder = Recorder()
    train(mlp(), [recorder], iterations=6, eval_every=3)
    names = [(c[0], c[1]) for c in recorder.calls]
    assert names == [("train_begin", 0),
                     ("begin", 1), ("end", 1), ("begin", 2), ("end", 2),
                     ("begin", 3), ("evaluation", 3), ("end", 3),
                     ("begin", 4), ("end", 4), ("begin", 5), ("end", 5),
                     ("begin", 6), ("evaluation", 6), ("end", 6), ("train_end", 6)]


def test_a_callback_stops_training_and_train_end_runs_even_after_an_error():
    class StopAt(Callback):
        def on_iteration_end(self, iteration, logs):
            if iteration == 7:
                self.run.stop_training = True

    recorder = Recorder()
    history = train(mlp(), [StopAt(), recorder], iterations=20)
    assert recorder.calls[-1] == ("train_end", 7)
    assert history["iteration"] == [5]

    class Fail(Callback):
        def on_iteration_end(self, iteration, logs):
            if iteration == 2:
                raise RuntimeError("boom")

    recorder = Recorder()
    with pytest.raises(RuntimeError, match="boom"):
        train(mlp(), [Fail(), recorder])
    assert recorder.calls[-1] == ("train_end", 2)


# ---- early stopping
def bound(callback, model=None):
    """The callback bound to a TrainingRun of a small model, as fit would."""
    from dlcore.data.batching import BatchSampler
    from dlcore.history import History
    from dlcore.training_run import TrainingRun

    model = model or mlp()
    callback.bind(TrainingRun(model, Adam(model.parameters()), BatchSampler(10, 2, 0),
                              np.random.default_rng(0), History(), total=100))
    callback.on_train_begin()
    return callback


def feed(callback, values, monitor="val_loss"):
    """Evaluations with these monitor values; returns the iteration training stopped at, or None."""
    for i, value in enumerate(values, start=1):
        callback.on_evaluation(i, {"iteration": i, monitor: value})
        if callback.run.stop_training:
            return i
    return None


def test_early_stopping_counts_evaluations_without_improvement():
    assert feed(bound(EarlyStopping(patience=0)), [1.0, 0.9, 0.95, 0.5]) == 3
    assert feed(bound(EarlyStopping(patience=2)), [1.0, 0.9, 0.95, 0.85, 0.86, 0.5]) is None
    assert feed(bound(EarlyStopping(patience=2)), [1.0, 0.9, 0.95, 0.85, 0.86, 0.87]) == 6
    # min_delta: improvements smaller than 0.05 do not count
    assert feed(bound(EarlyStopping(patience=2, min_delta=0.05)), [1.0, 0.97, 0.96]) == 3
    assert feed(bound(EarlyStopping(patience=2)), [1.0, 0.97, 0.96]) is None
    # mode auto: accuracies are maximized; explicit min/max
    stopper = bound(EarlyStopping("val_accuracy", patience=2))
    assert stopper.mode == "max" and feed(stopper, [0.5, 0.6, 0.55, 0.58], "val_accuracy") == 4
    assert stopper.best == 0.6 and stopper.best_iteration == 2 and stopper.stopped_iteration == 4
    assert feed(bound(EarlyStopping("loss", patience=0, mode="max")), [1.0, 0.9], "loss") == 2


def test_early_stopping_restores_the_best_weights_when_it_stops():
    class Snapshot(Callback):
        def on_evaluation(self, iteration, record):
            if iteration == 5:
                self.weights = [p.data.copy() for p in self.run.model.parameters()]

    model, snapshot = mlp(), Snapshot()
    # in max mode the falling training loss never improves after the first evaluation
    stopper = EarlyStopping("loss", patience=2, mode="max", restore_best_weights=True)
    history = train(model, [snapshot, stopper], iterations=100)
    assert history["iteration"] == [5, 10, 15] and stopper.stopped_iteration == 15
    for p, best in zip(model.parameters(), snapshot.weights):
        np.testing.assert_array_equal(p.data, best)


def test_early_stopping_after_a_resume_stops_where_the_uninterrupted_run_did(tmp_path):
    def stopper():
        return EarlyStopping("loss", patience=3, mode="max")

    straight = train(mlp(), [stopper()], iterations=100)
    assert straight["iteration"] == [5, 10, 15, 20]

    class Crash(Callback):
        def on_iteration_end(self, iteration, logs):
            if iteration == 12:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(mlp(), [stopper(), ModelCheckpoint(tmp_path / "c.npz", every=10), Crash()], iterations=100)
    resumed = train(mlp(seed=4), [stopper()], iterations=100, resume_from=tmp_path / "c.npz")
    assert resumed.history == straight.history


def test_early_stopping_names_the_metrics_fit_records():
    with rejects(KeyError, match=r"no 'val_loss'; it records \['accuracy', 'iteration', 'loss'\]"):
        train(mlp(), [EarlyStopping("val_loss")], validation_data=None)


# ---- learning-rate schedules
def test_schedules_follow_their_formulas():
    step = StepDecay(step_size=10, gamma=0.5)
    assert [step.rate(s, 1.0) for s in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]
    exponential = ExponentialDecay(0.5, decay_steps=10)
    assert exponential.rate(0, 2.0) == 2.0 and exponential.rate(5, 2.0) == pytest.approx(2.0 * 0.5 ** 0.5)
    assert ExponentialDecay(0.9).rate(3, 1.0) == pytest.approx(0.729)
    cosine = CosineDecay(100, min_lr=0.1)
    assert cosine.rate(0, 1.0) == 1.0 and cosine.rate(50, 1.0) == pytest.approx(0.55)
    assert cosine.rate(100, 1.0) == pytest.approx(0.1) and cosine.rate(150, 1.0) == pytest.approx(0.1)


def test_a_schedule_sets_the_optimizer_lr_before_every_iteration():
    recorder = Recorder()
    model = mlp()
    optimizer = SGD(model.parameters(), lr=0.1)
    train(model, [CosineDecay(10), recorder], iterations=10, optimizer=optimizer)
    used = [call[2] for call in recorder.calls if call[0] == "begin"]
    assert used == [pytest.approx(0.1 * (1 + math.cos(math.pi * s / 10)) / 2) for s in range(10)]
    assert optimizer.initial_lr == 0.1

    custom = LearningRateScheduler(lambda step, lr: lr / (1 + step))
    recorder = Recorder()
    train(mlp(), [custom, recorder], iterations=3, optimizer=SGD(mlp().parameters(), lr=0.6))
    assert [call[2] for call in recorder.calls if call[0] == "begin"] == pytest.approx([0.6, 0.3, 0.2])


# ---- periodic checkpoints
def test_model_checkpoint_saves_every_n_iterations(tmp_path):
    saver = ModelCheckpoint(tmp_path / "ckpt-{iteration:04d}.npz", every=4)
    model = mlp()
    train(model, [saver], iterations=10)
    assert [p.name for p in saver.saved] == ["ckpt-0004.npz", "ckpt-0008.npz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-0004.npz", "ckpt-0008.npz"]
    saved = checkpoint.read(saver.saved[-1])
    assert saved.training_state["iteration"] == 8 and saved.training_state["history"]["iteration"] == [5]

    same = ModelCheckpoint(tmp_path / "last.npz", every=3)
    train(mlp(), [same], iterations=10)
    assert len(same.saved) == 3 and checkpoint.read(tmp_path / "last.npz").training_state["iteration"] == 9


# ---- progress bar
def test_progress_bar_is_a_switch_on_fit(capsys):
    train(mlp(), [], iterations=30, progress=True)
    bar = capsys.readouterr().err
    assert "30/30" in bar and "loss=" in bar and "img_s=" in bar
    train(mlp(), [], iterations=30, progress=False)
    assert capsys.readouterr().err == ""
    train(mlp(), [ProgressBar(refresh_every=5)], iterations=10, progress=False)
    assert "10/10" in capsys.readouterr().err


def test_verbose_prints_one_line_per_evaluation(capsys):
    train(mlp(), [], iterations=10, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in lines] == ["iteration 5/10", "iteration 10/10"]


# ---- argument checks
@pytest.mark.parametrize("make, match", [
    (lambda: EarlyStopping(patience=-1), "patience must be an int >= 0"),
    (lambda: EarlyStopping(patience=1.5), "patience must be an int >= 0"),
    (lambda: EarlyStopping(min_delta=-0.1), "min_delta must be a number >= 0"),
    (lambda: EarlyStopping(mode="up"), "mode must be 'auto', 'min' or 'max'"),
    (lambda: EarlyStopping(monitor=""), "monitor must be a metric name"),
    (lambda: StepDecay(0), "step_size must be an int >= 1"),
    (lambda: StepDecay(10, gamma=0), r"gamma must be in \(0, 1\]"),
    (lambda: StepDecay(10, gamma=1.5), r"gamma must be in \(0, 1\]"),
    (lambda: ExponentialDecay(0.9, decay_steps=0), "decay_steps must be an int >= 1"),
    (lambda: ExponentialDecay(-0.9), r"gamma must be in \(0, 1\]"),
    (lambda: CosineDecay(0), "total_iterations must be an int >= 1"),
    (lambda: CosineDecay(10, min_lr=-1), "min_lr must be a number >= 0"),
    (lambda: ModelCheckpoint("c.npz", every=0), "every must be an int >= 1"),
    (lambda: ModelCheckpoint("c-{epoch}.npz", every=5), r"may use only the field \{iteration\}"),
    (lambda: ProgressBar(refresh_every=0), "refresh_every must be an int >= 1"),
    (lambda: LinearWarmup(0), "steps must be an int >= 1"),
    (lambda: ReduceLROnPlateau(factor=1.0), r"factor must be in \(0, 1\)"),
    (lambda: ReduceLROnPlateau(factor=0), r"factor must be in \(0, 1\)"),
    (lambda: ReduceLROnPlateau(patience=-1), "patience must be an int >= 0"),
    (lambda: ReduceLROnPlateau(min_lr=-1e-5), "min_lr must be a number >= 0"),
    (lambda: ReduceLROnPlateau(mode="lowest"), "mode must be 'auto', 'min' or 'max'"),
])
def test_callback_arguments_are_checked_when_built(make, match):
    with rejects(ValueError, match=match):
        make()


def test_callback_errors_at_fit_time():
    with rejects(TypeError, match="callbacks\\[1\\] is a function, not a dlcore Callback"):
        train(mlp(), [Recorder(), lambda: None])
    with rejects(TypeError, match="schedule must be a function"):
        LearningRateScheduler(0.1)
    with rejects(ValueError, match="min_lr 0.5 is above the optimizer's lr 0.01"):
        train(mlp(), [CosineDecay(10, min_lr=0.5)])
    with rejects(ValueError, match="the schedule gave lr nan at step 0"):
        train(mlp(), [LearningRateScheduler(lambda step, lr: float("nan"))])
    with rejects(TypeError, match="then must be a learning-rate schedule"):
        LinearWarmup(5, then=lambda step, lr: lr)
    with rejects(ValueError, match="min_lr 0.5 is above the optimizer's lr 0.01"):
        train(mlp(), [LinearWarmup(3, then=CosineDecay(10, min_lr=0.5))])
    with rejects(KeyError, match=r"ReduceLROnPlateau: fit records no 'val_loss'"):
        train(mlp(), [ReduceLROnPlateau()], validation_data=None)


def test_the_progress_bar_rate_leaves_out_evaluation_time(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("time.perf_counter", lambda: clock[0])

    class Work(Callback):  # after the bar: each training step takes 0.5 s, each evaluation 100 s
        def on_iteration_begin(self, iteration):
            clock[0] += 0.5

        def on_evaluation(self, iteration, record):
            clock[0] += 100.0

    bar = ProgressBar(refresh_every=5)
    rates = []

    class ReadBar(Callback):
        def on_iteration_end(self, iteration, logs):
            if iteration % 5 == 0:
                rates.append(bar.bar.postfix)

    train(mlp(), [bar, Work(), ReadBar()], iterations=10, eval_every=5)
    assert [re.search(r"img_s=(\d+)", postfix).group(1) for postfix in rates] == ["20", "20"]  # 10 images / 0.5 s


def test_the_evaluation_line_shows_val_loss_and_elapsed_time(capsys):
    train(mlp(), [], iterations=10, verbose=True)
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("iteration 10/10  loss ")
    assert "  val_loss " in line and "  val_accuracy " in line
    assert line.split("  ")[-1].startswith("elapsed ") and line.endswith("s")


# ---- warm-up and plateaus
def test_linear_warmup_ramps_then_hands_over_to_the_next_schedule():
    alone = LinearWarmup(4)
    assert [alone.rate(s, 0.8) for s in range(6)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 0.8, 0.8])
    cosine = CosineDecay(10, min_lr=0.1)
    warm = LinearWarmup(4, then=cosine)
    assert [warm.rate(s, 1.0) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert [warm.rate(4 + s, 1.0) for s in range(12)] == pytest.approx([cosine.rate(s, 1.0) for s in range(12)])
    recorder = Recorder()
    train(mlp(), [LinearWarmup(2, then=StepDecay(3, 0.5)), recorder], iterations=8,
          optimizer=SGD(mlp().parameters(), lr=0.4))
    used = [call[2] for call in recorder.calls if call[0] == "begin"]
    assert used == pytest.approx([0.2, 0.4, 0.4, 0.4, 0.4, 0.2, 0.2, 0.2])


def test_reduce_lr_on_plateau_counts_evaluations_without_improvement():
    def lrs(callback, values, monitor="val_loss", lr=1.0):
        callback = bound(callback)
        callback.run.optimizer.lr = lr
        seen = []
        for i, value in enumerate(values, start=1):
            callback.on_evaluation(i, {"iteration": i, monitor: value})
            seen.append(callback.run.optimizer.lr)
        return seen, callback

    seen, plateau = lrs(ReduceLROnPlateau(factor=0.5, patience=2), [1.0, 0.9, 0.95, 0.92, 0.91, 0.93, 0.8])
    assert seen == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25]  # reduced after 2 bad evaluations, count restarts
    assert plateau.reductions == [4, 6]
    seen, _ = lrs(ReduceLROnPlateau(factor=0.1, patience=0, min_lr=0.05), [1.0, 1.0, 1.0, 1.0])
    assert seen == pytest.approx([1.0, 0.1, 0.05, 0.05])  # patience 0: every non-improvement; floor min_lr
    seen, _ = lrs(ReduceLROnPlateau("val_accuracy", factor=0.5, patience=1), [0.5, 0.6, 0.55, 0.7, 0.7],
                  "val_accuracy")
    assert seen == [1.0, 1.0, 0.5, 0.5, 0.25]  # auto mode maximizes accuracies
    seen, _ = lrs(ReduceLROnPlateau(factor=0.5, patience=1, min_delta=0.05), [1.0, 0.97, 0.9])
    assert seen == [1.0, 0.5, 0.5]  # 0.97 is no improvement by more than 0.05; 0.9 is


def test_reduce_lr_on_plateau_lowers_the_lr_fit_trains_with():
    recorder = Recorder()
    model = mlp()
    optimizer = SGD(model.parameters(), lr=0.1)
    train(model, [ReduceLROnPlateau("loss", factor=0.5, patience=0, mode="max"), recorder], iterations=15,
          optimizer=optimizer)  # the falling training loss never improves in max mode
    used = [call[2] for call in recorder.calls if call[0] == "begin"]
    assert used == pytest.approx([0.1] * 10 + [0.05] * 5)
    assert optimizer.lr == pytest.approx(0.025) and optimizer.initial_lr == 0.1


# ---- gradient clipping in fit
class NormRecordingSGD(SGD):
    """SGD that records the total gradient norm it steps with."""

    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        self.norms = []

    def step(self):
        self.norms.append(math.sqrt(sum(float((p.grad ** 2).sum()) for p in self.params if p.grad is not None)))
        super().step()


def test_fit_clips_gradients_between_backward_and_step():
    model = mlp()
    unclipped = NormRecordingSGD(model.parameters(), lr=0.5)
    train(model, [], iterations=5, optimizer=unclipped)
    assert max(unclipped.norms) > 0.1
    model = mlp()
    clipped = NormRecordingSGD(model.parameters(), lr=0.5)
    train(model, [], iterations=5, optimizer=clipped, clip_grad_norm=0.1)
    assert max(clipped.norms) == pytest.approx(0.1, rel=1e-5)
    model = mlp()
    by_value = NormRecordingSGD(model.parameters(), lr=0.5)

    class LargestGradient(Callback):
        def on_iteration_end(self, iteration, logs):
            self.largest = max(float(abs(p.grad).max()) for p in self.run.model.parameters())

    largest = LargestGradient()
    train(model, [largest], iterations=3, optimizer=by_value, clip_grad_value=1e-3)
    assert largest.largest == pytest.approx(1e-3)


def test_fit_rejects_bad_clipping_arguments():
    with rejects(ValueError, match="fit: give clip_grad_norm or clip_grad_value, not both"):
        train(mlp(), [], clip_grad_norm=1.0, clip_grad_value=1.0)
    with rejects(ValueError, match="fit: clip_grad_norm must be a finite number > 0, got -1"):
        train(mlp(), [], clip_grad_norm=-1)
    with rejects(ValueError, match="fit: clip_grad_value must be a finite number > 0, got 0"):
        train(mlp(), [], clip_grad_value=0)


def test_clip_grad_norm_by_hand_matches_fit():
    """The README's manual loop (backward, clip_grad_norm, step) trains as fit(clip_grad_norm=...)."""
    x, y = blobs()
    by_fit = mlp()
    train(by_fit, [], iterations=1, optimizer=SGD(by_fit.parameters(), lr=0.5), clip_grad_norm=0.05,
          batch_size=120, validation_data=None)
    by_hand = mlp()
    optimizer = SGD(by_hand.parameters(), lr=0.5)
    loss = SoftmaxCrossEntropy()
    loss(by_hand(x), y)  # one batch of all 120 samples: fit's mean gradient up to the order of the sum
    by_hand.backward(loss.backward())
    clip_grad_norm(by_hand.parameters(), 0.05)
    optimizer.step()
    for p, q in zip(by_fit.parameters(), by_hand.parameters()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-5, atol=1e-7)
