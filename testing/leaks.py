"""Find what a test left behind in the test process: threads, children, global state.

A federation or endpoint that a test forgets to stop keeps threads and processes
running into the next tests, and the libraries colmena-fx builds on keep state per
process (the Globus Compute SDK's remembered task group, executors and result
watchers; ProxyStore's registry of stores). Such leaks make later tests fail or pass
for reasons of their own, so the suite checks after every test, as ProxyStore's own
suite does for its stores, and names what leaked.

`snapshot()` before the test and `check(before)` after it. `check` also undoes what
it found where it can (resets the SDK's globals, unregisters stores, kills leaked
children), so one leaky test is reported once and not again by every later test.

Servers that session fixtures keep for the whole session (the RabbitMQ broker of
`testing.gcservice.fixtures`) register with `keep_for_session`; they and everything
they start are not leaks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass

import proxystore.store
import psutil
from globus_compute_sdk import Executor
from globus_compute_sdk.sdk import executor as sdk_executor

from colmena_fx.data.stores import DataFactory

#: colmena-fx names every thread it starts so.
THREAD_PREFIX = "cfx-"
#: How long threads and processes that are already stopping get to finish.
GRACE_S = 5.0

#: Signals whose handlers a test must leave as it found them: a handler left behind
#: swallows Ctrl-C (or a stop) in every later test and in the process's own use.
SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: Pids of processes kept for the whole session, with their descendants.
_session_roots: set[int] = set()

#: A process by pid and start time: a pid alone may be reused by a later process.
_ProcessKey = tuple[int, float]


def keep_for_session(pid: int) -> None:
    """Exempt a session fixture's server (and whatever it starts) from the check."""
    _session_roots.add(pid)


@dataclass(frozen=True)
class Snapshot:
    """What already existed before the test: only what appears after is its own."""

    threads: frozenset[threading.Thread]
    children: frozenset[_ProcessKey]
    handlers: tuple[object, ...] = ()
    #: `DataFactory.listeners`: those of a session fixture's federation.
    listeners: tuple[object, ...] = ()


def _key(process: psutil.Process) -> _ProcessKey:
    return process.pid, process.create_time()


def _descendants() -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return psutil.Process().children(recursive=True)
    return []


def _session_pids() -> set[int]:
    """The session servers and everything below them, as far as they still run."""
    pids: set[int] = set()
    for pid in list(_session_roots):
        try:
            root = psutil.Process(pid)
            pids.add(pid)
            pids.update(child.pid for child in root.children(recursive=True))
        except psutil.NoSuchProcess:
            _session_roots.discard(pid)
        except psutil.Error:
            continue
    return pids


def snapshot() -> Snapshot:
    keys = set()
    for child in _descendants():
        with contextlib.suppress(psutil.Error):
            keys.add(_key(child))
    handlers = tuple(signal.getsignal(signum) for signum in SIGNALS)
    return Snapshot(
        frozenset(threading.enumerate()),
        frozenset(keys),
        handlers,
        tuple(DataFactory.listeners),
    )


def _deadline(grace_s: float) -> float:
    return time.monotonic() + grace_s


# -- threads ---------------------------------------------------------------------------


def leaked_threads(before: Snapshot, grace_s: float = GRACE_S) -> list[str]:
    """`cfx-` threads started during the test and still alive after `grace_s`."""
    deadline = _deadline(grace_s)
    new = [
        thread
        for thread in threading.enumerate()
        if thread.name.startswith(THREAD_PREFIX)
        and thread not in before.threads
        and thread is not threading.current_thread()
    ]
    for thread in new:  # those already stopping end well within the grace period
        thread.join(max(0.0, deadline - time.monotonic()))
    return [
        f"thread {thread.name!r} (daemon={thread.daemon}) is still running"
        for thread in new
        if thread.is_alive()
    ]


# -- child processes -------------------------------------------------------------------


def _describe(process: psutil.Process) -> str:
    try:
        command = " ".join(process.cmdline()) or process.name()
    except psutil.Error:
        command = "?"
    return f"pid {process.pid}: {command}"


