"""Where data sets live on disk: the DLCORE_DATA variable, the per-user cache, file variants."""
from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "DLCORE_DATA"


def data_dir_from_env() -> Path | None:
    """The folder named by DLCORE_DATA, or None when the variable is unset or empty."""
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value) if value else None


def user_cache_dir(dataset: str) -> Path:
    """$XDG_CACHE_HOME/dlcore/datasets/<dataset>, or ~/.cache/dlcore/datasets/<dataset> when
    XDG_CACHE_HOME is unset or not absolute (the XDG spec says to ignore relative values)."""
    xdg_cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg_cache) if xdg_cache and os.path.isabs(xdg_cache) else Path.home() / ".cache"
    return base / "dlcore" / "datasets" / dataset


def find_stored_file(folder: Path, name: str) -> Path | None:
    """`folder/name` (raw, preferred: nothing to decompress) or else `folder/name.gz`, or None."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None
