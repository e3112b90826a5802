"""Per site x method x hop statistics over finished tasks."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from colmena_fx.latency.hops import HOPS
from colmena_fx.latency.hops import SPANS
from colmena_fx.latency.hops import hop_durations


@dataclass(frozen=True)
class HopStats:
    site: str
    method: str
    hop: str
    count: int
    median_s: float
    p95_s: float
    mean_s: float


@dataclass(frozen=True)
class TaskCounts:
    site: str
    method: str
    succeeded: int
    failed: int


def _record(task: Any) -> tuple[str, str, bool, list[Any]]:
    if isinstance(task, dict):
        return (
            task["site"] or "?",
            task["method"],
            bool(task["success"]),
            task["timeline"]["events"],
        )
    return task.site or "?", task.method, bool(task.success), task.timeline.events


def summarize(tasks: Iterable[Any]) -> tuple[list[TaskCounts], list[HopStats]]:
    """Counts and hop statistics from `Result`s or journal records (`final_records`).

    Hop statistics cover successful tasks only: a failed task's hops stop short.
    """
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    samples: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for task in tasks:
        site, method, success, events = _record(task)
        counts[site, method][0 if success else 1] += 1
        if not success:
            continue
        for hop, seconds in hop_durations(events).items():
            samples[site, method, hop].append(seconds)
    order = {hop.name: i for i, hop in enumerate(HOPS + SPANS)}
    stats = []
    for (site, method, hop), values in sorted(
        samples.items(), key=lambda item: (item[0][0], item[0][1], order[item[0][2]])
    ):
        array = np.asarray(values)
        stats.append(
            HopStats(
                site=site,
                method=method,
                hop=hop,
                count=len(values),
                median_s=float(np.median(array)),
                p95_s=float(np.percentile(array, 95)),
                mean_s=float(array.mean()),
            )
        )
    task_counts = [
        TaskCounts(s, m, ok, bad) for (s, m), (ok, bad) in sorted(counts.items())
    ]
    return task_counts, stats
