"""A tally of what the robustness tests tried, printed at the end of the test run.

    from tests.robustness import rejects, tried
    tried("fuzzed files")                     # one more case of that kind
    with rejects(ValueError, match="..."):    # a bad-input case: pytest.raises, counted
        ...
"""
import contextlib
from collections import Counter

import pytest

KINDS = ("bad-input cases", "fuzzed files", "fault injections")
TRIED: Counter = Counter()


def tried(kind: str, count: int = 1) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown robustness kind {kind!r}; use one of {KINDS}")
    TRIED[kind] += count


def summary_line(failed: int) -> str | None:
    if not TRIED:
        return None
    counts = ", ".join(f"{TRIED[kind]} {kind}" for kind in KINDS)
    verdict = "all passed" if failed == 0 else f"{failed} tests failed"
    return f"robustness: {counts} tried; {verdict}"


@contextlib.contextmanager
def rejects(exception, match=None):
    """pytest.raises(exception, match=match), counted as one bad-input case."""
    tried("bad-input cases")
    with pytest.raises(exception, match=match) as info:
        yield info
