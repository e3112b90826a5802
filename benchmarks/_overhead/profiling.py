"""`--profile`: where path B's client threads spend their CPU, function by function.

A phase after the measured rounds, both paths stopped: a fresh federation whose
client threads (receiver, journal, ...) run under `cProfile` for their whole
life, one warm-up, then one burst whose thinker agents are profiled too. Profiles
are timed in thread CPU time, so blocking waits (the receiver's poll, queue gets)
and waiting for the GIL do not count. Profiling slows everything down, so it
never runs during the measured rounds; instead each function's share of a
thread's profile is scaled to the thread's CPU per task measured without the
profiler.
"""

from __future__ import annotations

import cProfile
import pstats
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks._overhead.cpu import CpuTally
from benchmarks._overhead.measure import Settings
from benchmarks._overhead.measure import progress
from benchmarks._overhead.measure import warm_up
from benchmarks._overhead.paths import ThinkerPath
from benchmarks._overhead.threads import hooked_threads

#: What a thread's profile covers: the measured burst, or every task of the phase.
BURST = "the burst"
LIFE = "its life"


class ThreadProfiles:
    """Runs every thread started inside `profiling()` under its own cProfile.

    The profiles are kept per thread name once the thread ends.
    """

    def __init__(self) -> None:
        self.profiles: dict[str, list[cProfile.Profile]] = {}
        self._lock = threading.Lock()

    def _profile(self, thread: threading.Thread, run: Callable[[], None]) -> None:
        profile = cProfile.Profile(time.thread_time_ns, 1e-9)
        profile.enable()
        try:
            run()
        finally:
            profile.disable()
            with self._lock:
                self.profiles.setdefault(thread.name, []).append(profile)

    @contextmanager
    def profiling(self) -> Iterator[None]:
        with hooked_threads(self._profile):
            yield

    def stats(self, name: str) -> pstats.Stats | None:
        profiles = self.profiles.get(name)
        if not profiles:
            return None
        stats = pstats.Stats(profiles[0])
        for profile in profiles[1:]:
            stats.add(profile)
        return stats


def _function_label(key: tuple[str, int, str]) -> str:
    filename, line, name = key
    if filename == "~":
        return name  # a builtin: "<method 'send' of ...>"
    parts = Path(filename).parts
    for anchor in ("colmena_fx", "benchmarks", "site-packages", "lib"):
        if anchor in parts:
            index = len(parts) - 1 - parts[::-1].index(anchor)
            start = index + 1 if anchor in ("site-packages", "lib") else index
            return f"{'/'.join(parts[start:])}:{line}({name})"
    return f"{Path(filename).name}:{line}({name})"


def profile_table(
    stats: pstats.Stats, tasks: int, top: int, measured_us: float | None
) -> dict[str, Any]:
    """The thread's CPU per task and its top functions, self and cumulative time.

    The profiler's own cost inflates every call, so each function's share of the
    thread's profiled time is also scaled to the thread's CPU per task measured
    without the profiler (`measured_us`): the `est_us_per_task` column.
    """
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in entries.values())  # tottime
    scale = measured_us / (total / tasks * 1e6) if measured_us and total else None
    by_self = sorted(entries.items(), key=lambda kv: -kv[1][2])[:top]
    ours = [
        (key, row)
        for key, row in entries.items()
        if "colmena_fx" in key[0] or "benchmarks" in key[0]
    ]
    by_cumulative = sorted(ours, key=lambda kv: -kv[1][3])[:top]

    def rows(selected: list[Any], column: int) -> list[dict[str, Any]]:
        table = []
        for key, row in selected:
            us = row[column] / tasks * 1e6
            table.append(
                {
                    "function": _function_label(key),
                    "profiled_us_per_task": round(us, 2),
                    "est_us_per_task": round(us * scale, 2) if scale else None,
                    "calls_per_task": round(row[1] / tasks, 2),
                }
            )
        return table

    return {
        "tasks": tasks,
        "profiled_us_per_task": round(total / tasks * 1e6, 1),
        "measured_us_per_task": measured_us,
        "top_self": rows(by_self, 2),
        "top_cumulative_colmena_fx": rows(by_cumulative, 3),
    }


def profile_federation(
    settings: Settings, noop: Callable[[], None], measured: CpuTally
) -> dict[str, Any]:
    """Path B once more with every client thread profiled: one warm-up, one burst.

    `measured` is path B's unprofiled CPU tally, whose per-thread figures scale
    the profiles to real microseconds. Returns a table per thread name, with its
    `scope` (BURST or LIFE).
    """
    life, burst = ThreadProfiles(), ThreadProfiles()
    path = ThinkerPath(settings.site, noop)
    progress("profile: starting a fresh federation with profiled client threads")
    with life.profiling():
        path.start()
    try:
        warm_up(path, settings)
        alive = {thread.name for thread in threading.enumerate()}
        with burst.profiling():
            path.burst(settings.tasks)  # its agents end, and their profiles land
    finally:
        path.stop()  # ends the receiver and journal threads: their profiles land
    measured_us = measured.per_task_us(measured.threads)
    report: dict[str, Any] = {}
    for profiles, scope in ((burst, BURST), (life, LIFE)):
        for name in sorted(profiles.profiles):
            stats = profiles.stats(name)
            if stats is None or (scope == LIFE and name not in alive):
                continue  # a helper thread of the start-up
            tasks = settings.tasks if scope == BURST else path.completed
            table = profile_table(
                stats, tasks, settings.profile_top, measured_us.get(name)
            )
            report[name] = {"scope": scope, **table}
    return report
