"""Where a task's time goes: hops, clock offsets, statistics, tables and exports;
and what became of every task, finished or not."""

from __future__ import annotations

from colmena_fx.latency.clocks import ClockOffset
from colmena_fx.latency.clocks import ClockSync
from colmena_fx.latency.export import export
from colmena_fx.latency.hops import CHAIN
from colmena_fx.latency.hops import HOP_NAMES
from colmena_fx.latency.hops import Hop
from colmena_fx.latency.hops import hop_durations
from colmena_fx.latency.recorder import LatencyRecorder
from colmena_fx.latency.recorder import SiteActivity
from colmena_fx.latency.stats import HopStats
from colmena_fx.latency.stats import TaskCounts
from colmena_fx.latency.tasks import SiteTasks
from colmena_fx.latency.tasks import TaskFacts
from colmena_fx.latency.tasks import TaskRow
from colmena_fx.latency.tasks import TaskState
from colmena_fx.latency.tasks import read_task_facts

__all__ = [
    "CHAIN",
    "HOP_NAMES",
    "ClockOffset",
    "ClockSync",
    "Hop",
    "HopStats",
    "LatencyRecorder",
    "SiteActivity",
    "SiteTasks",
    "TaskCounts",
    "TaskFacts",
    "TaskRow",
    "TaskState",
    "export",
    "hop_durations",
    "read_task_facts",
]
