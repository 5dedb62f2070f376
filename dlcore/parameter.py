"""A trainable array and its gradient."""
from __future__ import annotations


class Parameter:
    """`data` is the value on the current backend; `grad` has the same shape and is
    overwritten (not accumulated) by each backward pass. `trainable=False` freezes it:
    optimizers skip it and layers do not compute its gradient."""

    def __init__(self, data, name: str = "", trainable: bool = True):
        self.data = data
        self.grad = None
        self.name = name
        self.trainable = trainable

    @property
    def shape(self):
        return self.data.shape

    def __repr__(self):
        state = "" if self.trainable else ", frozen"
        return f"Parameter({self.name or '?'}, shape={tuple(self.shape)}, dtype={self.data.dtype}{state})"


def parameter_list(params, owner: str) -> list[Parameter]:
    """The Parameters of `params` (a Parameter, an iterable, or a {name: Parameter} dict);
    TypeError naming `owner` for anything else."""
    if isinstance(params, Parameter):
        params = [params]
    elif isinstance(params, dict):
        params = params.values()
    params = list(params)
    for p in params:
        if not isinstance(p, Parameter):
            raise TypeError(f"{owner} expects dlcore Parameters (e.g. model.parameters()), got {type(p).__name__}")
    return params
