"""The latency recorder's cost per task, against the previous clock design.

The federation calls `LatencyRecorder.completed(result)` for every finished task,
on the transport's thread. Of what it does there only the clocks changed:
`ClockSync.observe` used to narrow an `OffsetEstimator` per remote clock at once
(bounds intersected, least delay, the last 8 round trips kept); it now appends the
round trip's four stamps to a list, and the drift model (segments, polygon
clipping, `colmena_fx.latency.drift`) is built when offsets or corrected stamps are
asked for. Two designs, on the same synthetic results:

A. previous: `PreviousClockSync` (`previousclocks`), the observe path of commit
   9818ab8's `colmena_fx/latency/clocks.py` copied verbatim (`round_trips`, `RoundTrip`,
   `OffsetEstimator`), swapped in for the recorder's `clocks` (the recorder calls
   nothing else of it on this path);
B. current: the recorder as the federation builds it.

(e) per task: in `--rounds` rounds, a fresh recorder of each design is fed the same
    `TASKS` results, every `completed` call clocked with `perf_counter_ns`; which
    design goes first alternates by round (A B, B A, ...). Per design the median
    and p95 over a round's tasks; the difference B - A of the medians within each
    round, reported as median [min-max] over rounds; `observe` alone the same way.
(f) the deferred cost, B only: for 1k, 10k and 100k tasks a recorder fed with them,
    then `offsets()` on fresh clocks (the model built over every round trip),
    `corrected()` after it (the model kept) and `corrected()` on fresh clocks,
    in microseconds per task: flat across the sizes when linear in tasks. A had no
    per-stamp correction and its offsets were running totals, so it has nothing
    comparable.

The results are synthetic and as the federation holds them at `completed`: client
stamps (created, serialized, sent, received, deserialized) on this host, the
worker's six on a remote host whose clock runs `OFFSET_S` ahead and drifts
`DRIFT_PPM`, a task sent every `SPACING_NS` with random link delays, fed in the
order they came back. Run alone: `python -m benchmarks._overhead.recordercalls
[--quick]`.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import cast

from benchmarks._overhead.previousclocks import PreviousClockSync
from benchmarks._stats import Spread
from benchmarks._stats import p95
from colmena_fx.latency.clocks import ClockSync
from colmena_fx.latency.hops import CHAIN
from colmena_fx.latency.recorder import LatencyRecorder
from colmena_fx.models import HOST
from colmena_fx.models import Event
from colmena_fx.models import Result
from colmena_fx.models import Stamp
from colmena_fx.models import Timeline

#: Results each design is fed per round.
TASKS = 10_000
QUICK_TASKS = 2_000
#: Tasks of the deferred cost's recorders.
SIZES = (1_000, 10_000, 100_000)
SITE = "hpc"
REMOTE_HOST = "nid00042"
#: The remote clock: this far ahead of the client's at the first send, drifting.
OFFSET_S = 3.2
DRIFT_PPM = 25.0
#: One task sent every millisecond: 100 s of run for 100k tasks, 2.5 ms of drift.
SPACING_NS = 1_000_000
#: The issue's target for B - A.
TARGET_US = 5.0


# -- the synthetic results -----------------------------------------------------------


def make_results(count: int, seed: int = 1) -> list[Result]:
    """`count` finished tasks as `completed` gets them, in the order they came back.

    Client stamps on this host; the worker's on `REMOTE_HOST`, whose clock reads
    true time + `OFFSET_S` + `DRIFT_PPM` x (time since the first send).
    """
    rng = random.Random(seed)
    start = time.time_ns()
    drift = DRIFT_PPM * 1e-6
    offset_ns = int(OFFSET_S * 1e9)

    def remote(true_ns: int) -> int:
        return true_ns + offset_ns + int(drift * (true_ns - start))

    worker = CHAIN[
        CHAIN.index(Stamp.EXECUTION_STARTED) : CHAIN.index(Stamp.EXECUTION_ENDED) + 1
    ]
    results = []
    for index in range(count):
        sent = start + index * SPACING_NS
        t = sent + 300_000 + int(rng.expovariate(1 / 200_000))  # link out
        events = [
            Event(Stamp.CREATED.value, sent - 60_000, HOST),
            Event(Stamp.SERIALIZED.value, sent - 40_000, HOST),
            Event(Stamp.SENT.value, sent, HOST),
        ]
        for stamp in worker:
            events.append(Event(stamp.value, remote(t), REMOTE_HOST))
            t += 10_000 + int(rng.expovariate(1 / 20_000))
        received = t + 300_000 + int(rng.expovariate(1 / 200_000))  # link back
        events.append(Event(Stamp.RECEIVED.value, received, HOST))
        events.append(Event(Stamp.DESERIALIZED.value, received + 25_000, HOST))
        results.append(
            Result(
                task_id=f"bench-{seed}-{index:07d}",
                method="noop",
                site=SITE,
                success=True,
                timeline=Timeline(events=events),
            )
        )
    results.sort(key=lambda result: result.timeline.events[-2].time_ns)
    return results


# -- (e) per task --------------------------------------------------------------------

DESIGNS = ("A", "B")


def recorder_of(design: str) -> LatencyRecorder:
    recorder = LatencyRecorder()
    if design == "A":  # duck-typed: `completed` calls only `observe`
        recorder.clocks = cast(ClockSync, PreviousClockSync())
    return recorder


def _time_completed(recorder: LatencyRecorder, results: list[Result]) -> list[float]:
    clock = time.perf_counter_ns
    spent = []
    for result in results:
        t0 = clock()
        recorder.completed(result)
        spent.append(clock() - t0)
    return [ns / 1e3 for ns in spent]


def _time_observe(design: str, results: list[Result]) -> list[float]:
    sync: Any = PreviousClockSync() if design == "A" else ClockSync()
    clock = time.perf_counter_ns
    spent = []
    for result in results:
        events = result.timeline.events
        t0 = clock()
        sync.observe(SITE, events)
        spent.append(clock() - t0)
    return [ns / 1e3 for ns in spent]


@dataclass
class PerTask:
    """Microseconds per call of each design, round by round."""

    #: Design -> call ("completed", "observe") -> per round, each task's us.
    us: dict[str, dict[str, list[list[float]]]] = field(
        default_factory=lambda: {d: {"completed": [], "observe": []} for d in DESIGNS}
    )
    first: list[str] = field(default_factory=list)
    tasks: int = 0

    def medians(self, design: str, call: str) -> Spread:
        return Spread.of([statistics.median(r) for r in self.us[design][call]])

    def p95s(self, design: str, call: str) -> Spread:
        return Spread.of([p95(r) for r in self.us[design][call]])

    def difference(self, call: str, stat: str = "median") -> Spread:
        """B - A within each round, of the median (or p95) per task."""
        of = self.medians if stat == "median" else self.p95s
        a, b = of("A", call).values, of("B", call).values
        return Spread.of([after - before for before, after in zip(a, b, strict=True)])


def time_per_task(results: list[Result], rounds: int) -> PerTask:
    per_task = PerTask(tasks=len(results))
    _time_completed(recorder_of("B"), results[: min(500, len(results))])  # warm up
    _time_completed(recorder_of("A"), results[: min(500, len(results))])
    for index in range(rounds):
        order = DESIGNS if index % 2 == 0 else DESIGNS[::-1]
        per_task.first.append(order[0])
        for design in order:
            us = per_task.us[design]
            us["completed"].append(_time_completed(recorder_of(design), results))
            us["observe"].append(_time_observe(design, results))
    return per_task


# -- (f) the deferred cost, B only ---------------------------------------------------

DEFERRED = ("offsets() fresh", "corrected() after it", "corrected() fresh")


@dataclass
class Deferred:
    """Microseconds per task of each deferred call, by size, per repetition."""

    us: dict[int, dict[str, list[float]]] = field(default_factory=dict)
    #: The estimate of the largest size, against the synthetic truth.
    drift_ppm: float = 0.0
    offset_end_s: float = 0.0
    true_offset_end_s: float = 0.0
    segments: int = 0
    rejected: int = 0

    def spread(self, size: int, call: str) -> Spread:
        return Spread.of(self.us[size][call])


def _fresh_clocks(recorder: LatencyRecorder, results: list[Result]) -> None:
    """New clocks that have observed every result (their model not built)."""
    recorder.clocks = ClockSync()
    for result in results:
        recorder.clocks.observe(SITE, result.timeline.events)


def time_deferred(sizes: Sequence[int], repeats: int) -> Deferred:
    deferred = Deferred()
    clock = time.perf_counter_ns
    for size in sizes:
        results = make_results(size, seed=size)
        recorder = LatencyRecorder()
        for result in results:
            recorder.completed(result)
        us: dict[str, list[float]] = {call: [] for call in DEFERRED}
        for _ in range(repeats):
            _fresh_clocks(recorder, results)
            t0 = clock()
            offsets = recorder.offsets()
            t1 = clock()
            recorder.corrected()
            t2 = clock()
            _fresh_clocks(recorder, results)
            t3 = clock()
            recorder.corrected()
            t4 = clock()
            for call, ns in zip(DEFERRED, (t1 - t0, t2 - t1, t4 - t3), strict=True):
                us[call].append(ns / 1e3 / size)
        deferred.us[size] = us
        last = offsets[0]
        first_sent = min(r.timeline.events[2].time_ns for r in results)
        last_received = max(r.timeline.events[-2].time_ns for r in results)
        deferred.drift_ppm = last.drift_ppm
        deferred.offset_end_s = last.offset_s
        deferred.true_offset_end_s = (
            OFFSET_S + DRIFT_PPM * 1e-6 * (last_received - first_sent) / 1e9
        )
        deferred.segments = len(last.segments)
        deferred.rejected = last.rejected
    return deferred


# -- the section ---------------------------------------------------------------------


@dataclass
class RecorderCosts:
    per_task: PerTask
    deferred: Deferred
    sizes: tuple[int, ...]

    def text(self) -> str:
        pt, lines = self.per_task, []
        lines.append(
            "Latency recorder (LatencyRecorder.completed, per finished task on the "
            "transport's thread):"
        )
        lines.append(
            f"A previous clocks (offset estimator updated per task), B current "
            f"(round trips kept, model built when read); {pt.tasks} synthetic "
            f"results per design and round, {len(pt.first)} rounds, first "
            "alternating; us per task, median [min-max] over rounds"
        )
        lines.append(f"  {'':<22} {'median':>22} {'p95':>22}")
        for call in ("completed", "observe"):
            for design in DESIGNS:
                lines.append(
                    f"  {design + ' ' + call + '()':<22} "
                    f"{pt.medians(design, call).text(2):>22} "
                    f"{pt.p95s(design, call).text(2):>22}"
                )
            lines.append(
                f"  {'B - A ' + call + '()':<22} "
                f"{pt.difference(call).text(2):>22} "
                f"{pt.difference(call, 'p95').text(2):>22}"
            )
        diff = pt.difference("completed").median
        verdict = "met" if diff <= TARGET_US else "NOT met"
        lines.append(
            f"  target B - A <= {TARGET_US:g} us per task: {verdict} "
            f"({diff:+.2f} us, median of the rounds' medians)"
        )
        lines.append("  per round (B - A of the medians, which went first):")
        for index, (value, first) in enumerate(
            zip(pt.difference("completed").values, pt.first, strict=True), start=1
        ):
            lines.append(f"    {index:>3}  {value:+7.2f} us  {first}")
        d = self.deferred
        repeats = len(d.us[self.sizes[0]][DEFERRED[0]])
        lines.append(
            "Deferred cost, B only (A had no per-stamp correction and kept running "
            f"totals: nothing comparable); us per task, median [min-max] over "
            f"{repeats} repetitions:"
        )
        lines.append(f"  {'tasks':>8} " + " ".join(f"{c:>24}" for c in DEFERRED))
        for size in self.sizes:
            cells = " ".join(f"{d.spread(size, c).text(2):>24}" for c in DEFERRED)
            lines.append(f"  {size:>8} {cells}")
        lines.append(
            f"  model of the {self.sizes[-1]} tasks: drift {d.drift_ppm:.2f} ppm "
            f"(true {DRIFT_PPM:g}), offset at the end {d.offset_end_s:.6f} s (true "
            f"{d.true_offset_end_s:.6f}), {d.segments} segment(s), {d.rejected} "
            "rejected"
        )
        return "\n".join(lines)

    def summary(self) -> dict[str, Any]:
        pt = self.per_task
        return {
            "method": "LatencyRecorder.completed per task, previous clocks (A) and "
            "current (B), alternating rounds; deferred calls of B by size",
            "tasks_per_round": pt.tasks,
            "first": pt.first,
            "us_per_task": {
                f"{design}_{call}": {
                    "median": pt.medians(design, call).summary(3),
                    "p95": pt.p95s(design, call).summary(3),
                }
                for design in DESIGNS
                for call in ("completed", "observe")
            },
            "b_minus_a_us": {
                call: pt.difference(call).summary(3)
                for call in ("completed", "observe")
            },
            "target_us": TARGET_US,
            "met": pt.difference("completed").median <= TARGET_US,
            "deferred_us_per_task": {
                str(size): {
                    c: self.deferred.spread(size, c).summary(3) for c in DEFERRED
                }
                for size in self.sizes
            },
        }


def measure_recorder(
    rounds: int,
    tasks: int = TASKS,
    sizes: Sequence[int] = SIZES,
    repeats: int = 3,
) -> RecorderCosts:
    """(e) and (f): the recorder's cost per task and its deferred cost."""
    per_task = time_per_task(make_results(tasks), rounds)
    return RecorderCosts(per_task, time_deferred(sizes, repeats), tuple(sizes))


def recorder_section(costs: RecorderCosts) -> str:
    """The printable section of `benchmarks/overhead.py`."""
    return "\n" + costs.text()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--tasks", type=int, help=f"per round (default {TASKS})")
    parser.add_argument(
        "--sizes",
        default=",".join(str(size) for size in SIZES),
        help="tasks of the deferred cost's recorders (default %(default)s)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="of the deferred cost")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"3 rounds of {QUICK_TASKS} tasks, deferred costs once",
    )
    args = parser.parse_args(argv)
    rounds, repeats = (3, 1) if args.quick else (args.rounds, args.repeats)
    tasks = args.tasks or (QUICK_TASKS if args.quick else TASKS)
    sizes = [int(size) for size in args.sizes.split(",") if size]
    print(recorder_section(measure_recorder(rounds, tasks, sizes, repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
