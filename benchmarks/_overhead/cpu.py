"""CPU time per task during the bursts, by process of the run and by client thread.

On a machine with few cores the burst throughput is bound by the CPU that every
process spends per task, so these figures explain the throughput ratio and show
where colmena-fx spends its time without the distortion of a profiler. The
processes (this client, the endpoint, the interchange, the worker pool and its
workers) are sampled with psutil before and after each burst; so are the
threads of this client, and the threads that start and end inside the burst (the
thinker's agents) are clocked from their own CPU clock by a thread hook.
"""

from __future__ import annotations

import copy
import os
import re
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import psutil

from benchmarks._overhead.threads import hooked_threads

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


def _clean(name: str) -> str:
    # Some names end in an object id, which would split one thread into many keys.
    return re.sub(r"-\d{6,}$", "", name)


def _thread_name(tid: int, names: dict[int, str]) -> str:
    """The Python name of a thread of this process, else its kernel name."""
    name = names.get(tid)
    if name is None:
        try:
            name = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
        except OSError:
            name = f"thread-{tid}"
    return _clean(name)


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

    def busy_threads_us(self) -> dict[str, float]:
        """Microseconds per task of each client thread, busiest first, idle ones out."""
        per_task = self.per_task_us(self.threads)
        return {
            name: us
            for name, us in sorted(per_task.items(), key=lambda kv: -kv[1])
            if us >= 0.5  # idle threads (atexit, reaper, pollers)
        }

    def summary(self) -> dict[str, Any]:
        roles = self.per_task_us(self.roles)
        return {
            "tasks": self.tasks,
            "total_us_per_task": round(sum(roles.values()), 1),
            "by_process_us_per_task": roles,
            "client_threads_us_per_task": self.busy_threads_us(),
        }


def _add(table: dict[str, float], key: str, seconds: float) -> None:
    table[key] = table.get(key, 0.0) + seconds


class _EndedThreads:
    """CPU seconds of the threads that start and end while it is open, by name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.open = True
        self._lock = threading.Lock()

    def clock(self, thread: threading.Thread, run: Callable[[], None]) -> None:
        started = time.thread_time()
        try:
            run()
        finally:
            spent = time.thread_time() - started
            with self._lock:
                if self.open:  # else the closing sample saw it alive
                    _add(self.seconds, _clean(thread.name), spent)

    def close(self) -> dict[str, float]:
        with self._lock:
            self.open = False
            return dict(self.seconds)


class CpuMonitor:
    """Samples the CPU time of every process of one path and of this client's threads.

    Both paths are alive during the whole measurement and both start child
    processes of this one, so "this process's descendants" would mix them up.
    A path's processes are therefore: this process, the children it started
    (`children`: the pids that `start()` added, the raw engine's interchange or
    the federation's endpoint), the processes whose command line names the
    path's run directory (the worker pool, which the provider detaches), and the
    descendants of all of these (the endpoint's interchange, the workers). They
    are found once, after the warm-up. This process's threads are sampled whole:
    the other path's idle threads in it count too, which is what they cost.
    """

    def __init__(self, run_dir: Path, children: set[int]) -> None:
        self.run_dir = str(run_dir)
        self.children = children
        self.me = os.getpid()
        self.processes: dict[int, tuple[psutil.Process, str]] = {}
        self.tally = CpuTally()

    def discover(self) -> None:
        me = psutil.Process(self.me)
        roots = [child for child in me.children() if child.pid in self.children]
        for proc in psutil.process_iter(["cmdline"]):
            command = proc.info["cmdline"] or []
            if proc.pid != self.me and any(self.run_dir in arg for arg in command):
                roots.append(proc)
        found = {me.pid: me}
        for root in roots:
            found[root.pid] = root
            try:
                found.update(
                    {child.pid: child for child in root.children(recursive=True)}
                )
            except psutil.Error:
                continue
        self.processes = {
            pid: (proc, _role(proc, self.me)) for pid, proc in found.items()
        }

    def twin(self) -> CpuMonitor:
        """A monitor of the same processes with a tally of its own."""
        other = copy.copy(self)
        other.tally = CpuTally()
        return other

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
            _add(threads, name, thread.user_time + thread.system_time)
        return cpu, threads

    @contextmanager
    def measuring(self, tasks: int) -> Iterator[None]:
        """Add the CPU spent inside the block to the tally, for `tasks` tasks."""
        ended = _EndedThreads()
        with hooked_threads(ended.clock):
            before_cpu, before_threads = self._sample()
            yield
            short_lived = ended.close()
            after_cpu, after_threads = self._sample()
        self.tally.tasks += tasks
        for pid, spent in after_cpu.items():
            if pid in before_cpu:
                role = self.processes[pid][1]
                _add(self.tally.roles, role, spent - before_cpu[pid])
        for name, spent in after_threads.items():
            _add(self.tally.threads, name, spent - before_threads.get(name, 0.0))
        for name, spent in short_lived.items():
            _add(self.tally.threads, name, spent)
