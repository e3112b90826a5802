"""Everything a campaign learns about its latency, as its tasks finish.

The federation owns one `LatencyRecorder` (`federation.latency`): each finished
task feeds the clock-offset estimates and the timeline table, so statistics on
corrected clocks are available at any moment of a run, and the same recorder is
rebuilt from a run's journal afterwards (`from_run`).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections import deque
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colmena_fx.clockplan import ClockPlan
from colmena_fx.clocksetting import ClockSetting
from colmena_fx.journal import read_journal
from colmena_fx.latency.clocks import ClockOffset
from colmena_fx.latency.clocks import ClockSync
from colmena_fx.latency.stats import HopStats
from colmena_fx.latency.stats import HopTable
from colmena_fx.latency.stats import TaskCounts
from colmena_fx.latency.stats import hop_table
from colmena_fx.latency.stats import summarize_hops
from colmena_fx.latency.stats import task_counts
from colmena_fx.latency.timelines import CorrectedTimes
from colmena_fx.latency.timelines import TaskInfo
from colmena_fx.latency.timelines import TimelineStore
from colmena_fx.models import Result
from colmena_fx.models import Stamp

#: Round trips kept per site for the rolling percentiles of the live view.
ROLLING = 200


@dataclass(frozen=True)
class SiteActivity:
    """What one site has done so far, for a live view."""

    site: str
    done: int
    failed: int
    #: Over the last `ROLLING` round trips; None before the first.
    round_trip_p50_s: float | None
    round_trip_p95_s: float | None


class LatencyRecorder:
    """Clock offsets, task timelines and rolling figures of one campaign."""

    def __init__(self, clocks: ClockPlan | None = None) -> None:
        self.clocks = ClockSync(clocks)
        self.timelines = TimelineStore()
        self._counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self._round_trips: dict[str, deque[float]] = defaultdict(
            lambda: deque(maxlen=ROLLING)
        )
        self._lock = threading.Lock()

    # -- feeding ---------------------------------------------------------------------

    def completed(self, result: Result) -> None:
        """A task finished (for good: not about to be retried)."""
        site = result.site or "?"
        self.add(_info(result), result.timeline.events)
        sent, received = (
            result.timeline.get(Stamp.SENT),
            result.timeline.get(Stamp.RECEIVED),
        )
        with self._lock:
            self._counts[site][0 if result.success else 1] += 1
            if sent is not None and received is not None:
                self._round_trips[site].append((received.time_ns - sent.time_ns) / 1e9)

    def add(self, info: TaskInfo, events: Iterable[Any]) -> None:
        """Learn from one task's events (live or read back from a journal)."""
        events = list(events)
        self.clocks.observe(info.site, events)
        self.timelines.add(info, events)

    def stamped(self, task_id: str, stamp: str, time_ns: int) -> None:
        """A client stamp made after completion (delivered, processed)."""
        self.timelines.amend(task_id, stamp, time_ns)

    # -- reading ---------------------------------------------------------------------

    def activity(self) -> list[SiteActivity]:
        with self._lock:
            snapshot = {
                site: (tuple(counts), list(self._round_trips[site]))
                for site, counts in self._counts.items()
            }
        rows = []
        for site, ((done, failed), trips) in sorted(snapshot.items()):
            p50 = p95 = None
            if trips:
                p50, p95 = (float(v) for v in np.percentile(trips, [50, 95]))
            rows.append(SiteActivity(site, done, failed, p50, p95))
        return rows

    def offsets(self) -> list[ClockOffset]:
        return self.clocks.offsets()

    def corrected(self) -> CorrectedTimes:
        """Every task's stamps on the client's clock."""
        return self.timelines.corrected(self.clocks)

    def hops(self) -> tuple[CorrectedTimes, HopTable]:
        corrected = self.corrected()
        return corrected, hop_table(corrected)

    def summary(self, by: Sequence[str] = ("site", "method")) -> list[HopStats]:
        """Count, median, p95, p99, mean and uncertainty per group and hop."""
        corrected, table = self.hops()
        return summarize_hops(corrected, table, by=by)

    def counts(self) -> list[TaskCounts]:
        return task_counts(self.corrected())

    # -- from a journal --------------------------------------------------------------

    @classmethod
    def from_records(
        cls, records: Iterable[dict[str, Any]], clocks: ClockPlan | None = None
    ) -> LatencyRecorder:
        """A recorder fed with journal records (`journal.final_records`).

        `records` may be any iterable: each record is fed and dropped in turn.
        """
        recorder = cls(clocks)
        for record in records:
            recorder.add(_record_info(record), record["timeline"]["events"])
        return recorder

    @classmethod
    def from_run(
        cls, run_dir: Path, clocks: Mapping[str, ClockSetting] | None = None
    ) -> LatencyRecorder:
        """The recorder of a finished run, from its journal.

        Its clocks are corrected as the run declared, but for the sites (or `*`,
        every site) that `clocks` names.
        """
        feed = JournalFeed(clocks, cls)
        for entry in read_journal(run_dir):
            feed.add(entry)
        recorder = feed.finish()
        if recorder is None:  # a `run` line after the first `delivered` one
            again = JournalFeed(factory=cls, plan=feed.plan())
            for entry in read_journal(run_dir):
                again.add(entry)
            recorder = again.finish()
            assert recorder is not None  # a fixed plan cannot change
        return recorder


