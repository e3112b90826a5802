"""A method on several local sites when one fails: nothing lost, nothing spinning.

Real endpoint processes, killed and paused as a facility would fail; waits are
short by configuration (heartbeats, deadlines), never by sleeping.
"""

from __future__ import annotations

import logging
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from colmena_fx.exceptions import RunDirectoryError
from colmena_fx.exceptions import UsageError
from colmena_fx.federation import Federation
from colmena_fx.journal import JOURNAL_NAME
from colmena_fx.journal import read_journal
from colmena_fx.models import FailureKind
from colmena_fx.transports.health import Health
from colmena_fx.transports.health import HealthChange
from testing.sites import PROCESS_POOL
from testing.sites import FederationFactory
from testing.sites import collect
from testing.wait import wait_until

#: Heartbeats fast enough that a paused or dead endpoint is noticed in a second.
QUICK_LINK: dict[str, Any] = {"heartbeat_s": 0.2, "heartbeat_timeout_s": 1.0}
NO_RESTART: dict[str, Any] = {**QUICK_LINK, "restart": {"attempts": 0}}


def _method(function: str, **route: Any) -> dict[str, dict[str, Any]]:
    return {function: {"function": f"testing.tasks:{function}", **route}}


def _pid(federation: Federation, site: str) -> int:
    pid = federation.transports[site].process.pid  # type: ignore[attr-defined]
    assert pid is not None
    return int(pid)


def test_a_killed_site_mid_burst_loses_nothing_and_the_other_serves_the_rest(
    make_federation: FederationFactory,
) -> None:
    federation = make_federation(
        _method("sleep_then", sites=["a", "b"], policy="round_robin", max_retries=3),
        sites={"a": PROCESS_POOL, "b": PROCESS_POOL},
        local=NO_RESTART,
    )
    changes: list[HealthChange] = []
    federation.on_health_change(changes.append)
    ids = {federation.submit("sleep_then", 0.01, i) for i in range(300)}
    first = collect(federation, 60)
    os.kill(_pid(federation, "a"), signal.SIGKILL)
    rest = collect(federation, 240)
    results = first + rest
    assert {r.task_id for r in results} == ids  # each exactly once
    failed = [r.failure for r in results if not r.success]
    assert failed == []
    assert sorted(r.value for r in results) == list(range(300))
    retried = [r for r in rest if r.retries]
    assert retried, "the kill came after every task had finished"
    assert {r.site for r in retried} == {"b"}
    assert Counter(r.site for r in rest[-100:]) == {"b": 100}
    assert any(c.site == "a" and c.health is Health.LOST for c in changes)
    lost_lines = [
        e
        for e in read_journal(federation.run_dir)  # type: ignore[arg-type]
        if e["event"] == "health" and e["task"]["health"] == "lost"
    ]
    assert lost_lines and lost_lines[0]["task"]["site"] == "a"


def test_a_paused_site_is_routed_around_then_rejoins_and_gets_work(
    make_federation: FederationFactory,
) -> None:
    federation = make_federation(
        _method("sleep_then", sites=["a", "b"], max_retries=2),  # failover: a first
        sites={"a": PROCESS_POOL, "b": PROCESS_POOL},
        local=QUICK_LINK,
    )
    pid = _pid(federation, "a")
    federation.submit("sleep_then", 0.0, "before")
    assert collect(federation, 1)[0].site == "a"
    os.kill(pid, signal.SIGSTOP)
    try:
        held = federation.submit("sleep_then", 0.5, "held")
        a = federation.transports["a"].health
        wait_until(lambda: a.health is Health.LOST, 10, "site a declared lost")
        during = federation.submit("sleep_then", 0.0, "during")
        results = {r.task_id: r for r in collect(federation, 2)}
        assert results[held].success and results[held].site == "b"
        assert results[held].retries == 1
        assert results[during].site == "b"
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: a.health is Health.UP, 10, "site a back up")
    federation.submit("sleep_then", 0.0, "after")
    after = collect(federation, 1)[0]
    assert after.success and after.site == "a"
    assert after.routing is not None and after.routing.policy == "failover"


