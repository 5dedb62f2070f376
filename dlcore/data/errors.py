"""Errors raised by the data loaders: a bad file, or a data set that cannot be found."""
from __future__ import annotations

import os


class DataFileError(ValueError):
    """A data file is malformed or fails its integrity check.

    `path` is the offending file; the message names it and says what was expected and
    what was found.
    """

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class DatasetNotFoundError(FileNotFoundError):
    """The files of a data set are neither on disk nor downloadable; the message says
    which files are needed and where to put them."""
