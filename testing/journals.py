"""Journal lines written by hand, for tests of what reports read from a journal."""

from __future__ import annotations

from typing import Any

#: The run's start, client clock: every line's time is seconds after it.
START_NS = 1_800_000_000_000_000_000


def at_ns(seconds: float) -> int:
    """`seconds` after the run's start, as a journal time."""
    return START_NS + round(seconds * 1e9)


def line(event: str, at: float, task: dict[str, Any]) -> dict[str, Any]:
    """One journal line, `at` seconds after the start."""
    return {"event": event, "time_ns": at_ns(at), "task": task}


def run_line(federation: str, sites: dict[str, str]) -> dict[str, Any]:
    """The first line of a run of `sites` (name -> transport)."""
    run = {"federation": federation, "client_host": "client", "clocks": "estimate",
           "sites": sites}  # fmt: skip
    return line("run", 0.0, run)
