"""`--idle-check`: does the idle path steal CPU from the one being measured?

The comparison keeps both paths alive from the first round to the last, so while
one is measured the other idles beside it: each Parsl HTEX interchange polls its
sockets every 10 ms (about 1.5% of a core on the 2-core machine), the raw
engine's result thread wakes as often inside this process, where path B's client
threads run, and path B's endpoint process idles with an engine of its own. This
check measures each path in blocks of `--rounds` rounds, alone and beside the
other path, started and warmed up, idling:

    alone, beside, alone, beside, alone

The other path is started before each "beside" block and stopped after it.
Each "beside" block is compared with the mean of the two "alone" blocks around
it, so that the machine's drift during the check cancels to first order; how far
the "alone" blocks spread says how much of a difference is noise.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from benchmarks._overhead.cpu import CpuMonitor
from benchmarks._overhead.figures import Figures
from benchmarks._overhead.measure import Settings
from benchmarks._overhead.measure import burst
from benchmarks._overhead.measure import progress
from benchmarks._overhead.measure import round_trips
from benchmarks._overhead.measure import started
from benchmarks._overhead.paths import RawEngine
from benchmarks._overhead.paths import TaskPath
from benchmarks._overhead.paths import ThinkerPath

ALONE = "alone"
BESIDE = "beside"
#: "beside" blocks per path; each is surrounded by "alone" blocks.
CYCLES = 2

PathFactory = Callable[[Path, Callable[[], None]], TaskPath]


@dataclass
class Block:
    """Rounds of one path, measured either alone or beside the idle other one."""

    kind: str
    figures: Figures
    #: Cores the idle path kept busy meanwhile (CPU seconds per second), split
    #: into its own processes and its threads inside this client process.
    idle_cores: dict[str, float] | None = None

    def metrics(self) -> dict[str, float]:
        """Medians over the block's rounds."""
        return {
            "throughput_tps": self.figures.throughput_spread.median,
            "rtt_ms": self.figures.rtt_median_spread.median,
            "rtt_p95_ms": self.figures.rtt_p95_spread.median,
        }


class IdleCpu:
    """The CPU an idle path spends: its processes, and its threads in this one.

    Its processes are those its monitor found, this client excluded; its
    threads are those of this process that appeared while it started and
    warmed up and are still alive (the engine's result thread, the receiver).
    """

    def __init__(self, monitor: CpuMonitor, threads_before: set[int]) -> None:
        me = psutil.Process()
        self.processes = [
            proc for pid, (proc, _) in monitor.processes.items() if pid != me.pid
        ]
        self.threads = {thread.id for thread in me.threads()} - threads_before

    def _sample(self) -> tuple[float, float, float]:
        processes = 0.0
        for proc in self.processes:
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            processes += times.user + times.system
        threads = sum(
            thread.user_time + thread.system_time
            for thread in psutil.Process().threads()
            if thread.id in self.threads
        )
        return time.perf_counter(), processes, threads

    @contextmanager
    def measuring(self) -> Iterator[dict[str, float]]:
        """Yields a dict that gets, on leaving, the cores the idle path kept busy."""
        cores: dict[str, float] = {}
        wall, processes, threads = self._sample()
        yield cores
        wall_end, processes_end, threads_end = self._sample()
        seconds = wall_end - wall
        cores["processes"] = (processes_end - processes) / seconds
        cores["client_threads"] = (threads_end - threads) / seconds


def _threads() -> set[int]:
    return {thread.id for thread in psutil.Process().threads()}


def _block(path: TaskPath, kind: str, monitor: CpuMonitor, settings: Settings) -> Block:
    figures = Figures(label=path.label, driver=path.driver)
    for _ in range(settings.rounds):
        burst(path, figures, monitor, settings.tasks)
        round_trips(path, figures, settings.rtt_samples)
    return Block(kind, figures)


def _progress(path: TaskPath, block: Block) -> None:
    metrics = block.metrics()
    idle = ""
    if block.idle_cores is not None:
        cores = block.idle_cores
        idle = (
            f"; the idle path used {cores['processes'] * 100:.1f}% of a core in "
            f"its processes, {cores['client_threads'] * 100:.1f}% in this one"
        )
    progress(
        f"  {path.label} {block.kind:<6}: {metrics['throughput_tps']:6.1f} tasks/s, "
        f"{metrics['rtt_ms']:.3f} ms (p95 {metrics['rtt_p95_ms']:.3f}){idle}"
    )


