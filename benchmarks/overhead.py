"""Overhead of colmena-fx over the raw Globus Compute engine it drives.

Two paths run the same no-op task on the same engine, built from the same site
file (by default `endpoints/local-cpu.yaml`: a `GlobusComputeEngine`, that is
Parsl's HighThroughputExecutor with local workers):

A. baseline: the raw `GlobusComputeEngine`, started in this process and driven
   directly from the main thread.
B. colmena-fx: thinker -> federation -> local endpoint -> same engine; a
   `BaseThinker`'s agents submit the tasks and process the results.

For each path two numbers:

(a) burst throughput: submit `--tasks` no-op tasks as fast as possible, then wait
    for all of them; tasks per second from the first submission to the last
    result in hand.
(b) round trip: one task in flight at a time, `--rtt-samples` times; the median
    and the p95 in milliseconds, split by the worker's stamps into "out",
    "worker" and "back", and for path B into colmena-fx's named hops.

A no-op costs nothing to run, so both numbers measure pure overhead: (a) the cost
per task when the pipeline is full (on a machine with few cores it is bound by
the CPU every process spends per task), (b) the latency a steering loop that waits
on each result pays, (b)'s p95 the tail it meets.

So that load cannot fool the ratios so easily, both paths are started and warmed
up before the first measurement and stay alive to the last, and the run goes in
`--rounds` alternating rounds, each measuring both paths (burst A, burst B,
round trips A, round trips B). Every ratio is taken within its round, B's figure
over A's of the same round, and reported as the median over rounds with its
range [min-max] and each round's value: load that hits a round hits both paths
alike, and a round that load did hit shows in the range instead of in the
median. (Measuring all of A and then all of B gave throughput ratios of 1.26,
0.98 and 0.99 in three runs on a shared 2-core machine.) `--order ba` puts B
first within each round, to check that going first does not bias the ratios.

The idle path beside the measured one costs little: its interchange polls every
10 ms and the raw engine's result thread wakes as often in this process.
`--idle-check` measured an idle B using 2.5% of one core while A runs and an idle
A 1.8% while B runs, at most 1.3% of a 2-core machine and paid by both paths, so
it moves a ratio by under a percent, below the spread between rounds. It is left
running rather than paused: stopping its processes would race the engines' 10 s
heartbeat threshold, and its threads in this process cannot be stopped at all.

The task store's cost (`colmena_fx.taskstore`: per task a request record in
`submit`, a result record before the result is queued, a `taken` mark in
`get_result`, all flushed to the OS; fsynced by the journal's writer thread at
most `SYNC_S` apart) is measured against the previous design, the same federation
with the store's writes turned off, in two ways (`_overhead.taskstore`,
`_overhead.storecalls`; `--no-task-store` skips both):

(c) within each round, path B's burst runs twice, once with the task store and
    once with a benchmark-only stand-in doing nothing swapped in for the
    federation's store, the one going first alternating by round: the throughput
    ratio with/without (median, range, every round), the difference in burst
    time per task in microseconds, both split by which went first and balanced
    over the two orders (the second burst of a pair meets what the first left
    behind), the CPU per task of both, and the bytes per task the store added to
    the run directory. The with-store burst is path B's burst of (a). A cost of
    tens of microseconds in a burst of milliseconds per task is within the
    rounds' spread there, hence:
(d) after the rounds, the store's three calls timed directly on path B's last
    burst's results, into a fresh store: microseconds per task of request,
    result and taken and their total (median and p95 over tasks), and the bytes
    per task of each file, `--rounds` times in three variants: no other thread;
    a journal writer over the same files with the library's 1 s fsync period
    (which a loop of a fraction of a second never reaches: the writer thread's
    own contention); the same writer fsyncing every 20 ms, 50 times as often, so
    that each loop overlaps several fsyncs. Whether the fsync on its own thread
    shows is the last variant against the one before.

The latency recorder's cost (`LatencyRecorder.completed`, called per finished
task on the transport's thread) is measured against the previous clock design,
which updated an offset estimator per task where the current one only keeps the
round trip and builds its drift model when read (`_overhead.recordercalls`, after
the rounds, on synthetic results with a remote clock seconds off and drifting;
`--no-recorder` skips it):

(e) a fresh recorder of each design fed the same results, every call clocked,
    `--rounds` rounds, which design goes first alternating: per design the median
    and p95 per task in microseconds, and B - A within each round (median,
    range, every round), of `completed` and of the clocks' `observe` alone;
(f) the current design's deferred cost, `offsets()` and `corrected()` for 1k,
    10k and 100k tasks in microseconds per task, flat when linear in tasks (the
    previous design had no per-stamp correction: nothing to compare).

`--profile` adds a profiled run of path B's client threads after the rounds.

The parts live in `benchmarks/_overhead/` (see its `__init__`); this file parses
the options, runs the rounds and prints the tables and, as the last line of
standard output, one JSON object with the ratios (median, range, every round),
both paths' figures, the task store's (`task_store`), the latency recorder's
(`recorder`) and the machine, for comparing runs across machines. Run
from the repository root: `make bench` or `python benchmarks/overhead.py
[--quick]`.
"""

