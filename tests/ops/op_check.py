"""Shared op-test machinery: run an op on a backend, compare against a reference with
per-dtype tolerances, and check analytic gradients against central differences.

Ops are run through `run_op(backend, ...)`, which moves array arguments onto the backend
and results back to NumPy, so the same test runs on every backend in OP_BACKENDS.
A backend string may name an emulator thread order: "emu:reverse", "emu:shuffled".
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from dlcore import emu
from dlcore.backend import to_backend, to_numpy, use_backend

# Backends every op test runs on; cupy only where a GPU is usable (the gpu marker skips it elsewhere).
OP_BACKENDS = ("numpy", "emu", pytest.param("cupy", marks=pytest.mark.gpu))
# Emulator thread orders between barriers: a kernel missing a __syncthreads fails under one of them.
THREAD_ORDERS = ("emu:reverse", "emu:shuffled")

# Forward outputs and gradients against an independent reference, by dtype.
TOLERANCES = {
    np.dtype(np.float32): {"rtol": 1e-4, "atol": 1e-5},
    np.dtype(np.float64): {"rtol": 1e-10, "atol": 1e-12},
}
# Analytic gradients against central differences (float64, step NUMERIC_STEP).
GRADIENT_TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}
NUMERIC_STEP = 1e-6


def random_array(rng: np.random.Generator, shape, dtype=np.float64, scale: float = 1.0):
    """Standard normal values times `scale`, in `dtype`."""
    return (rng.standard_normal(shape) * scale).astype(dtype)


def _to_device(value):
    return to_backend(value) if isinstance(value, np.ndarray) else value


def _to_host(value):
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (tuple, list)):
        return type(value)(_to_host(item) for item in value)
    return to_numpy(value)


@contextlib.contextmanager
def backend_context(backend: str):
    """Switch to `backend`; "emu:ORDER" also sets the emulator's thread order."""
    name, _, order = backend.partition(":")
    with use_backend(name), (emu.configured(order=order) if order else contextlib.nullcontext()):
        yield


def on_backend(backend: str, function, *args, **kwargs):
    """function(*args, **kwargs) with array arguments moved onto `backend`; results as NumPy."""
    with backend_context(backend):
        result = function(
            *map(_to_device, args), **{name: _to_device(value) for name, value in kwargs.items()}
        )
    return _to_host(result)


def run_op(backend: str, forward, inputs, params=None, backward=None, dout=None, backward_params=None):
    """forward(*inputs, **params) on `backend`, then backward(dout, cache, **backward_params)
    when `backward` is given. Returns (out, grads) as NumPy arrays (grads None without backward)."""
    with backend_context(backend):
        device_params = {name: _to_device(value) for name, value in (params or {}).items()}
        out, cache = forward(*(_to_device(value) for value in inputs), **device_params)
        grads = None if backward is None else backward(_to_device(dout), cache, **(backward_params or {}))
    return _to_host(out), _to_host(grads)


def assert_close(actual, expected, dtype=None, **override):
    """`actual` has `expected`'s shape and matches it within the tolerance of `dtype`
    (default: actual's dtype); `override` replaces rtol / atol."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != expected {expected.shape}"
    tolerance = {**TOLERANCES[np.dtype(dtype or actual.dtype)], **override}
    np.testing.assert_allclose(actual, expected, **tolerance)


def numerical_gradient(f, inputs, dout):
    """d sum(f(*inputs) * dout) / d inputs[k] for every k, by central differences in float64.

    f maps the inputs to one array; inputs are float64 arrays (perturbed in place and restored)."""
    dout = np.asarray(dout, dtype=np.float64)
    grads = []
    for array in inputs:
        grad = np.zeros_like(array, dtype=np.float64)
        for index in np.ndindex(array.shape):
            original = array[index]
            array[index] = original + NUMERIC_STEP
            plus = np.sum(np.asarray(f(*inputs), dtype=np.float64) * dout)
            array[index] = original - NUMERIC_STEP
            minus = np.sum(np.asarray(f(*inputs), dtype=np.float64) * dout)
            array[index] = original
            grad[index] = (plus - minus) / (2 * NUMERIC_STEP)
        grads.append(grad)
    return grads


def check_op_gradients(forward, backward, inputs, params=None, backward_params=None, backend="numpy", seed=0):
    """Analytic gradients of forward/backward on `backend` match central differences for
    every array in `inputs` (converted to float64), for a random dout. Backward must return
    the gradients in input order (one array, or a tuple whose first len(inputs) entries count)."""
    inputs = [np.array(value, dtype=np.float64) for value in inputs]
    params = params or {}
    out, _ = run_op("numpy", forward, inputs, params)
    dout = np.random.default_rng(seed).standard_normal(np.shape(out))
    _, grads = run_op(backend, forward, inputs, params, backward, dout, backward_params)
    if not isinstance(grads, tuple):
        grads = (grads,)
    expected = numerical_gradient(lambda *xs: forward(*xs, **params)[0], inputs, dout)
    for position, (grad, reference) in enumerate(zip(grads, expected)):
        assert grad is not None, f"backward returned no gradient for input {position}"
        assert grad.dtype == np.float64, f"gradient {position} has dtype {grad.dtype}"
        np.testing.assert_allclose(
            grad, reference, **GRADIENT_TOLERANCE, err_msg=f"gradient of input {position}"
        )