def _blocks(
    measured: PathFactory,
    other: PathFactory,
    settings: Settings,
    noop: Callable[[], None],
) -> list[Block]:
    path = measured(settings.site, noop)
    figures = Figures(label=path.label, driver=path.driver)
    with started([path], [figures], settings) as (monitor,):
        blocks = [_block(path, ALONE, monitor, settings)]
        _progress(path, blocks[-1])
        for _ in range(CYCLES):
            idle = other(settings.site, noop)
            idle_figures = Figures(label=idle.label, driver=idle.driver)
            threads_before = _threads()
            with started([idle], [idle_figures], settings) as (idle_monitor,):
                with IdleCpu(idle_monitor, threads_before).measuring() as cores:
                    beside = _block(path, BESIDE, monitor, settings)
                beside.idle_cores = cores
                blocks.append(beside)
                _progress(path, beside)
            blocks.append(_block(path, ALONE, monitor, settings))
            _progress(path, blocks[-1])
    return blocks


def compare(blocks: list[Block]) -> dict[str, Any]:
    """Each "beside" block over the mean of its two "alone" neighbours.

    Also the spread of the "alone" blocks (max over min), the noise floor.
    """
    changes: dict[str, list[float]] = {}
    for index, block in enumerate(blocks):
        if block.kind != BESIDE:
            continue
        before, after = blocks[index - 1].metrics(), blocks[index + 1].metrics()
        for name, value in block.metrics().items():
            alone = (before[name] + after[name]) / 2
            changes.setdefault(name, []).append(value / alone)
    alone_blocks = [block.metrics() for block in blocks if block.kind == ALONE]
    drift = {
        name: max(m[name] for m in alone_blocks) / min(m[name] for m in alone_blocks)
        for name in alone_blocks[0]
    }
    idle_cores = [block.idle_cores for block in blocks if block.idle_cores]
    return {
        "blocks": [
            {"kind": block.kind, **{k: round(v, 3) for k, v in block.metrics().items()}}
            for block in blocks
        ],
        "idle_path_cores": {
            part: round(statistics.fmean(cores[part] for cores in idle_cores), 4)
            for part in ("processes", "client_threads")
        },
        "beside_over_alone": {
            name: {
                "mean": round(statistics.fmean(values), 4),
                "blocks": [round(value, 4) for value in values],
            }
            for name, values in changes.items()
        },
        "alone_max_over_min": {name: round(value, 4) for name, value in drift.items()},
    }


def idle_check(settings: Settings, noop: Callable[[], None]) -> dict[str, Any]:
    """Both directions: A measured beside an idle B, then B beside an idle A."""
    report: dict[str, Any] = {"benchmark": "overhead-idle-check"}
    directions: tuple[tuple[str, PathFactory, PathFactory], ...] = (
        ("raw", RawEngine, ThinkerPath),
        ("colmena_fx", ThinkerPath, RawEngine),
    )
    for key, measured, other in directions:
        progress(f"idle check: {key} measured, the other path idle beside it")
        report[key] = compare(_blocks(measured, other, settings, noop))
    report["settings"] = {
        "tasks": settings.tasks,
        "rtt_samples": settings.rtt_samples,
        "rounds_per_block": settings.rounds,
        "cycles": CYCLES,
    }
    return report


def print_idle_check(report: dict[str, Any]) -> None:
    print()
    print(
        "Idle check: each path alone and beside the other path idling; "
        "'beside / alone' is each beside block over the mean of its alone neighbours"
    )
    for key in ("raw", "colmena_fx"):
        result = report[key]
        print(f"  {key}:")
        for block in result["blocks"]:
            print(
                f"    {block['kind']:<6} {block['throughput_tps']:8.1f} tasks/s "
                f"{block['rtt_ms']:7.3f} ms  p95 {block['rtt_p95_ms']:7.3f} ms"
            )
        cores = result["idle_path_cores"]
        print(
            f"    the idle path used {cores['processes'] * 100:.1f}% of a core in its "
            f"processes and {cores['client_threads'] * 100:.1f}% in this one"
        )
        for name, change in result["beside_over_alone"].items():
            listed = ", ".join(f"{value:.3f}" for value in change["blocks"])
            noise = result["alone_max_over_min"][name]
            print(
                f"    {name:<15} beside / alone {change['mean']:.3f} ({listed}); "
                f"alone blocks spread {noise:.3f}x"
            )
