"""fit and evaluate point at the data when the data is the problem: NaN in a batch, NaN in
evaluation data, inputs left unscaled."""
import warnings

import numpy as np
import pytest

import dlcore
from dlcore.input_checks import InputScaleWarning, NonFiniteDataWarning, warn_if_unscaled
from dlcore.layers import Dense
from dlcore.optim import SGD
from tests.robustness import rejects, tried


def _mlp():
    return dlcore.Sequential([Dense(4, 8, activation="relu", rng=0), Dense(8, 3, rng=1)])


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 4), dtype=np.float32), rng.integers(0, 3, n)


def _fit(model, x, y, **options):
    return model.fit(x, y, optimizer=SGD(model.parameters(), lr=0.1), batch_size=16, iterations=4,
                     progress=False, verbose=False, rng=0, **options)


def test_a_nan_in_the_input_batch_is_reported_as_a_data_problem():
    tried("fault injections")
    x, y = _data()
    x[:, 1] = np.nan  # every sample: the first batch has NaN in all 16
    x[:, 2] = np.nan
    message = (r"^loss is nan at iteration 1 because the input batch holds 32 NaN/Inf values in 16 of its 16 "
               r"samples: the data, not the learning rate\. np\.isfinite\(x\)\.reshape\(len\(x\), -1\)\.all\(axis=1\) "
               r"marks the finite samples; fix or drop the others before training$")
    with rejects(FloatingPointError, match=message):
        _fit(_mlp(), x, y)


def test_non_finite_one_hot_labels_are_named_too():
    tried("fault injections")
    x, y = _data()
    targets = np.eye(3, dtype=np.float32)[y]
    targets[:, 0] = np.inf
    with rejects(FloatingPointError, match=r"because the batch's labels hold 16 NaN/Inf values in 16 of its 16"):
        _fit(_mlp(), x, targets)


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_a_finite_batch_with_a_non_finite_loss_is_divergence():
    x, y = _data()
    model = _mlp()
    with rejects(FloatingPointError, match=r"loss is (nan|inf) at iteration \d+ with a finite input batch: "
                                           r"training diverged \(lower the learning rate"):
        model.fit(x, y, optimizer=SGD(model.parameters(), lr=1e30), iterations=50, batch_size=16,
                  progress=False, verbose=False, rng=0)


def test_evaluate_warns_when_the_data_holds_nan():
    x, y = _data(n=50)
    x[[3, 40], 0] = np.nan
    with pytest.warns(NonFiniteDataWarning, match=r"^evaluate: 2 of 50 samples hold NaN or Inf input values; "
                                                  r"the loss is then nan"):
        scores = _mlp().evaluate(x, y, batch_size=16)
    assert np.isnan(scores["loss"])


def test_evaluate_on_finite_data_does_not_warn():
    x, y = _data(n=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _mlp().evaluate(x, y, batch_size=16)


def test_unscaled_inputs_get_a_hint_once_and_training_continues():
    x, y = _data()
    x *= 255.0  # images left in 0-255
    message = (r"^fit: the input spans \[[\d.]+, [\d.]+\], far outside the usual scaled ranges \(\[0, 1\], "
               r"\[-1, 1\] or standardized\), so training may be slow or unstable; if these are 8-bit images "
               r"divide by 255 \(x / 255\.0\)")
    with pytest.warns(InputScaleWarning, match=message) as caught:
        history = _fit(_mlp(), x, y)
    assert len([w for w in caught if w.category is InputScaleWarning]) == 1
    assert history["iteration"] == [4]  # trained to the end


@pytest.mark.parametrize("scale, shift", [(1.0, 0.0), (2.0, -1.0), (3.0, -1.5)], ids=["[0,1]", "[-1,1]", "standardized"])
def test_scaled_inputs_get_no_hint(scale, shift):
    x, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputScaleWarning)
        _fit(_mlp(), x * scale + shift, y)


def test_the_scale_hint_skips_non_finite_and_integer_values():
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputScaleWarning)
        assert not warn_if_unscaled((np.array([[np.inf, 0.5], [np.nan, -np.inf]]),))
        assert not warn_if_unscaled((np.full((2, 2), np.nan),))
        assert not warn_if_unscaled((np.full((2, 2), 255, np.uint8),))


def test_column_labels_in_fit_are_told_to_be_squeezed():
    x, y = _data()
    with rejects(ValueError, match=r"labels of shape \(16, 1\) look like class indices in a column: squeeze them "
                                   r"to shape \(16,\), e.g\. labels\.reshape\(-1\)"):
        _fit(_mlp(), x, y[:, None])
