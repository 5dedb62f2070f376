"""Optimizer updates over a list of parameters, in place.

One call updates every parameter of a group (on a GPU: one launch for all of them), so
the signatures take lists. Penalties enter the gradient first (coupled, as in PyTorch):
    g = grad + weight_decay * w + l1 * sign(w)
AdamW's weight decay is decoupled instead: Adam's update with `decoupled_weight_decay`,
which shrinks the weights by (1 - lr * decoupled_weight_decay) beside the gradient step.

The GPU path (kernels/optim.cu) is a multi-tensor apply: one launch per dtype among the
parameters, given a device table of each tensor's parameter, gradient and state addresses and a
table of chunks, each block updating one chunk of one tensor.
"""
from __future__ import annotations

import math

import numpy as np

from dlcore.backend import get_backend, to_backend
from dlcore.ops import launch
from dlcore.ops.checks import require_float, require_same_dtype, require_shape
from dlcore.ops.launch import KernelFile


def _penalized(param, grad, weight_decay, l1):
    if weight_decay == 0 and l1 == 0:
        return grad
    g = grad.copy()
    if weight_decay:
        g += weight_decay * param
    if l1:
        g += l1 * np.sign(param)
    return g


CPU_BLOCK_SIZE = 1 << 16  # elements per block of the NumPy updates: w, g, m, v and a scratch block fit in L2


