"""Functions the tests of `colmena_fx.colmena` run on workers (Colmena's test
methods), importable there because the repo root is on the endpoint's PYTHONPATH.

State that must outlive one attempt (how often a task has run) lives in files
the test names, so it holds whichever worker thread or process runs the task.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: How often `wait_for_file` looks for its file.


def record_call(*args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """What the function was called with."""
    return args, kwargs


def tagged(value: Any, topic: str | None = None) -> tuple[Any, str | None]:
    """A function with a `topic` parameter, which `submit` has an option of that
    name for too."""
    return value, topic


def fail_until(counter: str, failures: int) -> bool:
    """Raise `ValueError('Retry')` the first `failures` times (counted in the file
    `counter`), then return True: Colmena's `retry_task`."""
    path = Path(counter)
    runs = int(path.read_text()) if path.exists() else 0
    path.write_text(str(runs + 1))
    if runs < failures:
        raise ValueError("Retry")
    return True


def wait_for_file(gate: str, value: Any = None, limit_s: float = 60.0) -> Any:
    """Return `value` once the file `gate` exists: a task the test lets finish.

    Gives up with `TimeoutError` after `limit_s`, so that a test that failed
    before opening the gate does not keep a worker busy for ever.
    """
    from testing.wait import wait_until

    wait_until(lambda: os.path.exists(gate), limit_s, f"gate file {gate}")
    return value


class Box:
    """An object JSON cannot carry (Colmena's serialization test class)."""

    x: Any = None


def with_x(box: Box, x: Any) -> Box:
    """A new `Box` holding `x`; `box` itself is left as it came."""
    out = Box()
    out.x = x
    return out
