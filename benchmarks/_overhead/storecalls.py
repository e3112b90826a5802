"""The task store's calls timed directly, on the results of one of path B's bursts.

A burst's wall time on a loaded 2-core machine varies by more than the store
costs, so its three writes per task are also timed by themselves: a fresh
`TaskStore` in a temporary directory, and for every result of the last
with-store burst `request` (the task as `submit` left it: client stamps only,
inputs of their size), `result` (as `_deliver` has it: stamps up to
`deserialized`) and `taken`, each clocked with `perf_counter_ns`. The results
are passed over again until the loop has run `MIN_LOOP_S`. The calls run one
after the other in the main thread, where the federation spreads them over the
submitting, receiving and consuming threads; GIL hand-offs are not in it.

Three variants, their order rotating, `--rounds` times each:

- `no thread`: no thread but the loop touches the files (the data reach the page
  cache; nothing waits on the disk);
- `journal 1 s`: a `Journal` over the same directory with `sync_also=store.files`,
  as the federation opens it, fed one small event per task (outside the clock) so
  that it has lines to write and stays dirty; at its `SYNC_S` a loop of well under
  a second meets no fsync, so this is the writer thread's contention alone;
- `journal 20 ms`: the same writer fsyncing every `FSYNC_S`, 50 times as often,
  so that each loop overlaps several fsyncs: the fsync's effect is this variant
  over the last, and at `SYNC_S` a loop meets it 50 times as rarely.

Every fsync of the directory (the journal and both files) is counted and timed.
Bytes per task are each file's size over the tasks the loop stored.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from benchmarks._stats import Spread
from benchmarks._stats import p95
from benchmarks._stats import ratios
from colmena_fx.journal import SYNC_S
from colmena_fx.journal import Journal
from colmena_fx.models import Result
from colmena_fx.models import Stamp
from colmena_fx.models import Timeline
from colmena_fx.taskstore import REQUESTS_NAME
from colmena_fx.taskstore import RESULTS_NAME
from colmena_fx.taskstore import TaskStore

#: The stressed journal's fsync period and batching pause (its defaults: 1 s, 50 ms).
FSYNC_S = SYNC_S / 50
FLUSH_S = 0.005
#: Least seconds one variant's loop runs (passing over the results again).
MIN_LOOP_S = 0.2
NO_THREAD = "no thread"
#: Variant -> (the journal's flush_s, sync_s), None for no journal.
VARIANTS: dict[str, tuple[float, float] | None] = {
    NO_THREAD: None,
    f"journal {SYNC_S:g} s": (0.05, SYNC_S),
    f"journal {FSYNC_S * 1e3:g} ms": (FLUSH_S, FSYNC_S),
}
CALLS = ("request", "result", "taken")


def _upto(result: Result, last: Stamp) -> Timeline:
    """The timeline up to and including the last `last` event."""
    events = result.timeline.events
    names = [event.name for event in events]
    end = len(names) - names[::-1].index(last.value) if last.value in names else 0
    return Timeline(events=list(events[:end]))


def as_stored(results: list[Result]) -> list[tuple[Result, Result]]:
    """Each result as `request` and as `result` see it in the federation.

    `get_result` emptied the inputs; they get back their size (the bytes' values
    do not change the cost), and the timeline is cut where each call happens.
    """
    pairs = []
    for result in results:
        inputs = bytes(result.sizes.inputs)
        submitted = result.model_copy(
            update={"inputs": inputs, "timeline": _upto(result, Stamp.SERIALIZED)}
        )
        delivered = result.model_copy(
            update={"inputs": inputs, "timeline": _upto(result, Stamp.DESERIALIZED)}
        )
        pairs.append((submitted, delivered))
    return pairs


@contextmanager
def counted_fsyncs(under: Path) -> Iterator[list[float]]:
    """Seconds of each `os.fsync` of a file under `under` made inside the block."""
    original = os.fsync
    prefix = str(under.resolve())
    durations: list[float] = []

    def fsync(fd: Any) -> None:
        try:
            target = os.readlink(f"/proc/self/fd/{int(fd)}")
        except (OSError, TypeError, ValueError):
            target = ""
        started = time.perf_counter()
        try:
            original(fd)
        finally:
            if target.startswith(prefix):
                durations.append(time.perf_counter() - started)

    os.fsync = fsync
    try:
        yield durations
    finally:
        os.fsync = original


@dataclass
class CallTimes:
    """One variant's timings, over every repetition."""

    variant: str
    #: Call name, and "total", -> microseconds of each task.
    us: dict[str, list[float]] = field(
        default_factory=lambda: {name: [] for name in (*CALLS, "total")}
    )
    #: The median total of each repetition, microseconds.
    medians: list[float] = field(default_factory=list)
    fsyncs_s: list[float] = field(default_factory=list)
    loop_s: float = 0.0
    tasks: int = 0
    written: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys((REQUESTS_NAME, RESULTS_NAME), 0)
    )

    def bytes_per_task(self) -> dict[str, float]:
        tasks = self.tasks or 1
        return {name: round(size / tasks, 1) for name, size in self.written.items()}

    def summary(self) -> dict[str, Any]:
        journal = VARIANTS[self.variant]
        return {
            "tasks": self.tasks,
            "us_per_task": {
                name: {
                    "median": round(statistics.median(values), 2),
                    "p95": round(p95(values), 2),
                }
                for name, values in self.us.items()
            },
            "total_median_us_repetitions": [round(value, 2) for value in self.medians],
            "fsyncs": len(self.fsyncs_s),
            "fsync_median_ms": round(statistics.median(self.fsyncs_s) * 1e3, 2)
            if self.fsyncs_s
            else None,
            "fsync_period_s": None if journal is None else journal[1],
            "loop_s": round(self.loop_s, 2),
            "bytes_per_task": self.bytes_per_task(),
        }