def _is_zombie(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def leaked_children(
    before: Snapshot, grace_s: float = GRACE_S, clean_up: bool = True
) -> list[str]:
    """Descendants started during the test and still alive after `grace_s`, and
    children that exited but were never waited for (zombies).

    With `clean_up`, the live ones are killed and every one is reaped afterwards.
    """
    exempt = _session_pids()
    new: list[psutil.Process] = []
    for process in _descendants():
        try:
            if process.pid not in exempt and _key(process) not in before.children:
                new.append(process)
        except psutil.NoSuchProcess:
            continue
    if not new:
        return []
    me = os.getpid()
    # A direct child that already exited and nobody reaped: the test (or the code
    # it ran) dropped its Popen without waiting. Waiting for it here would reap it
    # and hide that, so it is reported as it is.
    unreaped = [p for p in new if _is_zombie(p) and _parent(p) == me]
    running = [p for p in new if p not in unreaped]
    _gone, alive = psutil.wait_procs(running, timeout=grace_s)
    alive = [p for p in alive if not _is_zombie(p)]
    problems = [f"child process {_describe(p)} is still running" for p in alive]
    problems += [
        f"child process pid {p.pid} exited but was never waited for (a zombie)"
        for p in unreaped
    ]
    if clean_up:
        for process in alive:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(alive + unreaped, timeout=grace_s)
    return problems


def _parent(process: psutil.Process) -> int | None:
    try:
        return process.ppid()
    except psutil.Error:
        return None


# -- process-global state of libraries -------------------------------------------------


def leaked_stores(clean_up: bool = True) -> list[str]:
    """ProxyStore stores still registered in this process (unregistered if asked)."""
    with proxystore.store._stores_lock:
        names = sorted(proxystore.store._stores)
    if clean_up:
        for name in names:
            store = proxystore.store.get_store(name)
            if store is not None:
                proxystore.store.unregister_store(store)
                with contextlib.suppress(Exception):
                    store.close()
    return [f"ProxyStore store {name!r} is still registered" for name in names]


def leaked_sdk_state(clean_up: bool = True) -> list[str]:
    """The Globus Compute SDK's per-process state: the task group it hands every
    new executor, executors not shut down, and result watchers still running."""
    problems = []
    group = Executor._default_task_group_id
    if group is not None:
        problems.append(
            f"globus_compute_sdk.Executor._default_task_group_id is {group} "
            "(a stock SDK executor was given a task group; reset it after the test)"
        )
    executors = list(sdk_executor._REGISTERED_EXECUTORS.values())
    problems += [
        f"SDK executor {executor!r} was never shut down" for executor in executors
    ]
    watchers = [
        (group_id, watcher)
        for group_id, watcher in list(sdk_executor._RESULT_WATCHERS.items())
        if watcher.is_alive()
    ]
    problems += [
        f"SDK result watcher of task group {group_id} is still running: {watcher!r}"
        for group_id, watcher in watchers
    ]
    if clean_up:
        Executor._default_task_group_id = None
        for executor in executors:
            with contextlib.suppress(Exception):
                executor.shutdown(wait=False, cancel_futures=True)  # type: ignore[no-untyped-call]
            sdk_executor._REGISTERED_EXECUTORS.pop(id(executor), None)
        for group_id, watcher in watchers:
            with contextlib.suppress(Exception):
                watcher.shutdown(wait=False, cancel_futures=True)  # type: ignore[no-untyped-call]
            sdk_executor._RESULT_WATCHERS.pop(group_id, None)
    return problems


def leaked_data_listeners(
    before: Snapshot | None = None, clean_up: bool = True
) -> list[str]:
    """Resolve listeners of data managers whose federation was never stopped;
    those already there `before` (a session fixture's federation) are not."""
    kept = () if before is None else before.listeners
    listeners = [fn for fn in DataFactory.listeners if fn not in kept]
    if clean_up:
        for listener in listeners:
            DataFactory.listeners.remove(listener)
    return [
        f"DataFactory.listeners still holds {listener!r} (a federation with a "
        "data block was not stopped)"
        for listener in listeners
    ]


def changed_signal_handlers(before: Snapshot, clean_up: bool = True) -> list[str]:
    """Signal handlers the test installed and left (restored if asked)."""
    problems = []
    for signum, handler in zip(SIGNALS, before.handlers, strict=False):
        now = signal.getsignal(signum)
        if now is not handler:
            name = signal.Signals(signum).name
            problems.append(f"the {name} handler is now {now!r}, was {handler!r}")
            if clean_up:
                signal.signal(signum, handler)  # type: ignore[arg-type]
    return problems


def check(before: Snapshot, grace_s: float = GRACE_S) -> list[str]:
    """Everything the test left behind, one line each; undone where possible."""
    return [
        *leaked_threads(before, grace_s),
        *leaked_children(before, grace_s),
        *leaked_stores(),
        *leaked_sdk_state(),
        *leaked_data_listeners(before),
        *changed_signal_handlers(before),
    ]
