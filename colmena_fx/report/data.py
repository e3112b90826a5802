"""The quantities a run report shows, derived once from the run's journal.

Everything here is plain numbers on the client's clock, in seconds since the
federation started (the journal's `run` line), so that the plots and the page only
draw and format: the clock correction and the hop model stay in `latency`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colmena_fx.clockplan import ClockPlan
from colmena_fx.clocksetting import ClockSetting
from colmena_fx.exceptions import ColmenaFXError
from colmena_fx.journal import JOURNAL_NAME
from colmena_fx.journal import read_journal
from colmena_fx.latency.clocks import ClockOffset
from colmena_fx.latency.hops import SPANS
from colmena_fx.latency.routes import RoutingFacts
from colmena_fx.latency.runfacts import read_run_facts
from colmena_fx.latency.stats import HopStats
from colmena_fx.latency.stats import TaskCounts
from colmena_fx.latency.stats import hop_table
from colmena_fx.latency.stats import summarize_hops
from colmena_fx.latency.stats import task_counts
from colmena_fx.latency.tasks import TaskFacts
from colmena_fx.latency.timelines import CorrectedTimes
from colmena_fx.models import Stamp


class RunNotFoundError(ColmenaFXError, FileNotFoundError):
    """A report was asked of a directory that holds no run journal."""


@dataclass(frozen=True)
class RunHeader:
    """What the journal's first line says about the run."""

    federation: str
    run_name: str
    client_host: str
    #: How the run declared its clocks (`ClockPlan.describe`).
    clocks: str
    #: Site name -> transport ("local", "globus"), as the run declared them.
    sites: dict[str, str]
    #: When the federation started, client clock (ns since the epoch); None for
    #: journals written before runs had a `run` line.
    start_ns: int | None


@dataclass(frozen=True)
class SiteCounts:
    site: str
    transport: str
    succeeded: int
    failed: int


