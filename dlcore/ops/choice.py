"""A process-wide choice among fixed names (a kernel version, a matmul provider): set in
code, else read once from an environment variable, else a default."""
from __future__ import annotations

import contextlib
import os


class Choice:
    def __init__(self, what: str, names: tuple[str, ...], env_var: str, default: str):
        self.what, self.names, self.env_var, self.default = what, names, env_var, default
        self._value: str | None = None  # None until first read: then env_var or the default

    def _checked(self, name, source: str) -> str:
        if name not in self.names:
            raise ValueError(f"{source} must be one of {', '.join(self.names)}, got {name!r}")
        return name

    def get(self) -> str:
        """The last set() value, else the environment variable, else the default."""
        if self._value is None:
            self._value = self._checked(os.environ.get(self.env_var) or self.default, self.env_var)
        return self._value

    def set(self, name: str) -> str:
        """Choose `name` from now on; returns the previous choice."""
        previous = self.get()
        self._value = self._checked(name, self.what)
        return previous

    @contextlib.contextmanager
    def use(self, name: str):
        """`with choice.use(name): ...` chooses `name` inside the block."""
        previous = self.set(name)
        try:
            yield name
        finally:
            self.set(previous)

    def reset(self) -> None:
        """Forget the choice: the next get() reads the environment again."""
        self._value = None
