"""Download a file from the first mirror that serves a verified copy, atomically."""
from __future__ import annotations

import http.client
import os
import tempfile
import urllib.request
from pathlib import Path
from typing import BinaryIO, Callable, Sequence

from tqdm import tqdm

from dlcore.data.errors import DataFileError

DOWNLOAD_TIMEOUT_SECONDS = 60
_COPY_CHUNK_BYTES = 1 << 16


class DownloadError(OSError):
    """No URL gave a verified copy; `failures` holds one (url, reason) pair per attempt."""

    def __init__(self, destination: Path, failures: list[tuple[str, str]]):
        self.destination = destination
        self.failures = failures
        attempts = "; ".join(f"{url}: {reason}" for url, reason in failures)
        super().__init__(f"could not download {destination.name}: {attempts}")


def download_verified(
    urls: Sequence[str],
    destination: Path,
    verify: Callable[[Path], object],
    timeout: float = DOWNLOAD_TIMEOUT_SECONDS,
) -> Path:
    """Fetch the first of `urls` that works into `destination` and return its path.

    Each attempt streams into a temporary file beside `destination` (with a progress bar on
    a terminal), calls `verify(temp_path)`, which raises DataFileError for a bad copy, and
    only then renames the file into place with os.replace: `destination` never holds a
    partial or unverified file. A network error or a bad copy moves on to the next URL;
    when none is left, DownloadError lists every attempt.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        try:
            _fetch_verified(url, destination, verify, timeout)
            return destination
        except (OSError, http.client.HTTPException, DataFileError) as exc:  # URLError is an OSError
            failures.append((url, str(exc) or type(exc).__name__))
    raise DownloadError(destination, failures)


def _fetch_verified(
    url: str, destination: Path, verify: Callable[[Path], object], timeout: float
) -> None:
    descriptor, temp_name = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".part"
    )
    temp_path = Path(temp_name)
    try:
        with (
            os.fdopen(descriptor, "wb") as temp_file,
            urllib.request.urlopen(url, timeout=timeout) as response,
        ):
            _copy_with_progress(response, temp_file, _content_length(response), destination.name)
        verify(temp_path)
        os.replace(temp_path, destination)
    finally:
        temp_path.unlink(missing_ok=True)


def _content_length(response) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


def _copy_with_progress(
    source: BinaryIO, target: BinaryIO, total_bytes: int | None, label: str
) -> None:
    # disable=None: the bar shows on a terminal and stays out of logs and captured output
    with tqdm(
        total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, desc=label, disable=None
    ) as bar:
        while chunk := source.read(_COPY_CHUNK_BYTES):
            target.write(chunk)
            bar.update(len(chunk))
