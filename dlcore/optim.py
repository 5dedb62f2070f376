"""Optimizers: SGD (momentum, Nesterov), Adam, AdamW (decoupled weight decay) and RMSprop,
with L2 weight decay and L1 penalties, and gradient clipping (dlcore.grad_clipping).

Used as in PyTorch:
    opt = Adam(model.parameters(), lr=1e-4)
    ... model.backward(dlogits); opt.step()
or with parameter groups, dicts that override some hyperparameters for their parameters
(per-branch regularization):
    opt = Adam([{"params": model.branches[0].parameters(), "weight_decay": 1e-3},
                {"params": model.head.parameters()}], lr=1e-3)
A group trains with its own values, else the optimizer's: setting `opt.lr` changes every
group that sets no lr of its own. Each step updates a group with one update call.
Frozen parameters (trainable=False) and parameters without a gradient are skipped, and, as
in PyTorch, each parameter counts its own updates (`parameter_steps`): Adam's bias
correction uses that count, so a parameter that had no gradient on some steps (a layer
frozen, then unfrozen; a branch used only on some steps) is corrected for the updates it
received, not for the optimizer's steps.
"""
from __future__ import annotations

from dlcore.backend import xp
from dlcore.grad_clipping import clip_grad_norm, clip_grad_value
from dlcore.ops import optim_update
from dlcore.parameter import Parameter, parameter_list

__all__ = ["SGD", "Adam", "AdamW", "RMSprop", "Optimizer", "clip_grad_norm", "clip_grad_value"]


def _parameter_groups(params, hyperparameters: tuple[str, ...], owner: str) -> list[dict]:
    """[{"params": [Parameter, ...], hyperparameter: value, ...}, ...] from Parameters (one
    group), a {name: Parameter} dict (one group) or a list of PyTorch-style group dicts."""
    items = list(params.values() if isinstance(params, dict) else params)
    if not any(isinstance(item, dict) for item in items):
        items = [{"params": items}]
    groups = []
    for k, group in enumerate(items):
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{owner}: parameter group {k} must be a dict with a 'params' entry, "
                            f"got {type(group).__name__}")
        unknown = sorted(set(group) - {"params", *hyperparameters})
        if unknown:
            raise ValueError(f"{owner}: parameter group {k} sets unknown hyperparameters {unknown}; "
                             f"valid: {', '.join(hyperparameters)}")
        groups.append({**group, "params": parameter_list(group["params"], "optimizer")})
    everything = [p for group in groups for p in group["params"]]
    if not everything:
        raise ValueError("optimizer got an empty parameter list")
    if len({id(p) for p in everything}) != len(everything):
        raise ValueError(f"{owner}: a parameter is listed twice")
    return groups


def _check_nonnegative(owner: str, **values):
    for name, value in values.items():
        if not value >= 0:
            raise ValueError(f"{owner}: {name} must be >= 0, got {value}")


class Optimizer:
    """Holds `params` (all of them, in group order) and `param_groups`; a subclass names its
    hyperparameters, checks them and defines step()."""

    hyperparameters: tuple[str, ...] = ("lr", "weight_decay", "l1")

    def __init__(self, params, **defaults):
        owner = type(self).__name__
        for key, value in defaults.items():
            setattr(self, key, value)
        self.param_groups = _parameter_groups(params, self.hyperparameters, owner)
        self.params = [p for group in self.param_groups for p in group["params"]]
        self.check_hyperparameters(self.group_hyperparameters({}), owner)
        for k, group in enumerate(self.param_groups):
            self.check_hyperparameters(self.group_hyperparameters(group), f"{owner}: parameter group {k}")
        self.steps = 0  # step() calls
        self.parameter_steps = [0] * len(self.params)  # updates of each parameter, aligned with `params`
        self.initial_lr = self.lr  # what learning-rate schedules scale; saved in checkpoints

    def group_hyperparameters(self, group: dict) -> dict:
        """The values a group trains with: its own, else the optimizer's."""
        return {key: group.get(key, getattr(self, key)) for key in self.hyperparameters}

    def check_hyperparameters(self, values: dict, owner: str):
        _check_nonnegative(owner, weight_decay=values["weight_decay"], l1=values["l1"])
        if not values["lr"] > 0:
            raise ValueError(f"{owner}: lr must be > 0, got {values['lr']}")

    def _start_step(self) -> list[tuple[dict, list[int]]]:
        """Counts a step (once for the optimizer, once for each parameter it updates) and returns
        (hyperparameters, indices into `params` of the parameters it updates) for each group with any."""
        self.steps += 1
        groups, start = [], 0
        for group in self.param_groups:
            end = start + len(group["params"])
            active = [i for i in range(start, end) if self.params[i].trainable and self.params[i].grad is not None]
            for i in active:
                self.parameter_steps[i] += 1
            if active:
                groups.append((self.group_hyperparameters(group), active))
            start = end
        return groups

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def state_slots(self) -> dict[str, list]:
        """Per-parameter state by slot name, each a list aligned with `params` (None where a
        parameter has none); the live arrays, which a checkpoint saves and restores in place."""
        return {}


