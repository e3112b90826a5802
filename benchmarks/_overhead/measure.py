"""Measuring one path: warm it up, then time its bursts and round trips.

The two paths run one after the other, never at the same time, each on a freshly
started engine. Each is warmed up first (the first task waits for the workers to
connect; a short burst and a few round trips warm the code paths), then each
measurement is repeated and the median reported, so that the ratios are stable
from run to run.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from benchmarks._overhead.cpu import CpuMonitor
from benchmarks._overhead.cpu import CpuTally
from benchmarks._overhead.paths import RoundTrip
from benchmarks._overhead.paths import TaskPath

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
    repeats: int
    warmup: int
    site: Path
    order: str
    profile: bool
    profile_top: int


@dataclass
class Figures:
    """What one path measured."""

    label: str
    driver: str
    throughput: list[float] = field(default_factory=list)  # tasks/s per repeat
    rtt_ms: list[list[float]] = field(default_factory=list)  # samples per repeat
    #: Segment name -> every sample, seconds.
    segments: dict[str, list[float]] = field(default_factory=dict)
    #: Seconds from starting the path to the end of its warm-up.
    ready_s: float = 0.0
    cpu: CpuTally = field(default_factory=CpuTally)

    @property
    def throughput_median(self) -> float:
        return statistics.median(self.throughput)

    @property
    def rtt_medians(self) -> list[float]:
        return [statistics.median(samples) for samples in self.rtt_ms]

    @property
    def rtt_median(self) -> float:
        return statistics.median(self.rtt_medians)

    def add_round_trips(self, trips: list[RoundTrip]) -> None:
        self.rtt_ms.append([trip.seconds * 1e3 for trip in trips])
        for trip in trips:
            for name, seconds in trip.segments.items():
                self.segments.setdefault(name, []).append(seconds)

    def segments_us(self) -> dict[str, float]:
        """The median of each segment of the round trips, in microseconds."""
        return {
            name: round(statistics.median(values) * 1e6, 1)
            for name, values in self.segments.items()
        }

    def summary(self) -> dict[str, Any]:
        every = sorted(sample for samples in self.rtt_ms for sample in samples)
        return {
            "label": self.label,
            "driver": self.driver,
            "throughput_tps": round(self.throughput_median, 1),
            "throughput_tps_runs": [round(value, 1) for value in self.throughput],
            "rtt_ms": round(self.rtt_median, 3),
            "rtt_ms_runs": [round(value, 3) for value in self.rtt_medians],
            "rtt_p10_ms": round(every[len(every) // 10], 3),
            "rtt_p90_ms": round(every[len(every) * 9 // 10], 3),
            "rtt_segments_median_us": self.segments_us(),
            "ready_s": round(self.ready_s, 2),
            "cpu": self.cpu.summary(),
        }


def warm_up(path: TaskPath, settings: Settings) -> None:
    """Wait for the workers, then run a burst and a few round trips unmeasured."""
    started = time.perf_counter()
    path.round_trips(1)
    progress(f"  first task back after {time.perf_counter() - started:.1f} s")
    path.burst(settings.warmup)
    path.round_trips(min(WARMUP_ROUND_TRIPS, settings.rtt_samples))
    time.sleep(SETTLE_S)


def measure(path: TaskPath, settings: Settings) -> Figures:
    """Start `path`, warm it up, measure it `repeats` times, stop it."""
    figures = Figures(label=path.label, driver=path.driver)
    progress(f"{path.label}: starting")
    started = time.perf_counter()
    path.start()
    try:
        warm_up(path, settings)
        figures.ready_s = time.perf_counter() - started
        monitor = CpuMonitor(path.run_dir)
        monitor.discover()
        for repeat in range(settings.repeats):
            with monitor.measuring(settings.tasks):
                elapsed = path.burst(settings.tasks)
            figures.throughput.append(settings.tasks / elapsed)
            time.sleep(SETTLE_S)
            figures.add_round_trips(path.round_trips(settings.rtt_samples))
            time.sleep(SETTLE_S)
            progress(
                f"  repeat {repeat + 1}/{settings.repeats}: "
                f"{figures.throughput[-1]:7.1f} tasks/s, "
                f"round trip {statistics.median(figures.rtt_ms[-1]):.3f} ms"
            )
        figures.cpu = monitor.tally
    finally:
        progress(f"{path.label}: stopping")
        path.stop()
    return figures
