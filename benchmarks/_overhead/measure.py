"""Measuring both paths in alternating rounds, both alive from start to end.

Measuring all of path A and then all of path B lets the ratio follow the
machine's load drift between the two phases: on a shared 2-core machine three
such runs gave throughput ratios of 1.26, 0.98 and 0.99. So both paths are
started and warmed up before the first round, and every round measures both:

    burst A, burst B, round trips A, round trips B      (`--order ab`)

Each compared pair (the two bursts, the two round-trip series) runs seconds
apart, and each ratio is taken within its round (`figures.Ratios`): load that
hits a round hits both paths alike. `--order` is the order within every round
(`ba`: B first), kept to check that going first does not bias the ratios.
Unless `--no-task-store`, B's burst is a pair, with the task store and without
it, the one that goes first alternating by round (`taskstore`).

The idle path is alive while the other one is measured: its interchange polls
every 10 ms, and its engine's result thread wakes as often inside this process.
`idle` measures what that costs the measured path (see the README).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import psutil

from benchmarks._overhead.cpu import CpuMonitor
from benchmarks._overhead.figures import Figures
from benchmarks._overhead.figures import Ratios
from benchmarks._overhead.paths import TaskPath
from benchmarks._overhead.storecalls import time_store_calls
from benchmarks._overhead.taskstore import StoreRounds

#: Pause between measurements, so that work left behind by one (journal lines,
#: heartbeats) does not land in the next.
SETTLE_S = 0.25
#: Most round trips of the warm-up.
WARMUP_ROUND_TRIPS = 20


def progress(message: str) -> None:
    """Progress goes to stderr: stdout is for the table and the JSON line."""
    print(f"[overhead] {message}", file=sys.stderr, flush=True)


@dataclass
class Settings:
    tasks: int
    rtt_samples: int
    rounds: int
    warmup: int
    site: Path
    #: "ab" or "ba": which path goes first within each round.
    order: str
    profile: bool
    profile_top: int
    idle_check: bool = False
    #: Whether path B's bursts also run without the task store (`taskstore`).
    task_store: bool = True


def _children() -> set[int]:
    return {child.pid for child in psutil.Process().children()}


def start(path: TaskPath, figures: Figures) -> set[int]:
    """Start `path`; returns the child processes of this one that it started."""
    progress(f"{path.label}: starting")
    before = _children()
    started = time.perf_counter()
    path.start()
    figures.start_s = time.perf_counter() - started
    return _children() - before


def warm_up(path: TaskPath, settings: Settings) -> float:
    """Wait for the workers, then run a burst and a few round trips unmeasured.

    Returns the seconds it took.
    """
    started = time.perf_counter()
    path.round_trips(1)
    progress(
        f"{path.label}: first task back after {time.perf_counter() - started:.1f} s"
    )
    path.burst(settings.warmup)
    path.round_trips(min(WARMUP_ROUND_TRIPS, settings.rtt_samples))
    time.sleep(SETTLE_S)
    return time.perf_counter() - started


@contextmanager
def started(
    paths: list[TaskPath], figures: list[Figures], settings: Settings
) -> Iterator[list[CpuMonitor]]:
    """All `paths` started, then all warmed up, with a CPU monitor each.

    Each path is warmed up once all are alive, so that its warm-up runs beside
    the others as its measurements will. Stops every started path on the way out.
    """
    with ExitStack() as stack:
        children = []
        for path, path_figures in zip(paths, figures, strict=True):
            stack.callback(_stop, path)
            children.append(start(path, path_figures))
        for path, path_figures in zip(paths, figures, strict=True):
            path_figures.warmup_s = warm_up(path, settings)
        monitors = [
            CpuMonitor(path.run_dir, path_children)
            for path, path_children in zip(paths, children, strict=True)
        ]
        for monitor in monitors:
            monitor.discover()
        yield monitors


def _stop(path: TaskPath) -> None:
    progress(f"{path.label}: stopping")
    path.stop()


def timed_burst(path: TaskPath, monitor: CpuMonitor, tasks: int) -> float:
    """One measured burst's throughput, its CPU tallied; then a pause to settle."""
    with monitor.measuring(tasks):
        elapsed = path.burst(tasks)
    time.sleep(SETTLE_S)
    return tasks / elapsed


def burst(path: TaskPath, figures: Figures, monitor: CpuMonitor, tasks: int) -> float:
    """One measured burst, kept in `figures`; returns its throughput."""
    throughput = timed_burst(path, monitor, tasks)
    figures.throughput.append(throughput)
    return throughput


def round_trips(path: TaskPath, figures: Figures, samples: int) -> None:
    """One measured round-trip series; then a pause to settle."""
    figures.add_round_trips(path.round_trips(samples))
    time.sleep(SETTLE_S)


def measure(
    raw: TaskPath, fed: TaskPath, settings: Settings, store: StoreRounds | None = None
) -> tuple[Figures, Figures]:
    """Start both paths, warm both up, measure them in `rounds` alternating rounds.

    With `store` (over `fed`), path B's burst of each round is a pair, with the
    task store and without it (`taskstore`), and after the rounds the store's
    calls are timed directly on B's last burst (`storecalls`).
    Returns the figures of `raw` (A) and `fed` (B), whatever the order.
    """
    figures = {
        raw: Figures(label=raw.label, driver=raw.driver),
        fed: Figures(label=fed.label, driver=fed.driver),
    }
    order = [raw, fed] if settings.order == "ab" else [fed, raw]
    ordered = [figures[path] for path in order]
    with started(order, ordered, settings) as monitors:
        lanes = list(zip(order, ordered, monitors, strict=True))
        # B's bursts without the task store, their CPU tallied apart.
        twin = monitors[order.index(fed)].twin()
        for index in range(settings.rounds):
            for path, path_figures, monitor in lanes:
                with_store = partial(burst, path, path_figures, monitor, settings.tasks)
                if path is fed and store is not None:
                    without = partial(timed_burst, path, twin, settings.tasks)
                    store.round(index, settings.tasks, with_store, without)
                else:
                    with_store()
            for path, path_figures, _ in lanes:
                round_trips(path, path_figures, settings.rtt_samples)
            _round_progress(index, figures[raw], figures[fed], settings, store)
        for _, path_figures, monitor in lanes:
            path_figures.cpu = monitor.tally
        if store is not None:
            store.cpu_without = twin.tally
            progress("task store: timing its calls directly")
            store.calls = time_store_calls(store.path.last_results, settings.rounds)
    return figures[raw], figures[fed]


def _round_progress(
    index: int,
    raw: Figures,
    fed: Figures,
    settings: Settings,
    store: StoreRounds | None,
) -> None:
    last = Ratios.of(raw, fed)
    if store is not None:
        progress(
            f"round {index + 1}: B without the task store "
            f"{store.without[-1]:6.1f} tasks/s, with/without "
            f"{store.ratio.values[-1]:.3f}x ({store.first[-1]} first)"
        )
    progress(
        f"round {index + 1}/{settings.rounds}: "
        f"A {raw.throughput[-1]:6.1f} tasks/s, {raw.rtt_medians[-1]:.3f} ms "
        f"(p95 {raw.rtt_p95s[-1]:.3f}); "
        f"B {fed.throughput[-1]:6.1f} tasks/s, {fed.rtt_medians[-1]:.3f} ms "
        f"(p95 {fed.rtt_p95s[-1]:.3f}); "
        f"B/A {last.throughput.values[-1]:.3f}x, {last.rtt_median.values[-1]:.3f}x"
    )