# ruff: noqa: E402 -- the repository root goes on sys.path before the imports
# of `benchmarks`, for when this file runs as a script.

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import argparse
import datetime
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from benchmarks._overhead.figures import Figures
from benchmarks._overhead.figures import Ratios
from benchmarks._overhead.idle import idle_check
from benchmarks._overhead.idle import print_idle_check
from benchmarks._overhead.machine import machine_info
from benchmarks._overhead.measure import Settings
from benchmarks._overhead.measure import measure
from benchmarks._overhead.measure import progress
from benchmarks._overhead.paths import RawEngine
from benchmarks._overhead.paths import ThinkerPath
from benchmarks._overhead.profiling import profile_federation
from benchmarks._overhead.recordercalls import QUICK_TASKS as RECORDER_QUICK_TASKS
from benchmarks._overhead.recordercalls import TASKS as RECORDER_TASKS
from benchmarks._overhead.recordercalls import measure_recorder
from benchmarks._overhead.recordercalls import recorder_section
from benchmarks._overhead.report import TARGET_RTT_RATIO
from benchmarks._overhead.report import TARGET_THROUGHPUT_RATIO
from benchmarks._overhead.report import print_profile
from benchmarks._overhead.report import print_report
from benchmarks._overhead.report import print_task_store
from benchmarks._overhead.report import targets_met
from benchmarks._overhead.taskstore import StoreRounds
from benchmarks._tasks import noop

DEFAULT_SITE = REPO / "endpoints" / "local-cpu.yaml"
NORMAL = {"tasks": 2000, "rtt_samples": 300, "rounds": 9, "warmup": 500}
QUICK = {"tasks": 300, "rtt_samples": 50, "rounds": 3, "warmup": 100}


@dataclass
class Options(Settings):
    """`measure`'s settings, and those of the sections after its rounds."""

    #: Whether the latency recorder's cost is measured (`recordercalls`).
    recorder: bool = True
    quick: bool = False


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        description="No-op throughput and round trip of colmena-fx versus the raw "
        "Globus Compute engine, on the same engine settings.",
    )
    parser.add_argument(
        "--tasks", type=int, help=f"tasks per burst (default {NORMAL['tasks']})"
    )
    parser.add_argument(
        "--rtt-samples",
        type=int,
        help=f"round trips per path and round (default {NORMAL['rtt_samples']})",
    )
    parser.add_argument(
        "--rounds",
        "--repeats",
        dest="rounds",
        type=int,
        help="alternating rounds, each a burst and a round-trip series of both "
        f"paths (default {NORMAL['rounds']}; --repeats is the former name)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        help=f"tasks of the warm-up burst (default {NORMAL['warmup']})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: defaults of "
        + ", ".join(f"{key}={value}" for key, value in QUICK.items()),
    )
    parser.add_argument(
        "--site",
        type=Path,
        default=DEFAULT_SITE,
        help="site file whose engine both paths run (default %(default)s)",
    )
    parser.add_argument(
        "--order",
        choices=("ab", "ba"),
        default="ab",
        help="which path goes first within each round (default %(default)s); "
        "'ba' checks that going first does not bias the ratios",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="afterwards, profile path B's client threads on a fresh federation",
    )
    parser.add_argument(
        "--idle-check",
        action="store_true",
        help="instead of the comparison, measure each path alone and beside the "
        "other path idling, to see whether the idle one steals from it",
    )
    parser.add_argument(
        "--profile-top", type=int, default=15, help="functions listed per thread"
    )
    parser.add_argument(
        "--no-task-store",
        dest="task_store",
        action="store_false",
        help="skip the task store's measurement (path B's second burst per round, "
        "and the timing of the store's calls)",
    )
    parser.add_argument(
        "--no-recorder",
        dest="recorder",
        action="store_false",
        help="skip the latency recorder's cost per task (previous clock design "
        "versus current) and its deferred cost",
    )
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else NORMAL
    settings = Options(
        tasks=args.tasks or defaults["tasks"],
        rtt_samples=args.rtt_samples or defaults["rtt_samples"],
        rounds=args.rounds or defaults["rounds"],
        warmup=args.warmup or defaults["warmup"],
        site=args.site.resolve(),
        order=args.order,
        profile=args.profile,
        profile_top=args.profile_top,
        idle_check=args.idle_check,
        task_store=args.task_store,
        recorder=args.recorder,
        quick=args.quick,
    )
    for name in ("tasks", "rtt_samples", "rounds", "warmup", "profile_top"):
        if getattr(settings, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not settings.site.exists():
        parser.error(f"no site file {settings.site}")
    return settings


def prepare_environment() -> None:
    """Make the engine's commands and `benchmarks._tasks` reachable to its workers.

    The engine starts its interchange and worker pool by command name, so the
    virtualenv's bin goes first on PATH; workers run in the engine's run
    directory, so the repository root goes on their PYTHONPATH.
    """
    bin_dir = os.path.dirname(sys.executable)
    os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    python_path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), *python_path])


