"""Overhead of colmena-fx over the raw Globus Compute engine it drives.

What is measured
----------------
Two paths run the same no-op task on the same engine, built from the same site
file (by default `endpoints/local-cpu.yaml`: a `GlobusComputeEngine`, that is
Parsl's HighThroughputExecutor with local workers):

A. baseline: the raw `GlobusComputeEngine`, started in this process and driven
   directly: `engine.submit(GCFuture, packed_task, {})`, then `future.result()`.
B. colmena-fx: `Federation.submit` in this process -> the CurveZMQ link -> the
   site's embedded endpoint process -> the same kind of engine there, and the
   `Result` back on the link to `Federation.get_result`.

For each path two numbers:

(a) burst throughput: submit `--tasks` no-op tasks as fast as possible, then wait
    for all of them; tasks per second from the first submission to the last
    result in hand.
(b) round trip: one task in flight at a time (submit, wait for its result,
    repeat `--rtt-samples` times); the median in milliseconds. The worker's
    stamps split each round trip into "out" (submit to worker start), "worker"
    and "back" (worker end to the value in the client's hands) for both paths,
    and path B's own timeline splits it further into colmena-fx's named hops.

A no-op costs nothing to run, so both numbers measure pure overhead: (a) the
cost per task when the pipeline is full (on a machine with few cores it is bound
by the CPU every process spends per task), (b) the latency a steering loop that
waits on each result pays. The ratios B/A are colmena-fx's price over driving the
engine by hand; targets on a 2-core machine are throughput >= 0.9x and round
trip <= 1.3x (Colmena 0.7.2 reaches about 0.55x plain Parsl's throughput and
1.7x its round trip).

Why the baseline is built this way
----------------------------------
A Globus Compute engine only accepts tasks packed the way an endpoint receives
them from the SDK: a messagepack `Task` whose buffer holds the serialized
function, args and kwargs. The baseline packs every task exactly as colmena-fx
does, with `gcformat.pack_task` around the same worker shim
(`colmena_fx.worker.execute`, serialized once by `gcformat.FunctionCache`), and
does so inside the timed window, as any client of the engine must. It also
decodes every packed result to the function's return value (messagepack unpack,
`ComputeSerializer.deserialize`, `colmena_fx.serialize.loads`), so both paths end
with the value in the client's hands and run the identical code on the workers.
What B adds over A is then exactly colmena-fx's own cost: the `Result` record and
its timeline, per-task argument serialization, routing, the journal, the wire
headers, the extra process hop with CurveZMQ encryption, and the topic queue.

The two paths run one after the other, never at the same time, each on a freshly
started engine. Each is warmed up first (the first task waits for the workers to
connect; a short burst and a few round trips warm the code paths), then each
measurement is repeated `--repeats` times and the median reported, so that the
ratios are stable from run to run. `--order ba` runs path B first, to check
that the order does not bias the ratios.

Path B is driven from the main thread by the calls a thinker's agent makes
(`Federation.submit`, then `Federation.get_result` on the task's topic); the
JSON line names the driver of each path.

CPU accounting
--------------
During the bursts the CPU time of every process of the run (this client, the
endpoint, the interchange, the worker pool and its workers) and of every thread
of this client is sampled, and reported in microseconds per task. It explains the
throughput ratio on a small machine and shows where colmena-fx spends its time
without the distortion of a profiler.

`--profile` adds a third phase after the two measured ones: a fresh federation
whose client threads all run under `cProfile` (timed in thread CPU time), one
warm-up and one profiled burst, and the top functions per client thread in
microseconds per task. Profiling slows everything down, so it never runs during
the measured phases.

The last line of standard output is one JSON object with the ratios, the raw
figures and the machine, for comparing runs across machines. Run from the
repository root: `make bench` or `python benchmarks/overhead.py [--quick]`.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import importlib
import importlib.metadata
import json
import logging
import os
import platform
import pstats
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import Protocol

import psutil
from globus_compute_common import messagepack
from globus_compute_endpoint.engines.base import GCFuture
from globus_compute_sdk.serialize import ComputeSerializer

from colmena_fx import serialize
from colmena_fx.config import FederationConfig
from colmena_fx.config import MethodRoute
from colmena_fx.config import load_site
from colmena_fx.federation import Federation
from colmena_fx.latency import HOPS
from colmena_fx.latency import hop_durations
from colmena_fx.models import Stamp
from colmena_fx.transports import gcformat
from colmena_fx.worker import WorkerReply

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SITE = REPO / "endpoints" / "local-cpu.yaml"
#: Seconds to wait for any one task (the first waits for the workers to connect).
TASK_TIMEOUT_S = 120.0
#: Pause between measurements, so that work left behind by one (journal lines,
#: heartbeats) does not land in the next.
SETTLE_S = 0.25
TOPIC = "bench"
TARGET_THROUGHPUT_RATIO = 0.9
TARGET_RTT_RATIO = 1.3

NORMAL = {"tasks": 2000, "rtt_samples": 300, "repeats": 5, "warmup": 500}
QUICK = {"tasks": 300, "rtt_samples": 50, "repeats": 2, "warmup": 100}


def progress(message: str) -> None:
    """Progress goes to stderr: stdout is for the table and the JSON line."""
    print(f"[overhead] {message}", file=sys.stderr, flush=True)


# -- the two paths ---------------------------------------------------------------

#: Parts of a round trip that both paths can time, from the worker's stamps.
OUT = "out: submit -> worker started"
WORKER = "worker: started -> ended"
BACK = "back: worker ended -> value in hand"


@dataclass
class RoundTrip:
    """One round trip: its duration and where the time went."""

    seconds: float
    #: Named parts in seconds: OUT, WORKER and BACK for both paths, and for
    #: path B every hop of colmena-fx's timeline (`colmena_fx.latency.HOPS`).
    segments: dict[str, float]


def _segments(start_ns: int, end_ns: int, events: dict[str, int]) -> dict[str, float]:
    """OUT, WORKER and BACK from the worker's stamps, same-host clocks."""
    started = events[Stamp.WORKER_STARTED.value]
    ended = events[Stamp.WORKER_ENDED.value]
    return {
        OUT: (started - start_ns) / 1e9,
        WORKER: (ended - started) / 1e9,
        BACK: (end_ns - ended) / 1e9,
    }