class SGD(Optimizer):
    hyperparameters = ("lr", "momentum", "nesterov", "weight_decay", "l1")

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, l1: float = 0.0):
        super().__init__(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay, l1=l1)
        self.momentum_buffers = [xp().zeros_like(p.data) if self.group_hyperparameters(group)["momentum"] else None
                                 for group in self.param_groups for p in group["params"]]

    def state_slots(self) -> dict[str, list]:
        return {"momentum_buffer": self.momentum_buffers}

    def check_hyperparameters(self, values: dict, owner: str):
        super().check_hyperparameters(values, owner)
        if not 0 <= values["momentum"] < 1:
            raise ValueError(f"{owner}: momentum must be in [0, 1), got {values['momentum']}")
        if values["nesterov"] and values["momentum"] == 0:
            raise ValueError(f"{owner}: nesterov=True needs momentum > 0")

    def step(self):
        for hyper, active in self._start_step():
            optim_update.sgd_update(
                [self.params[i].data for i in active],
                [self.params[i].grad for i in active],
                [self.momentum_buffers[i] for i in active],
                **hyper,
            )


class Adam(Optimizer):
    hyperparameters = ("lr", "betas", "eps", "weight_decay", "l1")

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, l1: float = 0.0):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, l1=l1)
        self.exp_avgs = [xp().zeros_like(p.data) for p in self.params]  # m, first moment
        self.exp_avg_sqs = [xp().zeros_like(p.data) for p in self.params]  # v, second moment

    def state_slots(self) -> dict[str, list]:
        return {"exp_avg": self.exp_avgs, "exp_avg_sq": self.exp_avg_sqs}

    def check_hyperparameters(self, values: dict, owner: str):
        super().check_hyperparameters(values, owner)
        if not all(0 <= beta < 1 for beta in values["betas"]):
            raise ValueError(f"{owner}: betas must be in [0, 1), got {values['betas']}")
        if not values["eps"] > 0:
            raise ValueError(f"{owner}: eps must be > 0, got {values['eps']}")

    def step(self):
        for hyper, active in self._start_step():
            optim_update.adam_update(
                [self.params[i].data for i in active],
                [self.params[i].grad for i in active],
                [self.exp_avgs[i] for i in active],
                [self.exp_avg_sqs[i] for i in active],
                steps=[self.parameter_steps[i] for i in active], lr=hyper["lr"], beta1=hyper["betas"][0], beta2=hyper["betas"][1],
                eps=hyper["eps"], **self._weight_decays(hyper),
            )

    def _weight_decays(self, hyper: dict) -> dict:
        """Adam's weight decay enters the gradient (L2, coupled)."""
        return {"weight_decay": hyper["weight_decay"], "l1": hyper["l1"]}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW: each step
    first shrinks a parameter, w *= 1 - lr * weight_decay, then takes Adam's step on the plain
    gradient. `l1` still enters the gradient (coupled), as with Adam."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, l1: float = 0.0):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, l1=l1)

    def _weight_decays(self, hyper: dict) -> dict:
        return {"weight_decay": 0.0, "l1": hyper["l1"], "decoupled_weight_decay": hyper["weight_decay"]}


class RMSprop(Optimizer):
    """RMSprop as torch.optim.RMSprop: v = alpha*v + (1-alpha)*g^2 and w -= lr * g / (sqrt(v) + eps);
    centered=True divides by sqrt(v - mean(g)^2) + eps, the running variance; momentum > 0 keeps
    a buffer b = momentum*b + g/(...) and steps by lr * b. weight_decay and l1 enter the gradient."""

    hyperparameters = ("lr", "alpha", "eps", "momentum", "centered", "weight_decay", "l1")

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, momentum: float = 0.0,
                 centered: bool = False, weight_decay: float = 0.0, l1: float = 0.0):
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, momentum=momentum, centered=centered,
                         weight_decay=weight_decay, l1=l1)
        settings = [self.group_hyperparameters(group) for group in self.param_groups for _ in group["params"]]
        self.square_avgs = [xp().zeros_like(p.data) for p in self.params]  # v, running mean of g^2
        self.grad_avgs = [xp().zeros_like(p.data) if s["centered"] else None  # running mean of g
                          for p, s in zip(self.params, settings)]
        self.momentum_buffers = [xp().zeros_like(p.data) if s["momentum"] else None
                                 for p, s in zip(self.params, settings)]

    def state_slots(self) -> dict[str, list]:
        return {"square_avg": self.square_avgs, "grad_avg": self.grad_avgs, "momentum_buffer": self.momentum_buffers}

    def check_hyperparameters(self, values: dict, owner: str):
        super().check_hyperparameters(values, owner)
        if not 0 <= values["alpha"] < 1:
            raise ValueError(f"{owner}: alpha must be in [0, 1), got {values['alpha']}")
        if not values["eps"] > 0:
            raise ValueError(f"{owner}: eps must be > 0, got {values['eps']}")
        if not 0 <= values["momentum"] < 1:
            raise ValueError(f"{owner}: momentum must be in [0, 1), got {values['momentum']}")
        if not isinstance(values["centered"], bool):
            raise ValueError(f"{owner}: centered must be True or False, got {values['centered']!r}")

    def step(self):
        for hyper, active in self._start_step():
            optim_update.rmsprop_update(
                [self.params[i].data for i in active],
                [self.params[i].grad for i in active],
                [self.square_avgs[i] for i in active],
                [self.grad_avgs[i] for i in active],
                [self.momentum_buffers[i] for i in active],
                **hyper,
            )