@dataclass(frozen=True)
class Steps:
    """A step function: `values[i]` holds from `times_s[i]` until `times_s[i+1]`."""

    times_s: np.ndarray
    values: np.ndarray

    @property
    def peak(self) -> int:
        return int(self.values.max()) if len(self.values) else 0

    def mean(self) -> float:
        """The time-weighted mean over the steps' whole span."""
        if len(self.times_s) < 2 or self.times_s[-1] <= self.times_s[0]:
            return 0.0
        widths = np.diff(self.times_s)
        return float((self.values[:-1] * widths).sum() / widths.sum())

    def binned(self, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(edges, mean, peak) over `bins` equal bins of the span.

        A long run has more steps than a plot has pixels; the time-weighted mean
        and the peak of each bin draw it faithfully at any length.
        """
        edges = np.linspace(self.times_s[0], self.times_s[-1], bins + 1)
        areas = np.r_[0.0, np.cumsum(self.values[:-1] * np.diff(self.times_s))]
        step = np.clip(np.searchsorted(self.times_s, edges, "right") - 1, 0, None)
        step = np.minimum(step, len(self.values) - 1)
        area = areas[step] + self.values[step] * (edges - self.times_s[step])
        widths = np.diff(edges)
        mean = np.divide(np.diff(area), widths, out=np.zeros(bins), where=widths > 0)
        # every step that overlaps a bin: from the one holding its left edge on
        last = np.searchsorted(self.times_s, edges[1:], "left") - 1
        last = np.clip(np.maximum(last, step[:-1]), 0, len(self.values) - 1)
        peak = np.array(
            [self.values[a : b + 1].max() for a, b in zip(step[:-1], last, strict=True)]
        )
        return edges, mean, peak


@dataclass(frozen=True)
class ReportData:
    header: RunHeader
    sites: list[SiteCounts]
    method_counts: list[TaskCounts]
    #: First and last stamp of the run (seconds since start); None without tasks.
    span_s: tuple[float, float] | None
    #: Site -> (hop, median seconds) in chain order, successful tasks, no spans.
    hop_medians: dict[str, list[tuple[str, float]]]
    #: Every hop name met, in chain order, for one colour per hop across sites.
    hop_order: list[str]
    #: Per site x method x hop, spans included.
    hop_stats: list[HopStats]
    #: Site -> each successful task's round trip (seconds).
    round_trips: dict[str, np.ndarray]
    #: Site -> how many of its tasks were computing, over time.
    busy: dict[str, Steps]
    #: Per delivered result, seconds until the next task was created.
    decision_s: np.ndarray
    offsets: list[ClockOffset]
    synchronized: bool
    #: Per site and policy, where tasks went; every change of a site's health.
    #: Empty for journals written before routing policies and site health.
    routing: RoutingFacts
    #: Every task, delivered or not, per site; the client's resumes and stop.
    task_facts: TaskFacts

    @property
    def tasks(self) -> int:
        return sum(row.succeeded + row.failed for row in self.sites)

    @property
    def succeeded(self) -> int:
        return sum(row.succeeded for row in self.sites)


def read_header(run_dir: Path) -> RunHeader:
    """The run's own description, from the `run` line at the head of its journal."""
    path = Path(run_dir) / JOURNAL_NAME
    if not path.is_file():
        raise RunNotFoundError(
            f"{path} not found: pass a run directory, one that a federation wrote "
            "(e.g. runs/demo-20261124-101500)"
        )
    record: dict[str, Any] = {}
    start_ns = None
    for entry in read_journal(run_dir):
        if entry.get("event") == "run":
            record, start_ns = entry["task"], int(entry["time_ns"])
        break  # the run line comes first or not at all
    return RunHeader(
        federation=str(record.get("federation", "?")),
        run_name=Path(run_dir).resolve().name,
        client_host=str(record.get("client_host", "?")),
        clocks=ClockPlan.from_json(record.get("clocks")).describe(),
        sites=dict(record.get("sites", {})),
        start_ns=start_ns,
    )


def busy_steps(
    starts: np.ndarray, ends: np.ndarray, span_s: tuple[float, float]
) -> Steps:
    """How many of the intervals [start, end) are open at each moment of `span_s`.

    An interval ending when another starts hands over without a spike.
    """
    keep = ~(np.isnan(starts) | np.isnan(ends))
    starts, ends = starts[keep], ends[keep]
    times = np.concatenate([starts, ends])
    deltas = np.concatenate([np.ones(len(starts)), -np.ones(len(ends))])
    order = np.lexsort((deltas, times))  # by time, ends before starts
    times, level = times[order], np.cumsum(deltas[order])
    # one step per distinct time: the level after all of that time's changes
    last = np.r_[times[1:] != times[:-1], True] if len(times) else np.zeros(0, bool)
    times, level = times[last], level[last]
    start = min(span_s[0], float(times[0]) if len(times) else span_s[0])
    end = max(span_s[1], float(times[-1]) if len(times) else span_s[1])
    return Steps(
        np.concatenate([[start], times, [end]]),
        np.concatenate([[0], level, [level[-1] if len(level) else 0]]).astype(int),
    )


def decision_latencies(created: np.ndarray, delivered: np.ndarray) -> np.ndarray:
    """Per delivered result, the time until the next task created after it.

    Results delivered after the last task was created have no next task and are
    left out.
    """
    created = np.sort(created[~np.isnan(created)])
    delivered = delivered[~np.isnan(delivered)]
    following = np.searchsorted(created, delivered, side="right")
    has_next = following < len(created)
    gaps: np.ndarray = created[following[has_next]] - delivered[has_next]
    return gaps


def load_report_data(
    run_dir: Path, clocks: Mapping[str, ClockSetting] | None = None
) -> ReportData:
    """Everything the report shows about the run in `run_dir` (its clocks
    corrected as it declared, but for those `clocks` names)."""
    header = read_header(run_dir)
    facts = read_run_facts(run_dir, clocks)  # one reading of the journal
    recorder = facts.recorder
    corrected = recorder.corrected()
    table = hop_table(corrected)
    counts = task_counts(corrected)
    shift = _shift_s(corrected, header)
    times = corrected.times + shift
    span = None
    if np.isfinite(times).any():
        span = (float(np.nanmin(times)), float(np.nanmax(times)))

    by_site = summarize_hops(corrected, table, by=("site",))
    # a hop's name fixes its place in the chain
    orders = dict(zip(table.hop, table.order, strict=True))
    medians: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for row in by_site:
        if row.hop not in SPANS:
            medians[row.site].append((row.hop, row.median_s))

    sites = [info.site for info in corrected.tasks]
    is_trip = np.asarray(table.hop, dtype=object) == "round_trip"
    trip_sites = np.asarray(sites, dtype=object)[table.task[is_trip]]
    trips = {
        site: table.seconds[is_trip][trip_sites == site]
        for site in sorted(set(trip_sites))
    }

    def at(stamp: Stamp) -> np.ndarray:
        return corrected.column(stamp) + shift

    started, ended = at(Stamp.COMPUTE_STARTED), at(Stamp.COMPUTE_ENDED)
    busy = {
        site: busy_steps(started[rows], ended[rows], span or (0.0, 0.0))
        for site, rows in _rows_by_site(sites).items()
    }
    return ReportData(
        header=header,
        sites=_site_counts(header, counts),
        method_counts=counts,
        span_s=span,
        hop_medians=dict(medians),
        hop_order=sorted(
            (name for name in orders if name not in SPANS), key=orders.__getitem__
        ),
        hop_stats=summarize_hops(corrected, table, by=("site", "method")),
        round_trips=trips,
        busy=busy,
        decision_s=decision_latencies(at(Stamp.CREATED), at(Stamp.DELIVERED)),
        offsets=recorder.offsets(),
        synchronized=recorder.clocks.synchronized,
        routing=facts.routing,
        task_facts=facts.tasks,
    )


def _shift_s(corrected: CorrectedTimes, header: RunHeader) -> float:
    """What to add to corrected times to count from the federation's start."""
    if header.start_ns is not None:
        return (corrected.origin_ns - header.start_ns) / 1e9
    if np.isfinite(corrected.times).any():
        return -float(np.nanmin(corrected.times))
    return 0.0


def _rows_by_site(sites: list[str]) -> dict[str, np.ndarray]:
    rows: dict[str, list[int]] = defaultdict(list)
    for row, site in enumerate(sites):
        rows[site].append(row)
    return {site: np.asarray(r, dtype=int) for site, r in sorted(rows.items())}


def _site_counts(header: RunHeader, counts: list[TaskCounts]) -> list[SiteCounts]:
    """Per site, declared sites first (even those that ran nothing)."""
    totals: dict[str, list[int]] = {site: [0, 0] for site in header.sites}
    for row in counts:
        total = totals.setdefault(row.site, [0, 0])
        total[0] += row.succeeded
        total[1] += row.failed
    return [
        SiteCounts(site, header.sites.get(site, "?"), ok, bad)
        for site, (ok, bad) in totals.items()
    ]