def summarize(
    raw: Figures,
    fed: Figures,
    settings: Settings,
    machine: dict[str, Any],
    wall_s: float,
    profile: dict[str, Any] | None,
) -> dict[str, Any]:
    """The JSON line: ratios, targets, both paths' figures, settings, machine.

    `throughput_ratio` and `rtt_ratio` keep their names and are now the medians
    over rounds of the per-round ratios; `ratios` holds all three ratios (the
    round trip's p95 too) with their range and every round's value.
    """
    ratios = Ratios.of(raw, fed)
    throughput_ok, rtt_ok = targets_met(ratios)
    site = settings.site
    summary: dict[str, Any] = {
        "benchmark": "overhead",
        "method": "alternating rounds, both paths alive; ratios per round",
        "throughput_ratio": round(ratios.throughput.median, 4),
        "rtt_ratio": round(ratios.rtt_median.median, 4),
        "rtt_p95_ratio": round(ratios.rtt_p95.median, 4),
        "ratios": ratios.summary(),
        "targets": {
            "throughput_ratio_min": TARGET_THROUGHPUT_RATIO,
            "rtt_ratio_max": TARGET_RTT_RATIO,
            "met": throughput_ok and rtt_ok,
        },
        "raw": raw.summary(),
        "colmena_fx": fed.summary(),
        "settings": {
            "tasks": settings.tasks,
            "rtt_samples": settings.rtt_samples,
            "rounds": settings.rounds,
            "repeats": settings.rounds,  # the former name, for older readers
            "warmup": settings.warmup,
            "order": settings.order,
            "task_store": settings.task_store,
            "site": str(site.relative_to(REPO))
            if site.is_relative_to(REPO)
            else str(site),
        },
        "machine": machine,
        "load_avg_end": [round(load, 2) for load in os.getloadavg()],
        "wall_s": round(wall_s, 1),
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if profile is not None:
        summary["profile"] = {
            name: {
                "scope": table["scope"],
                "measured_us_per_task": table["measured_us_per_task"],
                "top_self": [
                    {key: row[key] for key in ("function", "est_us_per_task")}
                    for row in table["top_self"][:5]
                ],
            }
            for name, table in profile.items()
        }
    return summary


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s"
    )
    prepare_environment()
    machine = machine_info()
    progress(
        f"{machine['cpu_usable']} usable cores, Python {machine['python']}, "
        f"load {machine['load_avg']}; {settings.rounds} rounds of {settings.tasks} "
        f"tasks and {settings.rtt_samples} round trips per path"
    )
    wall = time.perf_counter()
    if settings.idle_check:
        report = idle_check(settings, noop)
        print_idle_check(report)
        print(json.dumps(report, separators=(",", ":")))
        return 0
    fed_path = ThinkerPath(settings.site, noop)
    store = StoreRounds(fed_path) if settings.task_store else None
    raw, fed = measure(RawEngine(settings.site, noop), fed_path, settings, store)
    profile = profile_federation(settings, noop, fed.cpu) if settings.profile else None
    recorder = None
    if settings.recorder:
        progress("latency recorder: timing its calls, previous clocks and current")
        recorder = measure_recorder(
            settings.rounds,
            RECORDER_QUICK_TASKS if settings.quick else RECORDER_TASKS,
            repeats=1 if settings.quick else 3,
        )

    print_report(raw, fed, settings)
    if store is not None:
        print_task_store(store, fed)
    if recorder is not None:
        print(recorder_section(recorder))
    if profile is not None:
        print_profile(profile)
    summary = summarize(
        raw, fed, settings, machine, time.perf_counter() - wall, profile
    )
    if store is not None:
        summary["task_store"] = store.summary(fed.cpu)
    summary["settings"]["recorder"] = settings.recorder
    if recorder is not None:
        summary["recorder"] = recorder.summary()
    print(json.dumps(summary, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
