"""A compact table of task timelines, and the same times on the client's clock.

A long campaign finishes hundreds of thousands of tasks; keeping each timeline as
Python objects would cost a kilobyte a task. Here a task is one row: the time of
each stamp of `COLUMNS` (the chain, then the data steps; int64 ns, or -1 where
missing) and the index of the clock that stamped it, which is all that hop
statistics and reports need.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from typing import NamedTuple

import numpy as np

from colmena_fx.latency.clocks import ClockSync
from colmena_fx.latency.hops import CLIENT_STAMPS
from colmena_fx.latency.hops import COLUMNS
from colmena_fx.latency.hops import POSITION
from colmena_fx.models import Stamp

MISSING = -1
#: The clock index of the client's own stamps.
CLIENT_CLOCK = 0
#: Per stamp name: its column, and whether the client's own process made it.
_PLACES: dict[str, tuple[int, bool]] = {
    name: (column, name in CLIENT_STAMPS) for name, column in POSITION.items()
}


class TaskInfo(NamedTuple):
    """Who a row is: a tuple, built once per finished task on the read path."""

    task_id: str
    site: str
    method: str
    topic: str
    success: bool


@dataclass(frozen=True)
class CorrectedTimes:
    """Every task's stamps on the client's clock, in seconds since the first stamp.

    `times[i, j]` is task i's stamp `COLUMNS[j]` (NaN where missing); `uncertainty`
    the same shape, the +- of each corrected stamp (0 on the client's clock).
    """

    tasks: list[TaskInfo]
    times: np.ndarray
    uncertainty: np.ndarray
    #: Which clock stamped each time (0: the client's; same shape as `times`).
    clocks: np.ndarray
    #: The client time (ns since the epoch) that `times` count from.
    origin_ns: int
    #: The +- of each stamp's clock rate (s per s; 0 on the client's clock): a hop
    #: within one remote clock is uncertain by that times its length.
    rate_error: np.ndarray
    #: Per clock index, the clock it was chained through (a worker host's, its
    #: endpoint's), or -1; and per stamp its +- against that clock (s; NaN if
    #: none): a hop between the two is uncertain by that, not by both +-.
    via: np.ndarray | None = None
    via_uncertainty: np.ndarray | None = None
    #: Per stamp, how far (s) its correction was moved off its clock's line by its
    #: task's own send and receipt (`Correction.moved_ns`; 0 on the client's).
    moved: np.ndarray | None = None

    def column(self, stamp: str) -> np.ndarray:
        return self.times[:, POSITION[stamp]]


class TimelineStore:
    """Rows of task timelines, added as tasks finish and amended after delivery."""

    def __init__(self) -> None:
        self._times = np.full((256, len(COLUMNS)), MISSING, dtype=np.int64)
        self._clocks = np.zeros((256, len(COLUMNS)), dtype=np.int32)
        self._tasks: list[TaskInfo] = []
        self._rows: dict[str, int] = {}
        #: Clock index -> (site, host); index 0 is the client.
        self._clock_names: list[tuple[str, str]] = [("", "")]
        self._clock_index: dict[tuple[str, str], int] = {}
        #: The same by site, then host: one lookup per remote stamp in `add`.
        self._site_clocks: dict[str, dict[str, int]] = {}
        #: Stamps amended before their task's row was added (another thread's race).
        self._early: dict[str, list[tuple[int, int]]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tasks)

    def add(self, info: TaskInfo, events: Iterable[Any]) -> None:
        """Add (or replace) a task's row from its events; the last of a name wins.

        Unknown names and hostless remote stamps are left out (`_column`).
        """
        times = [MISSING] * len(COLUMNS)
        clocks = [CLIENT_CLOCK] * len(COLUMNS)
        places = _PLACES
        with self._lock:
            hosts = self._site_clocks.get(info.site)
            if hosts is None:
                hosts = self._site_clocks[info.site] = {}
            for name, time_ns, host in events:
                place = places.get(name)
                if place is None:
                    continue
                column, on_client = place
                if on_client:
                    times[column] = time_ns
                elif host:
                    times[column] = time_ns
                    clock = hosts.get(host)
                    if clock is None:
                        clock = self._clock(info.site, host)
                    clocks[column] = clock
            row = self._rows.get(info.task_id)
            if row is None:
                row = len(self._tasks)
                self._grow(row + 1)
                self._tasks.append(info)
                self._rows[info.task_id] = row
            else:
                self._tasks[row] = info
            if self._early:
                for column, time_ns in self._early.pop(info.task_id, ()):
                    times[column] = time_ns
            self._times[row] = times
            self._clocks[row] = clocks

    def amend(self, task_id: str, name: str, time_ns: int) -> None:
        """Add a client stamp made after the row was added (delivered, processed)."""
        column = self._column(name, "")
        if column is None:
            return
        with self._lock:
            row = self._rows.get(task_id)
            if row is None:
                self._early.setdefault(task_id, []).append((column, time_ns))
            else:
                self._times[row, column] = time_ns

    @staticmethod
    def _column(name: str, host: str) -> int | None:
        """Where `name` goes: None for unknown names and hostless remote stamps."""
        if name not in CLIENT_STAMPS and not host:
            return None
        return POSITION.get(name)

    def _clock(self, site: str, host: str) -> int:
        index = self._clock_index.get((site, host))
        if index is None:
            index = self._clock_index[site, host] = len(self._clock_names)
            self._clock_names.append((site, host))
            self._site_clocks.setdefault(site, {})[host] = index
        return index

    def _grow(self, rows: int) -> None:
        if rows <= len(self._times):
            return
        size = max(rows, 2 * len(self._times))
        times = np.full((size, len(COLUMNS)), MISSING, dtype=np.int64)
        clocks = np.zeros((size, len(COLUMNS)), dtype=np.int32)
        times[: len(self._times)] = self._times
        clocks[: len(self._clocks)] = self._clocks
        self._times, self._clocks = times, clocks

    def corrected(self, sync: ClockSync) -> CorrectedTimes:
        """Every row's stamps moved onto the client's clock with `sync`'s offsets,
        each by the offset of its clock at its own time.

        Stamps of a clock with no offset estimate yet (its task never came back)
        stay missing rather than mixing two clocks.
        """
        with self._lock:
            count = len(self._tasks)
            times = self._times[:count].copy()
            clocks = self._clocks[:count].copy()
            tasks = list(self._tasks)
            names = list(self._clock_names)
        present = times != MISSING
        offsets = np.zeros(times.shape)
        errors = np.zeros(times.shape)
        rate_errors = np.zeros(times.shape)
        via = np.full(len(names), -1, dtype=np.int64)
        via_errors = np.full(times.shape, np.nan)
        moved = np.zeros(times.shape)
        index_of = {name: index for index, name in enumerate(names)}
        sent = times[:, POSITION[Stamp.SENT.value]]
        for index, (site, host) in enumerate(names[1:], start=1):
            mask = present & (clocks == index)
            if not mask.any():
                continue
            rows = np.nonzero(mask)[0]
            correction = sync.correct(site, host, times[mask], sent[rows])
            if correction is None:
                present &= ~mask
                continue
            offsets[mask] = correction.offset_ns
            errors[mask] = correction.error_ns / 1e9
            rate_errors[mask] = correction.rate_error
            if correction.moved_ns is not None:
                moved[mask] = correction.moved_ns / 1e9
            if correction.via and correction.via_error_ns is not None:
                via[index] = index_of.get((site, correction.via), -1)
                via_errors[mask] = correction.via_error_ns / 1e9
        on_client = present & (clocks == CLIENT_CLOCK)
        origin = int(times[on_client].min()) if on_client.any() else 0
        # (times - origin - offsets) / 1e9, in place: each temporary the size of
        # the table is 18 MB at 100k tasks.
        np.subtract(times, origin, out=times)
        seconds = np.subtract(times, offsets, out=offsets)
        seconds /= 1e9
        missing = ~present
        seconds[missing] = np.nan
        errors[missing] = np.nan
        return CorrectedTimes(
            tasks, seconds, errors, clocks, origin, rate_errors, via, via_errors,
            moved,
        )  # fmt: skip