class TaskPath(Protocol):
    """One way of running no-op tasks; `run_dir` is where its engine runs."""

    label: str
    driver: str
    run_dir: Path
    completed: int

    def start(self) -> None: ...

    def burst(self, n: int) -> float:
        """Submit `n` tasks, wait for all; seconds from first submit to last result."""

    def round_trip(self) -> RoundTrip:
        """Submit one task and wait for its result."""

    def stop(self) -> None: ...


class RawEngine:
    """Path A: the site's engine started in this process and driven by hand."""

    label = "A raw GlobusComputeEngine"
    driver = "engine.submit from the main thread"

    def __init__(self, site_file: Path, noop: Callable[[], None]) -> None:
        self.site = load_site(site_file)
        self._tmp = tempfile.TemporaryDirectory(
            prefix="cfx-bench-raw-", ignore_cleanup_errors=True
        )
        self.run_dir = Path(self._tmp.name).resolve()
        self.completed = 0
        self._engine: Any = None
        self._serde = ComputeSerializer()
        # Built once, as colmena-fx's transport does: the shim around `noop`.
        self._function_buffer = gcformat.FunctionCache().buffer(noop)
        self._request = serialize.dumps(((), {}))

    def start(self) -> None:
        self._engine = self.site.build_engine()
        self._engine.start(endpoint_id=uuid.uuid4(), run_dir=str(self.run_dir))

    def _submit(self) -> GCFuture:
        task_id = str(uuid.uuid4())
        future = GCFuture(task_id)
        packed = gcformat.pack_task(task_id, self._function_buffer, self._request)
        self._engine.submit(future, packed, {})
        return future

    def _reply(self, future: GCFuture) -> WorkerReply:
        """The worker's reply to the task, decoded as colmena-fx decodes it."""
        message = messagepack.unpack(future.result(timeout=TASK_TIMEOUT_S))
        if message.is_error:
            raise RuntimeError(f"task {message.task_id} failed: {message.data}")
        reply: WorkerReply = self._serde.deserialize(message.data)
        if not reply.success:
            raise RuntimeError(f"task {message.task_id} failed: {reply.failure}")
        return reply

    def _value(self, future: GCFuture) -> Any:
        """The return value of the task."""
        return serialize.loads(self._reply(future).value)

    def burst(self, n: int) -> float:
        started = time.perf_counter()
        futures = [self._submit() for _ in range(n)]
        values = [self._value(future) for future in futures]
        elapsed = time.perf_counter() - started
        _check_values(values, n)
        self.completed += n
        return elapsed

    def round_trip(self) -> RoundTrip:
        start_ns = time.time_ns()
        started = time.perf_counter()
        reply = self._reply(self._submit())
        value = serialize.loads(reply.value)
        elapsed = time.perf_counter() - started
        end_ns = time.time_ns()
        _check_values([value], 1)
        self.completed += 1
        events = {name: time_ns for name, time_ns, _ in reply.events}
        return RoundTrip(elapsed, _segments(start_ns, end_ns, events))

    def stop(self) -> None:
        if self._engine is not None:
            self._engine.shutdown()
            self._engine = None
        self._tmp.cleanup()