def _loop(
    pairs: list[tuple[Result, Result]], store: TaskStore, journal: Journal | None
) -> tuple[dict[str, list[float]], int]:
    clock = time.perf_counter_ns
    us: dict[str, list[float]] = {name: [] for name in (*CALLS, "total")}
    tasks = 0
    started = time.perf_counter()
    while True:
        for submitted, delivered in pairs:
            candidates = [submitted.site or "local"]
            t0 = clock()
            store.request(submitted, candidates, None)
            t1 = clock()
            store.result(delivered)
            t2 = clock()
            store.taken(delivered)
            t3 = clock()
            for name, spent in zip(
                (*CALLS, "total"), (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True
            ):
                us[name].append(spent / 1e3)
            if journal is not None:
                journal.record("bench", {"task_id": delivered.task_id})
        tasks += len(pairs)
        if time.perf_counter() - started >= MIN_LOOP_S:
            return us, tasks


def _time_once(pairs: list[tuple[Result, Result]], into: CallTimes) -> None:
    with tempfile.TemporaryDirectory(prefix="cfx-bench-store-") as tmp:
        run_dir = Path(tmp)
        store = TaskStore(run_dir)
        store.open()
        journal = None
        periods = VARIANTS[into.variant]
        if periods is not None:
            flush_s, sync_s = periods
            journal = Journal(
                run_dir, flush_s=flush_s, sync_s=sync_s, sync_also=store.files
            )
            journal.start()
        try:
            with counted_fsyncs(run_dir) as fsyncs:
                started = time.perf_counter()
                us, tasks = _loop(pairs, store, journal)
                into.loop_s += time.perf_counter() - started
                into.fsyncs_s.extend(fsyncs)  # those that began during the loop
        finally:
            if journal is not None:
                journal.close()
            store.close()
        for name, values in us.items():
            into.us[name].extend(values)
        into.medians.append(statistics.median(us["total"]))
        into.tasks += tasks
        for name in into.written:
            into.written[name] += (run_dir / name).stat().st_size


def time_store_calls(results: list[Result], repetitions: int) -> list[CallTimes]:
    """Every variant, `repetitions` times each, the order rotating."""
    pairs = as_stored(results)
    names = list(VARIANTS)
    times = {variant: CallTimes(variant) for variant in names}
    for index in range(repetitions):
        shift = index % len(names)
        for variant in names[shift:] + names[:shift]:
            _time_once(pairs, times[variant])
    return [times[variant] for variant in names]


def over_no_thread(calls: list[CallTimes]) -> dict[str, Spread]:
    """Each variant's median total over `no thread`'s, per repetition."""
    variants = {times.variant: times for times in calls}
    if NO_THREAD not in variants:
        return {}
    base = variants[NO_THREAD].medians
    return {
        variant: Spread.of(ratios(times.medians, base))
        for variant, times in variants.items()
        if variant != NO_THREAD
    }