def _row_blocks(array):
    """Index expressions that cut `array` into blocks of whole rows (axis 0) of about
    CPU_BLOCK_SIZE elements; views of any memory layout, so in-place updates land."""
    if array.ndim == 0:
        return [...]
    rows = max(1, CPU_BLOCK_SIZE // max(1, array.size // max(1, array.shape[0])))
    return [slice(start, start + rows) for start in range(0, array.shape[0], rows)]


def _check_steps(op, params, steps) -> None:
    """One step count t >= 1 per parameter: how many updates it has received, this one included."""
    if len(steps) != len(params):
        raise ValueError(f"{op}: got {len(params)} params but {len(steps)} steps")
    for i, step in enumerate(steps):
        if not (isinstance(step, (int, np.integer)) and step >= 1):
            raise ValueError(f"{op}: steps[{i}] must be an int >= 1 (the updates params[{i}] has had, "
                             f"this one included), got {step!r}")


def _bias_corrections(step, lr, beta1, beta2) -> tuple[float, float]:
    """(step_size, bias_correction2) = (lr / (1-b1^t), 1-b2^t) of one parameter's step t."""
    return lr / (1.0 - beta1**step), 1.0 - beta2**step


def adam_update_cpu(params, grads, exp_avgs, exp_avg_sqs, *, steps, lr, beta1, beta2, eps,
                    weight_decay=0.0, l1=0.0, decoupled_weight_decay=0.0):
    """Bias-corrected Adam (Kingma & Ba), each parameter's step t_i counted from 1 (`steps`, as
    PyTorch's per-parameter state["step"]), and AdamW (Loshchilov & Hutter) with
    decoupled_weight_decay:
        m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2
        w = w * (1 - lr*decoupled_weight_decay) - lr * (m / (1-b1^t_i)) / (sqrt(v) / sqrt(1-b2^t_i) + eps)
    Each parameter is updated block by block with in-place ufuncs and one scratch block, so
    the dozen passes over w, g, m, v run in cache and allocate no parameter-sized temporaries.
    """
    _check_steps("adam_update", params, steps)
    decay = 1.0 - lr * decoupled_weight_decay
    for w, grad, m, v, step in zip(params, grads, exp_avgs, exp_avg_sqs, steps):
        # w -= lr/(1-b1^t) * m / (sqrt(v)/r + eps) = lr*r/(1-b1^t) * m / (sqrt(v) + eps*r), r = sqrt(1-b2^t)
        lr_corrected, bias_correction2 = _bias_corrections(step, lr, beta1, beta2)
        root_bias2 = math.sqrt(bias_correction2)
        step_size = lr_corrected * root_bias2
        eps_scaled = eps * root_bias2
        for rows in _row_blocks(w):
            wb, mb, vb = w[rows], m[rows], v[rows]
            g = _penalized(wb, grad[rows], weight_decay, l1)
            scratch = np.empty_like(mb)
            mb *= beta1
            np.multiply(g, 1.0 - beta1, out=scratch)
            mb += scratch  # m = b1*m + (1-b1)*g
            vb *= beta2
            np.multiply(g, g, out=scratch)
            scratch *= 1.0 - beta2
            vb += scratch  # v = b2*v + (1-b2)*g^2
            np.sqrt(vb, out=scratch)
            scratch += eps_scaled
            np.divide(mb, scratch, out=scratch)
            scratch *= step_size
            if decay != 1.0:
                wb *= decay
            wb -= scratch  # w = w * decay - step_size * m / (sqrt(v) + eps * sqrt(1-b2^t))


def sgd_update_cpu(params, grads, momentum_buffers, *, lr, momentum=0.0, nesterov=False,
                   weight_decay=0.0, l1=0.0):
    """SGD with optional (Nesterov) momentum, PyTorch's formulation:
        b = mu*b + g;  step = g + mu*b if nesterov else b;  w -= lr * step
    `momentum_buffers` is ignored (may hold None) when momentum == 0.
    """
    for w, grad, buf in zip(params, grads, momentum_buffers):
        g = _penalized(w, grad, weight_decay, l1)
        if momentum:
            buf *= momentum
            buf += g
            g = g + momentum * buf if nesterov else buf
        w -= lr * g


def rmsprop_update_cpu(params, grads, square_avgs, grad_avgs, momentum_buffers, *, lr, alpha, eps,
                       momentum=0.0, centered=False, weight_decay=0.0, l1=0.0):
    """RMSprop (Hinton), PyTorch's formulation:
        v = a*v + (1-a)*g^2
        d = sqrt(v - c^2) + eps with c = a*c + (1-a)*g if centered, else sqrt(v) + eps
        b = mu*b + g/d; w -= lr * b   (w -= lr * g/d without momentum)
    `grad_avgs` is ignored (may hold None) unless centered, `momentum_buffers` when momentum == 0.
    """
    for w, grad, v, c, buf in zip(params, grads, square_avgs, grad_avgs, momentum_buffers):
        g = _penalized(w, grad, weight_decay, l1)
        v *= alpha
        v += (1.0 - alpha) * (g * g)
        if centered:
            c *= alpha
            c += (1.0 - alpha) * g
            denom = np.sqrt(v - c * c) + eps
        else:
            denom = np.sqrt(v) + eps
        step = g / denom
        if momentum:
            buf *= momentum
            buf += step
            step = buf
        w -= lr * step


# ---------------------------------------------------------------- CUDA launchers

_kernels = KernelFile("optim.cu", ("adam_update", "sgd_update", "rmsprop_update"))
_BLOCK = 256  # threads per block; they stride over the block's chunk
CHUNK_SIZE = 4096  # elements of one tensor that one block updates


def _check_group(op, params, per_param: dict) -> None:
    """Every list in `per_param` ({"grads": [...], ...}) holds one array per parameter, of its
    shape and dtype; parameters and states (all but grads) are updated in place, so they must
    be C-contiguous."""
    for name, arrays in per_param.items():
        if len(arrays) != len(params):
            raise ValueError(f"{op}: got {len(params)} params but {len(arrays)} {name}")
    for i, param in enumerate(params):
        require_float(op, f"params[{i}]", param)
        for name, arrays in per_param.items():
            require_shape(op, f"{name}[{i}]", arrays[i], param.shape, f"the shape of params[{i}]")
            require_same_dtype(op, f"params[{i}]", param, **{f"{name}[{i}]": arrays[i]})
        written = {"params": param, **{name: arrays[i] for name, arrays in per_param.items() if name != "grads"}}
        for name, array in written.items():
            if not array.flags.c_contiguous:
                raise ValueError(f"{op}: {name}[{i}] must be C-contiguous (the update writes it in place)")


def _indices_by_dtype(params) -> dict:
    """{dtype: indices of the parameters of that dtype}: one launch per dtype."""
    groups = {}
    for i, param in enumerate(params):
        groups.setdefault(param.dtype, []).append(i)
    return groups


def _launch_multi_tensor(name, dtype, tensors, scalars) -> None:
    """One launch of optim.cu's `name` over `tensors`: per tensor, a tuple of its arrays in the
    kernel's pointer-table order (None: a null pointer); `scalars` are the kernel's arguments
    after chunk_size.

    The kernel reads the arrays through raw addresses, so `tensors` holds them (temporary
    contiguous gradients included) until the launch is queued; after that CuPy's memory pool is
    stream-ordered: freed memory is only handed to work queued after this kernel."""
    sizes = np.array([arrays[0].size for arrays in tensors], dtype=np.int64)  # (tensors,)
    chunk_counts = -(-sizes // CHUNK_SIZE)  # (tensors,)
    blocks = int(chunk_counts.sum())
    if blocks == 0:
        return
    chunk_tensor = np.repeat(np.arange(len(tensors)), chunk_counts)  # (blocks,)
    first_chunk_of_tensor = np.cumsum(chunk_counts) - chunk_counts  # (tensors,)
    chunk_first = (np.arange(blocks) - first_chunk_of_tensor[chunk_tensor]) * CHUNK_SIZE  # (blocks,)
    chunks = np.stack([chunk_tensor, chunk_first], axis=1).astype(np.int64)  # (blocks, 2)
    pointers = np.array(
        [[0 if array is None else launch.device_pointer(array) for array in arrays] for arrays in tensors],
        dtype=np.uint64,
    )  # (tensors, arrays per tensor)
    args = (to_backend(pointers), to_backend(sizes), to_backend(chunks), launch.i32(CHUNK_SIZE), *scalars)
    _kernels.get(name, dtype)((blocks,), (_BLOCK,), args)


def adam_update_gpu(params, grads, exp_avgs, exp_avg_sqs, *, steps, lr, beta1, beta2, eps,
                    weight_decay=0.0, l1=0.0, decoupled_weight_decay=0.0):
    """CUDA launcher of `adam_update`: one launch per dtype among the parameters, with a table of
    each parameter's bias corrections (its own step)."""
    op = "adam_update"
    _check_group(op, params, {"grads": grads, "exp_avgs": exp_avgs, "exp_avg_sqs": exp_avg_sqs})
    _check_steps(op, params, steps)
    hyper = (beta1, 1.0 - beta1, beta2, 1.0 - beta2, eps, weight_decay, l1, 1.0 - lr * decoupled_weight_decay)
    for dtype, indices in _indices_by_dtype(params).items():
        tensors = [(params[i], launch.contiguous(grads[i]), exp_avgs[i], exp_avg_sqs[i]) for i in indices]
        corrections = np.array([_bias_corrections(steps[i], lr, beta1, beta2) for i in indices], dtype=dtype)
        scalars = (to_backend(corrections), *(launch.scalar(v, dtype) for v in hyper))  # corrections: (tensors, 2)
        _launch_multi_tensor("adam_update", dtype, tensors, scalars)


def sgd_update_gpu(params, grads, momentum_buffers, *, lr, momentum=0.0, nesterov=False,
                   weight_decay=0.0, l1=0.0):
    """CUDA launcher of `sgd_update`: one launch per dtype among the parameters."""
    states = {"momentum_buffers": momentum_buffers} if momentum else {}
    _check_group("sgd_update", params, {"grads": grads, **states})
    for dtype, indices in _indices_by_dtype(params).items():
        tensors = [
            (params[i], launch.contiguous(grads[i]), momentum_buffers[i] if momentum else None) for i in indices
        ]
        scalars = (
            launch.scalar(lr, dtype),
            launch.scalar(momentum, dtype),
            launch.i32(bool(nesterov)),
            launch.scalar(weight_decay, dtype),
            launch.scalar(l1, dtype),
        )
        _launch_multi_tensor("sgd_update", dtype, tensors, scalars)


def rmsprop_update_gpu(params, grads, square_avgs, grad_avgs, momentum_buffers, *, lr, alpha, eps,
                       momentum=0.0, centered=False, weight_decay=0.0, l1=0.0):
    """CUDA launcher of `rmsprop_update`: one launch per dtype among the parameters."""
    states = {"square_avgs": square_avgs}
    if centered:
        states["grad_avgs"] = grad_avgs
    if momentum:
        states["momentum_buffers"] = momentum_buffers
    _check_group("rmsprop_update", params, {"grads": grads, **states})
    for dtype, indices in _indices_by_dtype(params).items():
        tensors = [
            (params[i], launch.contiguous(grads[i]), square_avgs[i], grad_avgs[i] if centered else None,
             momentum_buffers[i] if momentum else None)
            for i in indices
        ]
        hyper = (lr, alpha, 1.0 - alpha, eps, momentum, weight_decay, l1)
        _launch_multi_tensor("rmsprop_update", dtype, tensors, tuple(launch.scalar(v, dtype) for v in hyper))


# ---------------------------------------------------------------- dispatchers


def adam_update(params, grads, exp_avgs, exp_avg_sqs, **hyper):
    if get_backend().runs_kernels:
        return adam_update_gpu(params, grads, exp_avgs, exp_avg_sqs, **hyper)
    return adam_update_cpu(params, grads, exp_avgs, exp_avg_sqs, **hyper)


def sgd_update(params, grads, momentum_buffers, **hyper):
    if get_backend().runs_kernels:
        return sgd_update_gpu(params, grads, momentum_buffers, **hyper)
    return sgd_update_cpu(params, grads, momentum_buffers, **hyper)


def rmsprop_update(params, grads, square_avgs, grad_avgs, momentum_buffers, **hyper):
    if get_backend().runs_kernels:
        return rmsprop_update_gpu(params, grads, square_avgs, grad_avgs, momentum_buffers, **hyper)
    return rmsprop_update_cpu(params, grads, square_avgs, grad_avgs, momentum_buffers, **hyper)
