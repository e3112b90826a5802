"""Wait for something to happen, with a deadline, instead of sleeping and hoping.

A test that sleeps "long enough" for another thread or process is slow when the
machine is idle and flaky when it is busy. `wait_until` returns as soon as the
condition holds and, when it never does, fails with what the test was waiting for.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: First and longest pause between two looks at the condition.
_FIRST_POLL_S = 0.001
_MAX_POLL_S = 0.05


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Return once `predicate()` is true; raise `AssertionError` naming `what` if
    it is still false after `timeout` seconds.

    Polls quickly at first (most conditions hold almost at once) and then every
    50 ms, so a slow condition costs little CPU on a shared machine.
    """
    deadline = time.monotonic() + timeout
    pause = _FIRST_POLL_S
    while not predicate():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, _MAX_POLL_S)
