"""Atomic file writes: a reader (or a later run) sees the old file or the new one, never half of one."""
from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path, text: bool = False):
    """Yield a file open for writing into a temporary file beside `path`; when the block ends
    without an exception, flush, fsync and os.replace it onto `path` (then fsync the folder).

    A process killed mid-write leaves `path` as it was (plus a hidden `.name.*.tmp` file); an
    exception in the block removes the temporary file and leaves `path` as it was.
    text: open in text mode (UTF-8, newline="" as the csv module wants), else binary.
    """
    path = Path(path)
    temp_path = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
    try:
        mode = {"mode": "w", "encoding": "utf-8", "newline": ""} if text else {"mode": "wb"}
        with os.fdopen(descriptor, **mode) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_path, path)
        _fsync_folder(path.parent)
    finally:
        temp_path.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; other systems cannot open a folder)."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
