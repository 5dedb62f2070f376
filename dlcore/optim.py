"""Optimizers: SGD (momentum, Nesterov) and Adam, with L2 weight decay and L1 penalties.

Used as in PyTorch:
    opt = Adam(model.parameters(), lr=1e-4)
    ... model.backward(dlogits); opt.step()
Frozen parameters (trainable=False) and parameters without a gradient are skipped.
"""
from __future__ import annotations

from collections.abc import Iterable

from dlcore.backend import xp
from dlcore.ops import optim_update
from dlcore.parameter import Parameter


def _check_parameters(params) -> list[Parameter]:
    if isinstance(params, dict):
        params = params.values()
    params = list(params)
    if not params:
        raise ValueError("optimizer got an empty parameter list")
    for p in params:
        if not isinstance(p, Parameter):
            raise TypeError(f"optimizer expects dlcore Parameters, got {type(p).__name__}")
    return params


def _check_nonnegative(owner: str, **values):
    for name, value in values.items():
        if not value >= 0:
            raise ValueError(f"{owner}: {name} must be >= 0, got {value}")


class Optimizer:
    def __init__(self, params: Iterable[Parameter], lr: float, weight_decay: float, l1: float):
        self.params = _check_parameters(params)
        _check_nonnegative(type(self).__name__, weight_decay=weight_decay, l1=l1)
        if not lr > 0:
            raise ValueError(f"{type(self).__name__}: lr must be > 0, got {lr}")
        self.lr = lr
        self.weight_decay = weight_decay
        self.l1 = l1
        self.steps = 0

    def _active(self) -> list[int]:
        """Indices of the parameters this step updates."""
        return [i for i, p in enumerate(self.params) if p.trainable and p.grad is not None]

    def zero_grad(self):
        for p in self.params:
            p.grad = None


class SGD(Optimizer):
    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, l1: float = 0.0):
        super().__init__(params, lr, weight_decay, l1)
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")
        self.momentum = momentum
        self.nesterov = nesterov
        self.momentum_buffers = [xp().zeros_like(p.data) if momentum else None for p in self.params]

    def step(self):
        active = self._active()
        self.steps += 1
        optim_update.sgd_update(
            [self.params[i].data for i in active],
            [self.params[i].grad for i in active],
            [self.momentum_buffers[i] for i in active],
            lr=self.lr, momentum=self.momentum, nesterov=self.nesterov,
            weight_decay=self.weight_decay, l1=self.l1,
        )


class Adam(Optimizer):
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, l1: float = 0.0):
        super().__init__(params, lr, weight_decay, l1)
        for beta in betas:
            if not 0 <= beta < 1:
                raise ValueError(f"Adam: betas must be in [0, 1), got {betas}")
        if not eps > 0:
            raise ValueError(f"Adam: eps must be > 0, got {eps}")
        self.betas = betas
        self.eps = eps
        self.exp_avgs = [xp().zeros_like(p.data) for p in self.params]  # m, first moment
        self.exp_avg_sqs = [xp().zeros_like(p.data) for p in self.params]  # v, second moment

    def step(self):
        active = self._active()
        self.steps += 1
        optim_update.adam_update(
            [self.params[i].data for i in active],
            [self.params[i].grad for i in active],
            [self.exp_avgs[i] for i in active],
            [self.exp_avg_sqs[i] for i in active],
            step=self.steps, lr=self.lr, beta1=self.betas[0], beta2=self.betas[1],
            eps=self.eps, weight_decay=self.weight_decay, l1=self.l1,
        )
