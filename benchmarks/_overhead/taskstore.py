"""What the task store costs path B's bursts: each round, with it and without it.

The task store (`colmena_fx.taskstore`) writes three records per task here: the
request in `submit`, the result in `_deliver`, the `taken` mark in `get_result`
(`accepted` only for Globus Compute's service). Its baseline is the previous
design, the same federation writing none of them: `NullStore`, a stand-in with
the same four methods doing nothing, is swapped in for the federation's store
(that of the federation's `RunLog`) for one of path B's two bursts of each
round. Which goes first alternates by round, so that going first cannot favour
one; the figures are also split by which went first and balanced over the two
orders, because going first can matter more than the store: in one default
run the pair's first burst was the faster in 7 of 9 rounds, in the next in 5
(the second may meet what path B's first left behind: journal lines, garbage).
The with-store burst is path B's burst of the main table (the library as it
ships); the other has its CPU tallied apart, and the bytes the with-store bursts
added to the run directory's two record files are counted.

The stand-in lives here, never in the library: a federation without its store
cannot be resumed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from benchmarks._overhead.cpu import CpuTally
from benchmarks._overhead.paths import ThinkerPath
from benchmarks._overhead.storecalls import CallTimes
from benchmarks._overhead.storecalls import over_no_thread
from benchmarks._stats import Spread
from benchmarks._stats import ratios
from colmena_fx.federation import Federation
from colmena_fx.models import Result
from colmena_fx.records import RecordFile
from colmena_fx.taskstore import REQUESTS_NAME
from colmena_fx.taskstore import RESULTS_NAME

FILES = (REQUESTS_NAME, RESULTS_NAME)


class NullStore:
    """`TaskStore`'s writes doing nothing: the federation as it was without it."""

    error: Exception | None = None
    files: list[RecordFile] = []

    def request(
        self, result: Result, candidates: list[str], timeout_s: float | None
    ) -> None:
        pass

    def accepted(self, result: Result) -> None:
        pass

    def result(self, result: Result) -> None:
        pass

    def taken(self, result: Result) -> None:
        pass

    def close(self) -> None:
        pass


def _store_holder(federation: Federation) -> Any:
    """The federation's run directory (`RunLog`, private, open while it runs),
    through whose `store` it writes the records."""
    run = getattr(federation, "_run", None)
    if run is None or not hasattr(run, "store"):
        raise RuntimeError("found no task store in the federation to turn off")
    return run


@contextmanager
def store_off(federation: Federation) -> Iterator[None]:
    """The federation's task store replaced by a `NullStore` inside the block.

    Swapped only between bursts, when no task is in flight: the federation looks
    the attribute up at every write.
    """
    holder = _store_holder(federation)
    real = holder.store
    holder.store = NullStore()
    try:
        yield
    finally:
        holder.store = real


@dataclass
class StoreRounds:
    """Path B's bursts with the task store and without it, round by round."""

    path: ThinkerPath
    with_store: list[float] = field(default_factory=list)  # tasks/s per round
    without: list[float] = field(default_factory=list)
    #: Which burst went first in each round: "with" or "without".
    first: list[str] = field(default_factory=list)
    #: CPU during the bursts without the store (with: path B's own tally).
    cpu_without: CpuTally = field(default_factory=CpuTally)
    #: Bytes the with-store bursts added to each record file, and their tasks.
    written: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FILES, 0))
    written_tasks: int = 0
    #: The direct timing of the store's calls, by variant (`storecalls`).
    calls: list[CallTimes] = field(default_factory=list)

    def round(
        self,
        index: int,
        tasks: int,
        with_store: Callable[[], float],
        without: Callable[[], float],
    ) -> None:
        """Both bursts, each returning its throughput; "with" first in even rounds."""
        with_first = index % 2 == 0
        self.first.append("with" if with_first else "without")
        for enabled in (True, False) if with_first else (False, True):
            if enabled:
                before = self._sizes()
                self.with_store.append(with_store())
                after = self._sizes()
                for name in FILES:
                    self.written[name] += after[name] - before[name]
                self.written_tasks += tasks
            else:
                with store_off(self.path.federation):
                    self.without.append(without())

    def _sizes(self) -> dict[str, int]:
        run_dir = self.path.federation.run_dir
        assert run_dir is not None
        return {name: (run_dir / name).stat().st_size for name in FILES}

    @property
    def ratio(self) -> Spread:
        """Throughput with the store over without it, per round."""
        return Spread.of(ratios(self.with_store, self.without))

    @property
    def us_per_task(self) -> Spread:
        """Wall time per task in a burst, with minus without, per round (µs)."""
        return Spread.of(
            [
                (1 / with_tps - 1 / without_tps) * 1e6
                for with_tps, without_tps in zip(
                    self.with_store, self.without, strict=True
                )
            ]
        )

    def by_first(self, spread: Spread) -> dict[str, Spread]:
        """`spread`'s rounds split by which burst went first."""
        split: dict[str, list[float]] = {}
        for first, value in zip(self.first, spread.values, strict=True):
            split.setdefault(first, []).append(value)
        return {first: Spread.of(values) for first, values in split.items()}

    def balanced(self) -> tuple[float, float]:
        """Ratio and µs per task with the order's effect cancelled.

        The second burst of a pair follows path B's own burst, whose leftovers
        (journal lines, garbage) it meets; so each figure is taken for each order
        apart and the two halves averaged (the ratios geometrically). With one
        round only, that round's figures.
        """
        ratio = self.by_first(self.ratio)
        us = self.by_first(self.us_per_task)
        return (
            math.prod(half.median for half in ratio.values()) ** (1 / len(ratio)),
            statistics.fmean(half.median for half in us.values()),
        )

    def bytes_per_task(self) -> dict[str, float]:
        tasks = self.written_tasks or 1
        return {name: round(self.written[name] / tasks, 1) for name in FILES}

    def summary(self, cpu_with: CpuTally) -> dict[str, Any]:
        """The JSON line's `task_store`; `cpu_with` is path B's own tally."""
        with_roles = cpu_with.per_task_us(cpu_with.roles)
        without_roles = self.cpu_without.per_task_us(self.cpu_without.roles)
        return {
            "method": "path B's burst with the task store and with a no-op "
            "stand-in, same round, first alternating; store calls timed directly",
            "throughput_with_tps": Spread.of(self.with_store).summary(1),
            "throughput_without_tps": Spread.of(self.without).summary(1),
            "throughput_ratio": self.ratio.summary(4),
            "burst_us_per_task": self.us_per_task.summary(1),
            "first": self.first,
            "throughput_ratio_by_first": {
                first: half.summary(4)
                for first, half in self.by_first(self.ratio).items()
            },
            "burst_us_per_task_by_first": {
                first: half.summary(1)
                for first, half in self.by_first(self.us_per_task).items()
            },
            "throughput_ratio_balanced": round(self.balanced()[0], 4),
            "burst_us_per_task_balanced": round(self.balanced()[1], 1),
            "cpu_us_per_task": {
                "client_with": with_roles.get("client", 0.0),
                "client_without": without_roles.get("client", 0.0),
                "total_with": round(sum(with_roles.values()), 1),
                "total_without": round(sum(without_roles.values()), 1),
            },
            "run_dir_bytes_per_task": self.bytes_per_task(),
            "calls": {times.variant: times.summary() for times in self.calls},
            "calls_total_median_over_no_thread": {
                variant: spread.summary(4)
                for variant, spread in over_no_thread(self.calls).items()
            },
        }
