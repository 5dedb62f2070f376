"""pyproject.toml ships every package under dlcore/ (setuptools is given an explicit list)."""
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11's")

REPO = Path(__file__).resolve().parents[1]


def test_every_dlcore_package_is_listed():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(init.parent.relative_to(REPO).parts) for init in (REPO / "dlcore").rglob("__init__.py")}
    assert on_disk - listed == set()
