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
