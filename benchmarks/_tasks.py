"""Functions the overhead benchmark runs on workers.

They live in an importable module (not in `overhead.py`, which runs as
`__main__`) so that workers unpickle them by reference: the benchmark puts the
repository root on the workers' `PYTHONPATH`.
"""

from __future__ import annotations


def noop() -> None:
    """Do nothing: every microsecond a no-op task takes is overhead."""
    return None


def checksum(array: object) -> float:
    """Read every element of an array: its bytes must have arrived to return."""
    return float(array.sum())  # type: ignore[attr-defined]


def pause(seconds: float, value: object = None) -> object:
    """Hold a worker for `seconds` without using the CPU: a task of known length.

    `CFX_BENCH_SLOWDOWN` in the site's environment stretches it, to stand for a
    site whose workers are slower.
    """
    import os
    import time

    time.sleep(seconds * float(os.environ.get("CFX_BENCH_SLOWDOWN", "1")))
    return value
