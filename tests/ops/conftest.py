"""Fixtures of the op tests: the backend each op runs on, and a seeded generator."""

import numpy as np
import pytest

from .op_check import OP_BACKENDS


@pytest.fixture(params=OP_BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
