"""Fixtures of the op tests: the backend each op runs on, and a seeded generator."""

import numpy as np
import pytest

from dlcore.ops.launch import poison_outputs

from .op_check import OP_BACKENDS


@pytest.fixture(params=OP_BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _poisoned_kernel_outputs():
    """Kernel outputs start as NaN, so an element a kernel forgets to write fails the test."""
    poison_outputs(True)
    yield
    poison_outputs(False)