def test_retries_on_a_dead_site_wait_for_it_then_fail_naming_it_without_spinning(
    make_federation: FederationFactory,
) -> None:
    federation = make_federation(
        _method("sleep_then", site="cpu", max_retries=10000, deadline_s=1.5),
        local=NO_RESTART,
    )
    ids = {federation.submit("sleep_then", 30) for _ in range(5)}
    wait_until(lambda: federation.status()[0].in_flight == 5, 10, "5 tasks sent")
    os.kill(_pid(federation, "cpu"), signal.SIGKILL)
    results = collect(federation, 5, timeout=30)
    assert {r.task_id for r in results} == ids
    for result in results:
        assert result.failure is not None
        assert result.failure.exception_type == "NoUsableSiteError"
        assert "site 'cpu' is lost" in result.failure.message
        assert "deadline_s" in result.failure.message
        assert result.retries == 1  # then it waited: no resubmission storm
    # A new task waits as well, and fails the same way.
    federation.submit("sleep_then", 0)
    late = collect(federation, 1)[0]
    assert (
        late.failure is not None and late.failure.exception_type == "NoUsableSiteError"
    )
    sent = [e for e in read_journal(federation.run_dir) if e["event"] == "submitted"]  # type: ignore[arg-type]
    assert len(sent) == 5


def test_a_lost_task_is_resent_to_its_restarted_site(
    make_federation: FederationFactory,
) -> None:
    federation = make_federation(
        _method("sleep_then", site="cpu", max_retries=2),
        local={**QUICK_LINK, "restart": {"backoff_initial_s": 0.1}},
    )
    task_id = federation.submit("sleep_then", 1.0, "done")
    wait_until(lambda: federation.status()[0].in_flight == 1, 10, "the task sent")
    os.kill(_pid(federation, "cpu"), signal.SIGKILL)
    result = collect(federation, 1)[0]
    assert result.task_id == task_id
    assert result.success, result.failure
    assert result.value == "done" and result.retries == 1


def test_a_task_past_its_timeout_fails_as_such_and_its_worker_is_freed(
    make_federation: FederationFactory,
) -> None:
    federation = make_federation(
        _method("sleep_then", site="cpu", timeout_s=1.0),
        sites={"cpu": {"type": "ProcessPoolEngine", "max_workers": 1}},
    )
    slow = federation.submit("sleep_then", 60, "never")
    result = collect(federation, 1, timeout=30)[0]
    assert result.task_id == slow and result.success is False
    assert result.failure is not None and result.failure.kind is FailureKind.TIMEOUT
    assert "timeout_s of 1 s" in result.failure.message
    # The worker stopped the function at its deadline: the one worker is free.
    quick = federation.submit("sleep_then", 0.0, "next", timeout_s=30)
    after = collect(federation, 1, timeout=30)[0]
    assert after.task_id == quick and after.success and after.value == "next"


def test_the_timeout_of_a_submit_overrides_the_methods(
    make_federation: FederationFactory,
) -> None:
    federation = make_federation(_method("sleep_then", site="cpu"))
    federation.submit("sleep_then", 60, timeout_s=0.5)
    result = collect(federation, 1, timeout=30)[0]
    assert result.failure is not None and result.failure.kind is FailureKind.TIMEOUT
    with pytest.raises(UsageError, match="timeout_s must be a positive number"):
        federation.submit("sleep_then", 0, timeout_s=0)


def test_what_the_journal_cannot_hold_is_refused_at_submit(
    make_federation: FederationFactory,
) -> None:
    federation = make_federation(_method("echo", site="cpu"))
    with pytest.raises(UsageError, match=r"task_info\['x'\] is a ndarray.*tolist"):
        federation.submit("echo", 1, task_info={"x": np.arange(3)})
    with pytest.raises(UsageError, match="topic must be a string, not int"):
        federation.submit("echo", 1, topic=3)  # type: ignore[arg-type]
    assert federation.in_flight() == []
    federation.submit("echo", 2, task_info={"x": [0, 1, 2]})
    result = collect(federation, 1)[0]
    assert result.success and result.value == 2


def _journal_onto_a_full_disk(run_dir: Path) -> None:
    """Point the journal's open file at /dev/full, where every write fails ENOSPC."""
    journal = str(run_dir / JOURNAL_NAME)
    full = os.open("/dev/full", os.O_WRONLY)
    try:
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target == journal:
                os.dup2(full, int(fd))
                return
    finally:
        os.close(full)
    raise AssertionError(f"the journal {journal} is not open")


def test_a_journal_that_cannot_write_fails_loudly_but_results_still_arrive(
    make_federation: FederationFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    federation = make_federation(_method("echo", site="cpu"))
    assert federation.run_dir is not None and federation.journal is not None
    _journal_onto_a_full_disk(federation.run_dir)
    for i in range(3):
        federation.submit("echo", i)
    assert sorted(r.value for r in collect(federation, 3)) == [0, 1, 2]
    journal = federation.journal
    wait_until(lambda: journal.error is not None, 10, "the journal's write failing")
    with pytest.raises(RunDirectoryError, match=r"cannot write the journal.*No space"):
        federation.submit("echo", 4)
    with pytest.raises(RunDirectoryError):
        federation.stop()
    said = [r for r in caplog.records if "cannot write the journal" in r.getMessage()]
    assert len(said) == 1
