"""One thread that runs callbacks at given times: retries, deadlines, waits.

Resubmitting from inside a failing task's callback recursed (a site that fails at
once fails again inside the same stack) and gave no place for a backoff; deadlines
need a clock that fires whatever the site does. Both are calls at a time, so one
timer thread serves them all, and its callbacks never run on a transport's thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


def backoff_s(attempt: int, initial_s: float, max_s: float) -> float:
    """The nominal wait before `attempt` (1, 2, ...): doubling from `initial_s`,
    capped at `max_s`. Shared by task resends and endpoint restarts."""
    return float(min(initial_s * 2.0 ** (attempt - 1), max_s))


class Timer:
    """A scheduled call; `cancel` makes it a no-op (it stays queued until due)."""

    __slots__ = ("cancelled", "function", "when")

    def __init__(self, when: float, function: Callable[[], None]) -> None:
        self.when = when
        self.function = function
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Timers:
    """Runs each call at its time (monotonic seconds) on the thread `cfx-timers`."""

    def __init__(self, name: str = "cfx-timers") -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def call_at(self, when: float, function: Callable[[], None]) -> Timer:
        timer = Timer(when, function)
        with self._wake:
            heapq.heappush(self._heap, (when, next(self._order), timer))
            if self._heap[0][2] is timer:
                self._wake.notify()
        return timer

    def call_later(self, delay_s: float, function: Callable[[], None]) -> Timer:
        return self.call_at(time.monotonic() + max(0.0, delay_s), function)

    def call_soon(self, function: Callable[[], None]) -> Timer:
        return self.call_at(time.monotonic(), function)

    def stop(self) -> None:
        """Drop every call not yet run and end the thread."""
        with self._wake:
            self._stopping = True
            self._heap.clear()
            self._wake.notify()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping:
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        break
                    wait = self._heap[0][0] - now if self._heap else None
                    self._wake.wait(wait)
                if self._stopping:
                    return
                _when, _order, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            try:
                timer.function()
            except Exception:  # one failing call must not stop the others
                log.exception("a scheduled call failed")
