"""What the rounds measured: each path's figures per round, and B/A per round.

Every figure is kept per round (one burst's throughput, one round-trip series'
median and p95), because the ratios are taken within a round: `Ratios` divides
path B's figure of round i by path A's of the same round, then summarises the
ratios over rounds as median [min-max]. A ratio of two medians over all rounds
would let a slow round of one path meet a fast round of the other.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from benchmarks._overhead.cpu import CpuTally
from benchmarks._overhead.paths import RoundTrip
from benchmarks._stats import Spread
from benchmarks._stats import p95
from benchmarks._stats import percentile
from benchmarks._stats import ratios


@dataclass
class Figures:
    """What one path measured, round by round."""

    label: str
    driver: str
    throughput: list[float] = field(default_factory=list)  # tasks/s per round
    rtt_ms: list[list[float]] = field(default_factory=list)  # samples per round
    #: Segment name -> every sample of every round, seconds.
    segments: dict[str, list[float]] = field(default_factory=dict)
    #: Seconds `start()` took, and the warm-up after it (the first task waits
    #: for the workers to connect).
    start_s: float = 0.0
    warmup_s: float = 0.0
    cpu: CpuTally = field(default_factory=CpuTally)

    @property
    def rtt_medians(self) -> list[float]:
        return [statistics.median(samples) for samples in self.rtt_ms]

    @property
    def rtt_p95s(self) -> list[float]:
        return [p95(samples) for samples in self.rtt_ms]

    @property
    def throughput_spread(self) -> Spread:
        return Spread.of(self.throughput)

    @property
    def rtt_median_spread(self) -> Spread:
        return Spread.of(self.rtt_medians)

    @property
    def rtt_p95_spread(self) -> Spread:
        return Spread.of(self.rtt_p95s)

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
        """For the JSON line; the keys of the sequential benchmark keep their
        meaning (`throughput_tps`, `rtt_ms`: median over rounds), the spreads and
        the p95 are new."""
        every = [sample for samples in self.rtt_ms for sample in samples]
        return {
            "label": self.label,
            "driver": self.driver,
            "throughput_tps": round(self.throughput_spread.median, 1),
            "throughput_tps_runs": [round(value, 1) for value in self.throughput],
            "throughput_tps_spread": self.throughput_spread.summary(1),
            "rtt_ms": round(self.rtt_median_spread.median, 3),
            "rtt_ms_runs": [round(value, 3) for value in self.rtt_medians],
            "rtt_ms_spread": self.rtt_median_spread.summary(3),
            "rtt_p95_ms": round(self.rtt_p95_spread.median, 3),
            "rtt_p95_ms_spread": self.rtt_p95_spread.summary(3),
            "rtt_p10_ms": round(percentile(every, 10), 3),
            "rtt_p90_ms": round(percentile(every, 90), 3),
            "rtt_segments_median_us": self.segments_us(),
            "start_s": round(self.start_s, 2),
            "ready_s": round(self.start_s + self.warmup_s, 2),
            "cpu": self.cpu.summary(),
        }


@dataclass(frozen=True)
class Ratios:
    """B/A within each round, for throughput and the round trip's median and p95."""

    throughput: Spread
    rtt_median: Spread
    rtt_p95: Spread

    @classmethod
    def of(cls, raw: Figures, fed: Figures) -> Ratios:
        return cls(
            throughput=Spread.of(ratios(fed.throughput, raw.throughput)),
            rtt_median=Spread.of(ratios(fed.rtt_medians, raw.rtt_medians)),
            rtt_p95=Spread.of(ratios(fed.rtt_p95s, raw.rtt_p95s)),
        )

    def summary(self) -> dict[str, Any]:
        return {
            "throughput": self.throughput.summary(4),
            "rtt_median": self.rtt_median.summary(4),
            "rtt_p95": self.rtt_p95.summary(4),
        }
