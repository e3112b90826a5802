"""Where a task's time goes: hop definitions, statistics and tables."""

from __future__ import annotations

from colmena_fx.latency.hops import HOPS
from colmena_fx.latency.hops import Hop
from colmena_fx.latency.hops import hop_durations
from colmena_fx.latency.stats import HopStats
from colmena_fx.latency.stats import summarize

__all__ = ["HOPS", "Hop", "HopStats", "hop_durations", "summarize"]
