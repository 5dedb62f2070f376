import math

import numpy as np
import pytest

from dlcore import init
from tests.robustness import rejects


def test_truncated_normal_is_cut_at_two_stddev_and_has_the_truncated_variance():
    values = init.TruncatedNormal(0.1)((200, 500), (1, 1), np.random.default_rng(0), np.float32)
    assert values.dtype == np.float32
    assert np.abs(values).max() <= 0.2
    # variance of N(0, s) truncated to [-2s, 2s]: s^2 * (1 - 4 phi(2) / (2 Phi(2) - 1))
    phi2 = math.exp(-2) / math.sqrt(2 * math.pi)
    mass = math.erf(2 / math.sqrt(2))
    expected_std = 0.1 * math.sqrt(1 - 4 * phi2 / mass)
    assert values.std() == pytest.approx(expected_std, rel=0.01)
    assert abs(values.mean()) < 1e-3


def test_constant_and_named_initializers():
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(init.Constant(0.1)((3,), (1, 1), rng, np.float32), np.float32(0.1))
    assert init.get("zeros")((2, 2), (1, 1), rng, np.float64).sum() == 0
    assert init.get("ones")((2, 2), (1, 1), rng, np.float64).sum() == 4
    with rejects(ValueError, match="unknown initializer 'bogus'"):
        init.get("bogus")


@pytest.mark.parametrize("name,fans,expected_std", [
    ("he_normal", (400, 50), math.sqrt(2 / 400)),
    ("he_uniform", (400, 50), math.sqrt(6 / 400) / math.sqrt(3)),
    ("glorot_normal", (300, 100), math.sqrt(2 / 400)),
    ("glorot_uniform", (300, 100), math.sqrt(6 / 400) / math.sqrt(3)),
])
def test_scaled_initializers_have_their_variance(name, fans, expected_std):
    values = init.get(name)((300, 400), fans, np.random.default_rng(1), np.float64)
    assert values.std() == pytest.approx(expected_std, rel=0.02)


def test_truncated_normal_rejects_nonpositive_stddev():
    with rejects(ValueError, match="stddev must be > 0"):
        init.TruncatedNormal(0)
