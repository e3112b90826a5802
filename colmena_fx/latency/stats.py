"""Per-task hop durations on corrected clocks, and their statistics per group.

A hop whose two stamps come from different clocks carries the sum of both clocks'
uncertainties; a hop within one remote clock only that clock's rate uncertainty
times its length (a clock running fast stretches every interval it times).
Statistics cover successful tasks only: a failed task's hops stop short.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from colmena_fx.exceptions import UsageError
from colmena_fx.latency.hops import CHAIN
from colmena_fx.latency.hops import POSITION
from colmena_fx.latency.hops import SPANS
from colmena_fx.latency.hops import hops_between
from colmena_fx.latency.timelines import CorrectedTimes

GROUP_KEYS = ("site", "method", "topic")


@dataclass(frozen=True)
class HopTable:
    """One row per (successful task, hop): the long form pandas users want."""

    task: np.ndarray  # row index into CorrectedTimes.tasks
    hop: list[str]
    #: (first, last) positions in CHAIN, for display order; spans sort last.
    order: list[tuple[int, int]]
    seconds: np.ndarray
    #: +- of `seconds` from clock correction (the rate's, within one clock).
    uncertainty_s: np.ndarray
    crosses_clocks: np.ndarray


@dataclass(frozen=True)
class HopStats:
    site: str
    method: str
    hop: str
    count: int
    median_s: float
    p95_s: float
    p99_s: float
    mean_s: float
    #: The largest correction uncertainty among the samples (0 within one clock).
    uncertainty_s: float
    crosses_clocks: bool


@dataclass(frozen=True)
class TaskCounts:
    site: str
    method: str
    succeeded: int
    failed: int


def hop_table(corrected: CorrectedTimes) -> HopTable:
    """Every hop of every successful task, merged where stamps are missing."""
    times, clocks, errors = corrected.times, corrected.clocks, corrected.uncertainty
    rates = corrected.rate_error
    chained = _Chains.of(corrected)
    present = ~np.isnan(times)
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for row, info in enumerate(corrected.tasks):
        if info.success:
            groups[tuple(np.flatnonzero(present[row]))].append(row)
    spans = [(name, POSITION[a], POSITION[b]) for name, (a, b) in SPANS.items()]
    task, names, order, seconds, errs, crossing = [], [], [], [], [], []
    for positions, rows_list in groups.items():
        rows = np.asarray(rows_list)
        pieces: list[tuple[str, tuple[int, int], int, int]] = [
            (hop.name, hop.order, hop.first, hop.last)
            for hop in hops_between(positions)
        ]
        pieces += [
            (name, (len(CHAIN) + i, 0), a, b)
            for i, (name, a, b) in enumerate(spans)
            if a in positions and b in positions
        ]
        for name, key, a, b in pieces:
            crosses = clocks[rows, a] != clocks[rows, b]
            task.append(rows)
            names.extend([name] * len(rows))
            order.extend([key] * len(rows))
            seconds.append(times[rows, b] - times[rows, a])
            length = np.abs(times[rows, b] - times[rows, a])
            within = np.maximum(rates[rows, a], rates[rows, b]) * length
            across = errors[rows, a] + errors[rows, b]
            if chained is not None:
                across = _chained_error(chained, rows, a, b, across, length)
            errs.append(np.where(crosses, across, within))
            crossing.append(crosses)
    if not task:
        empty = np.zeros(0)
        return HopTable(empty.astype(int), [], [], empty, empty, empty.astype(bool))
    return HopTable(
        np.concatenate(task),
        names,
        order,
        np.concatenate(seconds),
        np.concatenate(errs),
        np.concatenate(crossing),
    )


@dataclass(frozen=True)
class _Chains:
    """Which clocks were chained through which (`CorrectedTimes.via`)."""

    clocks: np.ndarray
    via: np.ndarray
    via_uncertainty: np.ndarray
    rate_error: np.ndarray
    moved: np.ndarray

    @classmethod
    def of(cls, corrected: CorrectedTimes) -> _Chains | None:
        via, errors, moved = corrected.via, corrected.via_uncertainty, corrected.moved
        if via is None or errors is None or moved is None or not (via >= 0).any():
            return None
        return cls(corrected.clocks, via, errors, corrected.rate_error, moved)


def _chained_error(
    chains: _Chains,
    rows: np.ndarray,
    a: int,
    b: int,
    across: np.ndarray,
    length: np.ndarray,
) -> np.ndarray:
    """A hop between a chained clock and the clock it was chained through is
    uncertain by the chain's +- (and that clock's rate over the hop, and what
    moved either stamp off that clock's line), not by both clocks' +- against
    the client's."""
    clock_a, clock_b = chains.clocks[rows, a], chains.clocks[rows, b]
    out = across
    for inner, outer, column in ((clock_b, clock_a, b), (clock_a, clock_b, a)):
        other = a if column == b else b
        linked = chains.via[inner] == outer
        if linked.any():
            bound = (
                chains.via_uncertainty[rows, column]
                + chains.moved[rows, other]
                + chains.rate_error[rows, other] * length
            )
            usable = linked & ~np.isnan(bound)
            out = np.where(usable, np.minimum(out, bound), out)
    return out


def task_counts(corrected: CorrectedTimes) -> list[TaskCounts]:
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for info in corrected.tasks:
        counts[info.site, info.method][0 if info.success else 1] += 1
    return [TaskCounts(s, m, ok, bad) for (s, m), (ok, bad) in sorted(counts.items())]


def summarize_hops(
    corrected: CorrectedTimes, table: HopTable, by: Sequence[str] = ("site", "method")
) -> list[HopStats]:
    """Statistics per group (`by`: any of site, method, topic) and hop.

    Groups not split by a key show '*' for it.
    """
    unknown = set(by) - set(GROUP_KEYS)
    if unknown:
        raise UsageError(f"cannot group by {sorted(unknown)}: use {GROUP_KEYS}")
    samples: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    orders: dict[str, tuple[int, int]] = {}
    for i, (row, name) in enumerate(zip(table.task, table.hop, strict=True)):
        info = corrected.tasks[row]
        site = info.site if "site" in by else "*"
        method = info.method if "method" in by else "*"
        if "topic" in by:
            method = f"{method}/{info.topic}"
        samples[site, method, name].append(i)
        orders.setdefault(name, table.order[i])
    stats = []
    for (site, method, name), indices in sorted(
        samples.items(), key=lambda item: (item[0][0], item[0][1], orders[item[0][2]])
    ):
        values = table.seconds[indices]
        stats.append(
            HopStats(
                site=site,
                method=method,
                hop=name,
                count=len(values),
                median_s=float(np.median(values)),
                p95_s=float(np.percentile(values, 95)),
                p99_s=float(np.percentile(values, 99)),
                mean_s=float(values.mean()),
                uncertainty_s=float(table.uncertainty_s[indices].max()),
                crosses_clocks=bool(table.crosses_clocks[indices].any()),
            )
        )
    return stats
