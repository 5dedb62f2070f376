"""Fixtures for the data tests: no network, an isolated environment."""
import pytest

import dataclasses

from dlcore.data import cifar, mnist

from .synthetic_idx import UNREACHABLE_MIRROR, set_source


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """No data test may reach the internet: every mirror points at a refused local port."""
    for dataset in mnist.DATASETS:
        set_source(monkeypatch, dataset, mirrors=(UNREACHABLE_MIRROR,))
    for dataset, source in cifar.CIFAR_DATASETS.items():
        unreachable = dataclasses.replace(source, url=f"{UNREACHABLE_MIRROR}{dataset}.tar.gz")
        monkeypatch.setitem(cifar.CIFAR_DATASETS, dataset, unreachable)


@pytest.fixture
def isolated_env(monkeypatch, tmp_path):
    """No DLCORE_DATA; HOME and XDG_CACHE_HOME inside tmp_path. Returns the cache root."""
    monkeypatch.delenv("DLCORE_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path / "xdg-cache"