class JournalFeed:
    """Feeds a recorder journal lines one at a time, as they are read.

    What `LatencyRecorder.from_run` does, for a reader that also folds the same
    lines into other facts (`latency.runfacts`): each `delivered` record goes
    into the recorder at once and is dropped, so that reading a run costs one
    table row per task rather than its parsed record. The late stamps are kept
    and applied after the last line, as before: a task delivered again (a resumed
    run) gets them on its last row.
    """

    def __init__(
        self,
        clocks: Mapping[str, ClockSetting] | None = None,
        factory: type[LatencyRecorder] | None = None,
        plan: ClockPlan | None = None,
    ) -> None:
        #: Settings that override what the run declared ({site or `*`: setting}).
        self.clocks = dict(clocks or {})
        self.factory = factory or LatencyRecorder
        self.declared = ClockPlan()
        #: A plan fixed from the start, whatever the journal declares.
        self._fixed = plan
        self.recorder: LatencyRecorder | None = None
        #: What the recorder was made with: what the run had declared by then.
        self._made_with: ClockPlan | None = None
        self._late: list[tuple[str, str, int]] = []

    def add(self, entry: dict[str, Any]) -> None:
        event, task = entry["event"], entry["task"]
        if event == "delivered":
            recorder = self.recorder
            if recorder is None:
                self._made_with = self.plan()
                recorder = self.recorder = self.factory(self._made_with)
            recorder.add(_record_info(task), task["timeline"]["events"])
        elif event == "stamped":
            self._late.append((task["task_id"], task["name"], task["time_ns"]))
        elif event == "processed":  # journals written before `stamped`
            self._late.append((task["task_id"], Stamp.PROCESSED, task["time_ns"]))
        elif event == "run":
            self.declared = ClockPlan.from_json(task.get("clocks"))

    def plan(self) -> ClockPlan:
        """How the recorder corrects the clocks, as of the lines read so far."""
        if self._fixed is not None:
            return self._fixed
        return self.declared.overridden(self.clocks)

    def finish(self) -> LatencyRecorder | None:
        """The recorder; None when a `run` line after the first `delivered` one
        changed what the run declared (then read the journal again)."""
        recorder = self.recorder
        if recorder is None:
            recorder = self.factory(self.plan())
        elif self._made_with != self.plan():
            return None
        for task_id, name, time_ns in self._late:
            recorder.stamped(task_id, name, time_ns)
        self._late = []
        return recorder


def _info(result: Result) -> TaskInfo:
    return TaskInfo(
        result.task_id,
        result.site or "?",
        result.method,
        result.topic,
        bool(result.success),
    )


def _record_info(record: dict[str, Any]) -> TaskInfo:
    return TaskInfo(
        record["task_id"],
        record.get("site") or "?",
        record["method"],
        record.get("topic", "default"),
        bool(record.get("success")),
    )
