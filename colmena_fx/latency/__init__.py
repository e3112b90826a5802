"""Where a task's time goes: hops, clock offsets, statistics, tables and exports."""

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

__all__ = [
    "CHAIN",
    "HOP_NAMES",
    "ClockOffset",
    "ClockSync",
    "Hop",
    "HopStats",
    "LatencyRecorder",
    "SiteActivity",
    "TaskCounts",
    "export",
    "hop_durations",
]
