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
from functools import cached_property
from typing import Any

import numpy as np

from colmena_fx.exceptions import UsageError
from colmena_fx.latency.hops import CHAIN
from colmena_fx.latency.hops import POSITION
from colmena_fx.latency.hops import SPANS
from colmena_fx.latency.hops import hops_between
from colmena_fx.latency.timelines import CorrectedTimes
from colmena_fx.latency.timelines import TaskInfo

GROUP_KEYS = ("site", "method", "topic")


@dataclass(frozen=True)
class HopTable:
    """One row per (successful task, hop): the long form pandas users want.

    A run of 100k tasks has about 1.6M rows: each row's hop is an index into
    `names` (and `orders`), so that grouping them is array work; `hop` and
    `order` spell them out per row for the readers that want lists.
    """

    task: np.ndarray  # row index into CorrectedTimes.tasks
    #: Per row, its hop: an index into `names` and `orders`.
    hop_index: np.ndarray
    #: The hops' names, in the order the table first meets them.
    names: tuple[str, ...]
    #: Per name, its (first, last) positions in CHAIN, for display order; spans
    #: sort last.
    orders: tuple[tuple[int, int], ...]
    seconds: np.ndarray
    #: +- of `seconds` from clock correction (the rate's, within one clock).
    uncertainty_s: np.ndarray
    crosses_clocks: np.ndarray

    @cached_property
    def hop(self) -> list[str]:
        """Each row's hop name."""
        return _spelled(self.names, self.hop_index)

    @cached_property
    def order(self) -> list[tuple[int, int]]:
        """Each row's hop (first, last) positions in CHAIN."""
        return _spelled(self.orders, self.hop_index)


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
    """Every hop of every successful task, merged where stamps are missing.

    Tasks come in groups of the same stamps present, in the order each group's
    first task comes; within a group, in row order, one block per hop.
    """
    times, clocks, errors = corrected.times, corrected.clocks, corrected.uncertainty
    rates = corrected.rate_error
    chained = _Chains.of(corrected)
    present = ~np.isnan(times)
    succeeded = np.fromiter(
        (info.success for info in corrected.tasks), bool, len(corrected.tasks)
    )
    spans = [(name, POSITION[a], POSITION[b]) for name, (a, b) in SPANS.items()]
    names: dict[str, int] = {}
    orders: list[tuple[int, int]] = []
    blocks: list[tuple[np.ndarray, int, int, int]] = []  # rows, hop index, a, b
    for rows in _rows_by_stamps(present, np.flatnonzero(succeeded)):
        positions = tuple(int(p) for p in np.flatnonzero(present[rows[0]]))
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
            index = names.setdefault(name, len(names))
            if index == len(orders):
                orders.append(key)
            blocks.append((rows, index, a, b))
    size = sum(len(rows) for rows, *_ in blocks)
    task = np.empty(size, dtype=np.int64)
    hop_index = np.empty(size, dtype=np.int32)
    seconds = np.empty(size)
    uncertainty = np.empty(size)
    crossing = np.empty(size, dtype=bool)
    start = 0
    for rows, index, a, b in blocks:
        end = start + len(rows)
        crosses = clocks[rows, a] != clocks[rows, b]
        task[start:end] = rows
        hop_index[start:end] = index
        seconds[start:end] = times[rows, b] - times[rows, a]
        length = np.abs(times[rows, b] - times[rows, a])
        within = np.maximum(rates[rows, a], rates[rows, b]) * length
        across = errors[rows, a] + errors[rows, b]
        if chained is not None:
            across = _chained_error(chained, rows, a, b, across, length)
        uncertainty[start:end] = np.where(crosses, across, within)
        crossing[start:end] = crosses
        start = end
    return HopTable(
        task, hop_index, tuple(names), tuple(orders), seconds, uncertainty, crossing
    )


def _rows_by_stamps(present: np.ndarray, rows: np.ndarray) -> list[np.ndarray]:
    """`rows` grouped by which stamps they have, each group in row order, the
    groups in the order of their first row."""
    if not len(rows):
        return []
    bits = np.left_shift(1, np.arange(present.shape[1], dtype=np.int64))
    keys = present[rows].astype(np.int64) @ bits
    _, first, group = np.unique(keys, return_index=True, return_inverse=True)
    by_group = np.argsort(group, kind="stable")
    bounds = np.cumsum(np.bincount(group, minlength=len(first)))
    members = np.split(rows[by_group], bounds[:-1])
    return [members[g] for g in np.argsort(first, kind="stable")]


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

    Groups not split by a key show '*' for it. The rows are sorted by group and
    hop once, so each statistic reads a slice of the rows in table order.
    """
    unknown = set(by) - set(GROUP_KEYS)
    if unknown:
        raise UsageError(f"cannot group by {sorted(unknown)}: use {GROUP_KEYS}")
    groups: dict[tuple[str, str], int] = {}
    task_group = np.fromiter(
        (groups.setdefault(_group(info, by), len(groups)) for info in corrected.tasks),
        np.int64,
        len(corrected.tasks),
    )
    if not len(table.task):
        return []
    hops = len(table.names)
    keys = task_group[table.task] * hops + table.hop_index
    if keys.max() < 2**15:  # a stable sort of 16-bit keys is a radix sort
        keys = keys.astype(np.int16)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = [*starts[1:], len(keys)]
    names = list(groups)
    found = []
    for start, end in zip(starts, ends, strict=True):
        group, hop = divmod(int(keys[start]), hops)
        found.append((names[group], hop, order[start:end]))
    found.sort(key=lambda item: (*item[0], table.orders[item[1]]))
    stats = []
    for (site, method), hop, indices in found:
        values = table.seconds[indices]
        stats.append(
            HopStats(
                site=site,
                method=method,
                hop=table.names[hop],
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


def _group(info: TaskInfo, by: Sequence[str]) -> tuple[str, str]:
    """The (site, method) a task's hops count under; '*' for a key not in `by`."""
    site = info.site if "site" in by else "*"
    method = info.method if "method" in by else "*"
    if "topic" in by:
        method = f"{method}/{info.topic}"
    return site, method


def _spelled(values: tuple[Any, ...], index: np.ndarray) -> list[Any]:
    """`[values[i] for i in index]`, without a Python step per row."""
    table = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):  # one by one: tuples stay whole
        table[i] = value
    spelled: list[Any] = table[index].tolist()
    return spelled