class FederationPath:
    """Path B, driven from the main thread: `Federation.submit`/`get_result`."""

    label = "B colmena-fx federation"
    driver = "federation (main thread)"

    def __init__(self, site_file: Path, noop: Callable[[], None]) -> None:
        site = load_site(site_file)
        config = FederationConfig(
            name="bench",
            sites=[site_file],
            methods={noop.__name__: MethodRoute(site=site.name)},
        )
        self._tmp = tempfile.TemporaryDirectory(
            prefix="cfx-bench-fed-", ignore_cleanup_errors=True
        )
        self.federation = Federation(
            config, {site.name: site}, methods=[noop], run_dir=Path(self._tmp.name)
        )
        self.method = noop.__name__
        self.run_dir = Path(self._tmp.name).resolve()
        self.completed = 0

    def start(self) -> None:
        self.federation.start()
        assert self.federation.run_dir is not None
        self.run_dir = self.federation.run_dir.resolve()

    def _collect(self, n: int) -> list[Any]:
        results = []
        for _ in range(n):
            result = self.federation.get_result(TOPIC, timeout=TASK_TIMEOUT_S)
            if result is None:
                raise TimeoutError(f"no result within {TASK_TIMEOUT_S:.0f} s")
            results.append(result)
        return results

    def burst(self, n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            self.federation.submit(self.method, topic=TOPIC)
        results = self._collect(n)
        elapsed = time.perf_counter() - started
        _check_results(results, n)
        self.completed += n
        return elapsed

    def round_trip(self) -> RoundTrip:
        start_ns = time.time_ns()
        started = time.perf_counter()
        self.federation.submit(self.method, topic=TOPIC)
        results = self._collect(1)
        elapsed = time.perf_counter() - started
        end_ns = time.time_ns()
        _check_results(results, 1)
        self.completed += 1
        timeline = results[0].timeline.events
        events = {event.name: event.time_ns for event in timeline}
        segments = _segments(start_ns, end_ns, events)
        segments.update(hop_durations(timeline, HOPS))
        return RoundTrip(elapsed, segments)

    def stop(self) -> None:
        self.federation.stop()
        self._tmp.cleanup()


def _check_values(values: list[Any], n: int) -> None:
    if len(values) != n or any(value is not None for value in values):
        raise RuntimeError(f"expected {n} None values from noop, got {values[:3]!r}")


def _check_results(results: list[Any], n: int) -> None:
    failed = [result for result in results if not result.success]
    if len(results) != n or failed:
        raise RuntimeError(
            f"expected {n} successful results, got {len(results)}; "
            f"first failure: {failed[0].failure if failed else None}"
        )
    _check_values([result.value for result in results], n)


# -- CPU accounting --------------------------------------------------------------

ROLES = ("client", "endpoint", "interchange", "worker pool", "workers", "other")


def _role(proc: psutil.Process, me: int) -> str:
    if proc.pid == me:
        return "client"
    try:
        command = " ".join(proc.cmdline())
    except psutil.Error:
        return "other"
    if "colmena_fx.endpoint" in command:
        return "endpoint"
    if "process_worker_pool" in command:
        return "worker pool"
    if "interchange" in command:
        return "interchange"
    if "spawn_main" in command:
        return "workers"
    return "other"


def _thread_name(tid: int, names: dict[int, str]) -> str:
    """The Python name of a thread of this process, else its kernel name."""
    name = names.get(tid)
    if name is None:
        try:
            name = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
        except OSError:
            name = f"thread-{tid}"
    # Some names end in an object id, which would split one thread into many keys.
    return re.sub(r"-\d{6,}$", "", name)


@dataclass
class CpuTally:
    """CPU seconds spent during the measured bursts, by process role and thread."""

    tasks: int = 0
    roles: dict[str, float] = field(default_factory=dict)
    threads: dict[str, float] = field(default_factory=dict)

    def per_task_us(self, table: dict[str, float]) -> dict[str, float]:
        if not self.tasks:
            return {}
        return {key: round(value / self.tasks * 1e6, 1) for key, value in table.items()}

    def summary(self) -> dict[str, Any]:
        roles = self.per_task_us(self.roles)
        return {
            "tasks": self.tasks,
            "total_us_per_task": round(sum(roles.values()), 1),
            "by_process_us_per_task": roles,
            "client_threads_us_per_task": {
                name: us
                for name, us in sorted(
                    self.per_task_us(self.threads).items(), key=lambda kv: -kv[1]
                )
                if us >= 0.5  # idle threads (atexit, reaper, pollers)
            },
        }


class CpuMonitor:
    """Samples the CPU time of every process of a run and of this client's threads.

    The processes are found once, after the warm-up: this process, its
    descendants (the endpoint, the interchange) and the processes whose command
    line names the run directory (the worker pool, which the provider detaches)
    with their descendants (the workers).
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = str(run_dir)
        self.me = os.getpid()
        self.processes: dict[int, tuple[psutil.Process, str]] = {}
        self.tally = CpuTally()

    def discover(self) -> None:
        me = psutil.Process(self.me)
        found = {me.pid: me}
        found.update({child.pid: child for child in me.children(recursive=True)})
        for proc in psutil.process_iter(["cmdline"]):
            command = proc.info["cmdline"] or []
            if proc.pid != self.me and any(self.run_dir in arg for arg in command):
                found[proc.pid] = proc
                found.update(
                    {child.pid: child for child in proc.children(recursive=True)}
                )
        self.processes = {
            pid: (proc, _role(proc, self.me)) for pid, proc in found.items()
        }

    def _sample(self) -> tuple[dict[int, float], dict[str, float]]:
        cpu: dict[int, float] = {}
        for pid, (proc, _) in self.processes.items():
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            cpu[pid] = times.user + times.system
        names = {t.native_id: t.name for t in threading.enumerate() if t.native_id}
        threads: dict[str, float] = {}
        for thread in psutil.Process(self.me).threads():
            name = _thread_name(thread.id, names)
            threads[name] = threads.get(name, 0.0) + thread.user_time
            threads[name] += thread.system_time
        return cpu, threads

    @contextmanager
    def measuring(self, tasks: int) -> Iterator[None]:
        """Add the CPU spent inside the block to the tally, for `tasks` tasks."""
        before_cpu, before_threads = self._sample()
        yield
        after_cpu, after_threads = self._sample()
        self.tally.tasks += tasks
        for pid, spent in after_cpu.items():
            if pid in before_cpu:
                role = self.processes[pid][1]
                delta = spent - before_cpu[pid]
                self.tally.roles[role] = self.tally.roles.get(role, 0.0) + delta
        for name, spent in after_threads.items():
            delta = spent - before_threads.get(name, 0.0)
            self.tally.threads[name] = self.tally.threads.get(name, 0.0) + delta


# -- measuring -------------------------------------------------------------------


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
    throughput: list[float] = field(default_factory=list)  # tasks/s per repeat
    rtt_ms: list[list[float]] = field(default_factory=list)  # samples per repeat
    #: Segment name -> every sample, seconds.
    segments: dict[str, list[float]] = field(default_factory=dict)
    #: Seconds from starting the path to the end of its warm-up.
    ready_s: float = 0.0
    cpu: CpuTally = field(default_factory=CpuTally)
    driver: str = ""

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
    path.round_trip()
    progress(f"  first task back after {time.perf_counter() - started:.1f} s")
    path.burst(settings.warmup)
    for _ in range(min(20, settings.rtt_samples)):
        path.round_trip()
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
            figures.add_round_trips(
                [path.round_trip() for _ in range(settings.rtt_samples)]
            )
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


# -- profiling -------------------------------------------------------------------


class ThreadProfiles:
    """Runs every thread started inside `patched()` under its own cProfile.

    Profiles are timed in thread CPU time, so blocking waits (the receiver's
    poll, queue gets) and waiting for the GIL do not count, and are kept per
    thread name once the thread ends.
    """

    def __init__(self) -> None:
        self.profiles: dict[str, list[cProfile.Profile]] = {}
        self._lock = threading.Lock()

    def new_profile(self) -> cProfile.Profile:
        return cProfile.Profile(time.thread_time_ns, 1e-9)

    @contextmanager
    def patched(self) -> Iterator[None]:
        original = threading.Thread.run
        profiles = self

        def run(thread: threading.Thread) -> None:
            profile = profiles.new_profile()
            profile.enable()
            try:
                original(thread)
            finally:
                profile.disable()
                with profiles._lock:
                    profiles.profiles.setdefault(thread.name, []).append(profile)

        threading.Thread.run = run  # type: ignore[method-assign]
        try:
            yield
        finally:
            threading.Thread.run = original  # type: ignore[method-assign]

    def add(self, name: str, profile: cProfile.Profile) -> None:
        with self._lock:
            self.profiles.setdefault(name, []).append(profile)

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
    the profiles to real microseconds.
    """
    profiles = ThreadProfiles()
    path = FederationPath(settings.site, noop)
    progress("profile: starting a fresh federation with profiled client threads")
    with profiles.patched():
        path.start()
    try:
        warm_up(path, settings)
        alive = {thread.name for thread in threading.enumerate()}
        main = profiles.new_profile()
        main.enable()
        path.burst(settings.tasks)
        main.disable()
        profiles.add(threading.main_thread().name, main)
    finally:
        path.stop()  # ends the receiver and journal threads: their profiles land
    measured_us = measured.per_task_us(measured.threads)
    report: dict[str, Any] = {}
    for name in sorted(profiles.profiles):
        stats = profiles.stats(name)
        if name not in alive or stats is None:
            continue  # a helper thread of the start-up
        # The main thread is profiled for the burst only; the others for their
        # whole life, that is every task of this phase.
        main_thread = name == threading.main_thread().name
        tasks = settings.tasks if main_thread else path.completed
        report[name] = profile_table(
            stats, tasks, settings.profile_top, measured_us.get(name)
        )
    return report


# -- reporting -------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    packages = {}
    for name in ("colmena-fx", "globus-compute-endpoint", "parsl", "pyzmq", "pydantic"):
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    frequency = psutil.cpu_freq()
    return {
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
        "cpu_model": _cpu_model(),
        "cpu_mhz": round(frequency.current) if frequency else None,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "load_avg": [round(load, 2) for load in os.getloadavg()],
        "packages": packages,
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _spread(values: list[float], digits: int) -> str:
    return f"[{min(values):.{digits}f}-{max(values):.{digits}f}]"


def print_report(raw: Figures, fed: Figures, settings: Settings) -> None:
    throughput_ratio = fed.throughput_median / raw.throughput_median
    rtt_ratio = fed.rtt_median / raw.rtt_median
    print()
    print(
        f"No-op overhead: {settings.tasks} tasks per burst, {settings.rtt_samples} "
        f"round trips, median of {settings.repeats} repeats [min-max]; "
        f"engine from {settings.site.name}"
    )
    header = f"{'path':<28} {'throughput (tasks/s)':>26} {'round trip (ms)':>24}"
    print(header)
    print("-" * len(header))
    for figures in (raw, fed):
        tput = f"{figures.throughput_median:8.1f} {_spread(figures.throughput, 0)}"
        rtt = f"{figures.rtt_median:6.3f} {_spread(figures.rtt_medians, 3)}"
        print(f"{figures.label:<28} {tput:>26} {rtt:>24}")
    verdict_t = "ok" if throughput_ratio >= TARGET_THROUGHPUT_RATIO else "MISSED"
    verdict_r = "ok" if rtt_ratio <= TARGET_RTT_RATIO else "MISSED"
    ratio_t = f"{throughput_ratio:.3f}x (>= {TARGET_THROUGHPUT_RATIO}: {verdict_t})"
    ratio_r = f"{rtt_ratio:.3f}x (<= {TARGET_RTT_RATIO}: {verdict_r})"
    print(f"{'ratio B/A':<28} {ratio_t:>26} {ratio_r:>24}")
    print(f"path B driven by: {fed.driver}")

    print()
    print("Round trip, median of each part (us; medians do not add up exactly):")
    raw_parts, fed_parts = raw.segments_us(), fed.segments_us()
    print(f"  {'part':<42} {'A':>9} {'B':>9} {'B-A':>9}")
    for part in (OUT, WORKER, BACK):
        a, b = raw_parts[part], fed_parts[part]
        print(f"  {part:<42} {a:9.1f} {b:9.1f} {b - a:9.1f}")
    print("  path B's hops (colmena_fx.latency.HOPS):")
    for hop in HOPS:
        if hop.name in fed_parts:
            print(f"    {hop.name:<40} {'':>9} {fed_parts[hop.name]:9.1f}")

    print()
    print("CPU per task during the bursts (us), by process:")
    raw_roles = raw.cpu.per_task_us(raw.cpu.roles)
    fed_roles = fed.cpu.per_task_us(fed.cpu.roles)
    print(f"  {'process':<30} {'A':>9} {'B':>9} {'B-A':>9}")
    for role in ROLES:
        a, b = raw_roles.get(role, 0.0), fed_roles.get(role, 0.0)
        if a or b:
            name = "client (and the engine in A)" if role == "client" else role
            print(f"  {name:<30} {a:9.1f} {b:9.1f} {b - a:9.1f}")
    total_a, total_b = sum(raw_roles.values()), sum(fed_roles.values())
    print(f"  {'total':<30} {total_a:9.1f} {total_b:9.1f} {total_b - total_a:9.1f}")
    print("CPU per task during the bursts (us), by thread of this client process:")
    for figures in (raw, fed):
        threads = figures.cpu.per_task_us(figures.cpu.threads)
        busy = sorted(
            ((name, us) for name, us in threads.items() if us >= 0.5),
            key=lambda kv: -kv[1],
        )
        listed = ", ".join(f"{name} {us:.1f}" for name, us in busy)
        print(f"  {figures.label}: {listed}")


def print_profile(report: dict[str, Any]) -> None:
    print()
    print("Profile of path B's client threads (cProfile in thread CPU time). The")
    print("profiler inflates every call: 'est' scales each function's share of the")
    print("profile to the thread's CPU per task measured without the profiler.")
    for name, table in report.items():
        scope = "the burst" if name == threading.main_thread().name else "its life"
        print(
            f"\n  thread {name} (profiled over {scope}, {table['tasks']} tasks): "
            f"{table['measured_us_per_task']} us/task measured, "
            f"{table['profiled_us_per_task']} us/task profiled"
        )
        for title, key in (
            ("self time", "top_self"),
            ("cumulative time, colmena_fx functions", "top_cumulative_colmena_fx"),
        ):
            print(f"    {'est us':>8} {'prof us':>8} {'calls':>6}  {title}")
            for row in table[key]:
                est = row["est_us_per_task"]
                est_text = f"{est:8.2f}" if est is not None else f"{'-':>8}"
                print(
                    f"    {est_text} {row['profiled_us_per_task']:8.2f} "
                    f"{row['calls_per_task']:6.2f}  {row['function']}"
                )


# -- main ------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> Settings:
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
        help=f"round trips per repeat (default {NORMAL['rtt_samples']})",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        help=f"repeats of each measurement (default {NORMAL['repeats']})",
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
        help="which path runs first (default %(default)s); 'ba' checks that the "
        "order does not bias the ratios",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="afterwards, profile path B's client threads on a fresh federation",
    )
    parser.add_argument(
        "--profile-top", type=int, default=15, help="functions listed per thread"
    )
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else NORMAL
    settings = Settings(
        tasks=args.tasks or defaults["tasks"],
        rtt_samples=args.rtt_samples or defaults["rtt_samples"],
        repeats=args.repeats or defaults["repeats"],
        warmup=args.warmup or defaults["warmup"],
        site=args.site.resolve(),
        order=args.order,
        profile=args.profile,
        profile_top=args.profile_top,
    )
    for name in ("tasks", "rtt_samples", "repeats", "warmup", "profile_top"):
        if getattr(settings, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not settings.site.exists():
        parser.error(f"no site file {settings.site}")
    return settings


def prepare_environment() -> Callable[[], None]:
    """Make the engine's commands and `benchmarks._tasks` reachable; return noop.

    The engine starts its interchange and worker pool by command name, so the
    virtualenv's bin goes first on PATH; workers run in the engine's run
    directory, so the repository root goes on their PYTHONPATH (and on ours, for
    when this file runs as a script).
    """
    bin_dir = os.path.dirname(sys.executable)
    os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    python_path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), *python_path])
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    tasks = importlib.import_module("benchmarks._tasks")
    return tasks.noop


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s"
    )
    noop = prepare_environment()
    machine = machine_info()
    progress(
        f"{machine['cpu_usable']} usable cores, Python {machine['python']}, "
        f"load {machine['load_avg']}; {settings.tasks} tasks x {settings.repeats} "
        f"repeats"
    )
    wall = time.perf_counter()
    if settings.order == "ab":
        raw = measure(RawEngine(settings.site, noop), settings)
        fed = measure(FederationPath(settings.site, noop), settings)
    else:
        fed = measure(FederationPath(settings.site, noop), settings)
        raw = measure(RawEngine(settings.site, noop), settings)
    profile = profile_federation(settings, noop, fed.cpu) if settings.profile else None

    print_report(raw, fed, settings)
    if profile is not None:
        print_profile(profile)
    throughput_ratio = fed.throughput_median / raw.throughput_median
    rtt_ratio = fed.rtt_median / raw.rtt_median
    summary: dict[str, Any] = {
        "benchmark": "overhead",
        "throughput_ratio": round(throughput_ratio, 4),
        "rtt_ratio": round(rtt_ratio, 4),
        "targets": {
            "throughput_ratio_min": TARGET_THROUGHPUT_RATIO,
            "rtt_ratio_max": TARGET_RTT_RATIO,
            "met": throughput_ratio >= TARGET_THROUGHPUT_RATIO
            and rtt_ratio <= TARGET_RTT_RATIO,
        },
        "raw": raw.summary(),
        "colmena_fx": fed.summary(),
        "settings": {
            "tasks": settings.tasks,
            "rtt_samples": settings.rtt_samples,
            "repeats": settings.repeats,
            "warmup": settings.warmup,
            "order": settings.order,
            "site": str(settings.site.relative_to(REPO))
            if settings.site.is_relative_to(REPO)
            else str(settings.site),
        },
        "machine": machine,
        "wall_s": round(time.perf_counter() - wall, 1),
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if profile is not None:
        summary["profile"] = {
            name: {
                "measured_us_per_task": table["measured_us_per_task"],
                "top_self": [
                    {key: row[key] for key in ("function", "est_us_per_task")}
                    for row in table["top_self"][:5]
                ],
            }
            for name, table in profile.items()
        }
    print(json.dumps(summary, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
