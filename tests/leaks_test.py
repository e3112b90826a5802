"""The leak checker run after every test: it names what was left behind.

These call the checker's functions directly, on leaks made on purpose, and then
let the checker undo them, so the suite's own check after each test stays clean.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid

import pytest
from globus_compute_sdk import Executor
from proxystore.connectors.local import LocalConnector
from proxystore.store import get_store
from proxystore.store import register_store
from proxystore.store.base import Store

from colmena_fx.data.stores import DataFactory
from testing import leaks
from testing.wait import wait_until

_SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def test_a_cfx_thread_left_running_is_named() -> None:
    before = leaks.snapshot()
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="cfx-left-behind", daemon=True)
    thread.start()
    try:
        problems = leaks.leaked_threads(before, grace_s=0.1)
    finally:
        release.set()
        thread.join()
    assert problems == ["thread 'cfx-left-behind' (daemon=True) is still running"]


def test_a_thread_that_is_stopping_gets_its_grace_period() -> None:
    before = leaks.snapshot()
    release = threading.Event()
    stopping = threading.Thread(target=release.wait, name="cfx-stopping")
    other = threading.Thread(target=release.wait, name="not-ours", daemon=True)
    stopping.start()
    other.start()
    threading.Timer(0.2, release.set).start()  # it ends during the grace period
    assert leaks.leaked_threads(before, grace_s=10) == []
    other.join()


def test_threads_from_before_the_test_are_not_its_leaks() -> None:
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="cfx-older", daemon=True)
    thread.start()
    before = leaks.snapshot()
    try:
        assert leaks.leaked_threads(before, grace_s=0.1) == []
    finally:
        release.set()
        thread.join()


def test_a_registered_store_is_named_and_unregistered() -> None:
    register_store(Store("left-registered", LocalConnector()))
    assert leaks.leaked_stores() == [
        "ProxyStore store 'left-registered' is still registered"
    ]
    assert get_store("left-registered") is None
    assert leaks.leaked_stores() == []


def test_the_sdk_task_group_is_named_and_reset() -> None:
    group = uuid.uuid4()
    Executor._default_task_group_id = group
    problems = leaks.leaked_sdk_state()
    assert len(problems) == 1 and str(group) in problems[0]
    assert Executor._default_task_group_id is None


def test_a_data_listener_is_named_and_removed() -> None:
    def listener(factory: DataFactory, started_ns: int, ended_ns: int) -> None: ...

    DataFactory.listeners.append(listener)
    problems = leaks.leaked_data_listeners()
    assert len(problems) == 1 and "listener" in problems[0]
    assert DataFactory.listeners == []


def test_a_data_listener_from_before_the_test_is_not_a_leak() -> None:
    def kept(factory: DataFactory, started_ns: int, ended_ns: int) -> None: ...
    def new(factory: DataFactory, started_ns: int, ended_ns: int) -> None: ...

    DataFactory.listeners.append(kept)  # a module fixture's federation
    try:
        before = leaks.snapshot()
        DataFactory.listeners.append(new)
        problems = leaks.leaked_data_listeners(before)
        assert len(problems) == 1 and "new" in problems[0]
        assert DataFactory.listeners == [kept]
    finally:
        for listener in (kept, new):
            if listener in DataFactory.listeners:
                DataFactory.listeners.remove(listener)


def test_a_signal_handler_left_behind_is_named_and_restored() -> None:
    before = leaks.snapshot()
    found = signal.getsignal(signal.SIGINT)  # SIG_IGN when started in the background
    signal.signal(signal.SIGINT, lambda _signum, _frame: None)
    [problem] = leaks.changed_signal_handlers(before)
    assert "SIGINT handler" in problem
    assert signal.getsignal(signal.SIGINT) is found
    assert leaks.changed_signal_handlers(before) == []


def test_a_child_left_running_is_named_and_killed() -> None:
    before = leaks.snapshot()
    child = subprocess.Popen(_SLEEPER)
    try:
        problems = leaks.leaked_children(before, grace_s=0.1)
        assert problems == [
            f"child process pid {child.pid}: {' '.join(_SLEEPER)} is still running"
        ]
        assert child.poll() is not None, "it was not killed"
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


def test_a_child_that_exits_during_the_grace_period_is_no_leak() -> None:
    before = leaks.snapshot()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    try:
        assert leaks.leaked_children(before, grace_s=30) == []
    finally:
        child.wait()


def test_a_child_never_waited_for_is_named() -> None:
    before = leaks.snapshot()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    # Wait for it to exit without reaping it, as a dropped Popen leaves it.
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    try:
        problems = leaks.leaked_children(before, grace_s=0.1)
        assert problems == [
            f"child process pid {child.pid} exited but was never waited for (a zombie)"
        ]
    finally:
        child.wait()


def test_children_from_before_the_test_and_session_servers_are_not_leaks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(leaks, "_session_roots", set())
    older = subprocess.Popen(_SLEEPER)
    before = leaks.snapshot()
    server = subprocess.Popen(_SLEEPER)
    try:
        leaks.keep_for_session(server.pid)
        assert leaks.leaked_children(before, grace_s=0.1) == []
    finally:
        for child in (older, server):
            child.kill()
            child.wait()


def test_wait_until_names_what_never_happened() -> None:
    with pytest.raises(AssertionError, match="the flag to rise did not happen"):
        wait_until(lambda: False, 0.05, "the flag to rise")
    flag = threading.Event()
    threading.Timer(0.05, flag.set).start()
    wait_until(flag.is_set, 10, "the timer to set the flag")
