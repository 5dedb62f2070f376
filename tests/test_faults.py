"""Training faults: anomaly mode names the first layer with a NaN/Inf; running out of
memory is reported with the iteration, the batch size and the allocator's request."""
import numpy as np
import pytest

import dlcore
from dlcore.anomaly import AnomalyError
from dlcore.layers import Dense, Layer, ReLU
from dlcore.optim import SGD
from dlcore.training import TrainingOutOfMemoryError
from tests.robustness import rejects, tried


class Poison(Layer):
    """Identity, except that it writes `value` into its output (forward) or its input
    gradient (backward) from call `after` on: a fault injected mid-network."""

    def __init__(self, value, where="forward", after=0, name=None):
        super().__init__(name)
        self.value, self.where, self.after, self.calls = value, where, after, 0

    def forward(self, x):
        self.calls += 1
        if self.where == "forward" and self.calls > self.after:
            x = x.copy()
            x[0, 0] = self.value
        return x, None

    def backward(self, dout, cache, needs_input_grad=True):
        if self.where == "backward":
            dout = dout.copy()
            dout[-1, -1] = self.value
        return dout


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((32, 4)).astype(np.float32), rng.integers(0, 3, 32)


def _model(poison):
    dlcore.manual_seed(0)
    return dlcore.Sequential([Dense(4, 8, name="fc1"), ReLU(name="relu"), poison, Dense(8, 8, name="fc2"),
                              Dense(8, 3, name="head")], needs_input_grad=True)


def _fit(model, **options):
    x, y = _data()
    return model.fit(x, y, optimizer=SGD(model.parameters(), lr=0.01), batch_size=8, iterations=4,
                     progress=False, verbose=False, rng=0, **options)


@pytest.mark.parametrize("value,kind", [(np.nan, "1 NaN, 0 Inf"), (np.inf, "0 NaN, 1 Inf")])
def test_anomaly_mode_names_the_first_layer_with_a_bad_forward_value(value, kind):
    tried("fault injections")
    model = _model(Poison(value, "forward", after=2, name="faulty"))
    with dlcore.detect_anomaly(), rejects(AnomalyError, match=rf"\({kind} of \d+\) first appeared in "
                                                               r"the forward output of Poison 'faulty'"):
        _fit(model)


def test_anomaly_mode_names_the_layer_whose_gradient_goes_bad():
    tried("fault injections")
    model = _model(Poison(np.nan, "backward", name="faulty"))
    with dlcore.detect_anomaly(), rejects(AnomalyError, match="input gradient of Poison 'faulty' \\(backward"):
        _fit(model)


def test_anomaly_mode_reports_a_bad_input_at_the_first_layer():
    tried("fault injections")
    model = _model(Poison(0.0))
    x = np.ones((2, 4), np.float32)
    x[1, 2] = np.nan
    with dlcore.detect_anomaly(), rejects(AnomalyError, match="the input of Dense 'fc1'"):
        model(x)


def test_without_anomaly_mode_a_nan_surfaces_as_the_loss_error():
    tried("fault injections")
    with rejects(FloatingPointError, match="loss is nan at iteration 3"):
        _fit(_model(Poison(np.nan, "forward", after=2)))


def test_anomaly_mode_is_off_by_default_and_restored():
    from dlcore import anomaly

    assert not anomaly.is_enabled()
    with dlcore.detect_anomaly():
        assert anomaly.is_enabled()
    assert not anomaly.is_enabled()


def test_out_of_memory_names_the_iteration_and_batch_size(monkeypatch):
    tried("fault injections")
    model = _model(Poison(0.0))
    head = model["head"]
    real_forward = head.forward
    calls = iter(range(100))

    def forward_that_runs_out(x):
        if next(calls) == 1:
            raise MemoryError("Out of memory allocating 123,456,789 bytes")
        return real_forward(x)

    monkeypatch.setattr(head, "forward", forward_that_runs_out)
    with rejects(TrainingOutOfMemoryError, match=r"out of memory at iteration 2 with batch_size=8 on the "
                                                 r"'numpy' backend \(Out of memory allocating 123,456,789 bytes\)"):
        _fit(model)


@pytest.mark.gpu
def test_gpu_out_of_memory_is_a_clear_error():
    from dlcore.zoo import mnist_cnn

    with dlcore.use_backend("cupy"):
        model = mnist_cnn(rng=0)
        x = np.zeros((1 << 17, 1, 28, 28), np.float32)  # conv1's output alone: 13 GB per 32k images
        with rejects(TrainingOutOfMemoryError, match=r"batch_size=131072 on the 'cupy' backend .*bytes"):
            model.fit(x, np.zeros(len(x), np.int64), optimizer=SGD(model.parameters(), lr=0.1),
                      batch_size=len(x), iterations=1, progress=False, verbose=False)
