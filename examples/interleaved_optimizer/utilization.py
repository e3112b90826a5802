"""Did the thinker keep the simulation workers busy? Two measures that answer it.

The point of interleaving is that retraining never stalls the simulations, so the
campaign accounts for it twice. `WorkerBusy` adds up the compute intervals stamped
by the workers themselves and divides by what the workers could have done over the
same window: the honest end-to-end figure, which also pays for dispatch latency.
`SlotIdle` measures the thinker's own share: for how long a simulation slot stood
free between a result arriving and the next simulation being submitted into it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from colmena_fx.models import Result
from colmena_fx.models import Stamp


@dataclass(frozen=True)
class BusyReport:
    """Compute time over the capacity of `workers` from first start to last end."""

    busy_s: float
    window_s: float
    workers: int
    tasks: int
    #: When the first simulation started computing (ns since the epoch), or 0.
    first_start_ns: int = 0

    @property
    def fraction(self) -> float:
        capacity = self.window_s * self.workers
        return self.busy_s / capacity if capacity > 0 else 0.0


class WorkerBusy:
    """Collects the worker-stamped compute interval of every finished simulation."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._intervals: list[tuple[int, int]] = []
        self._lock = threading.Lock()

    def add(self, result: Result) -> None:
        started = result.timeline.get(Stamp.COMPUTE_STARTED)
        ended = result.timeline.get(Stamp.COMPUTE_ENDED)
        if started is None or ended is None:
            return  # lost before or during compute: nothing to count
        with self._lock:
            self._intervals.append((started.time_ns, ended.time_ns))

    def report(self) -> BusyReport:
        with self._lock:
            intervals = list(self._intervals)
        if not intervals:
            return BusyReport(0.0, 0.0, self.workers, 0)
        first = min(start for start, _ in intervals)
        last = max(end for _, end in intervals)
        busy = sum(end - start for start, end in intervals)
        return BusyReport(
            busy / 1e9, (last - first) / 1e9, self.workers, len(intervals), first
        )


class SlotIdle:
    """Time simulation slots stood free in the thinker before being refilled."""

    def __init__(self) -> None:
        self._freed: deque[float] = deque()
        self._idle_s = 0.0
        self._lock = threading.Lock()

    def freed(self) -> None:
        """A slot became free (a simulation result arrived, or the campaign began)."""
        with self._lock:
            self._freed.append(time.monotonic())

    def filled(self) -> None:
        """A simulation was submitted into the slot that has been free the longest."""
        with self._lock:
            if self._freed:
                self._idle_s += time.monotonic() - self._freed.popleft()

    @property
    def idle_s(self) -> float:
        with self._lock:
            return self._idle_s
