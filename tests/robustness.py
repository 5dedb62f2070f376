"""A tally of what the robustness tests tried, printed at the end of the test run.

    from tests.robustness import tried
    tried("fuzzed files")            # one more case of that kind
"""
from collections import Counter

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
