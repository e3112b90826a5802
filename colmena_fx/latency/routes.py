"""Where a run's tasks were routed and how its sites fared, read from its journal.

Two kinds of facts, as typed rows for `summary` and the report to render:

- per site and routing policy, the attempts sent there (resends among them), the
  attempts lost there, the tasks that finished there successfully and, for
  `fastest`, the median predicted time to the result next to the median measured
  round trip (`sent` to `received`, both on the client's clock) of those tasks;
- every change of a site's health, timed from the run's start.

Journals written before routing policies and health existed hold none of these
events: both lists are then empty.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import TypeGuard

from colmena_fx.journal import read_journal
from colmena_fx.latency.tasks import CLIENT_RESTART
from colmena_fx.models import Stamp

#: The policy whose choices come with a prediction to check.
PREDICTING = "fastest"

_SENT, _RECEIVED = Stamp.SENT.value, Stamp.RECEIVED.value
_SEQUENCES = (list, tuple)


@dataclass(frozen=True)
class RoutingRow:
    """One routing policy's work at one site."""

    site: str
    policy: str
    #: Attempts sent to the site by this policy (`submitted` lines).
    sent: int
    #: Of those, resends of a task whose earlier attempt was lost (retries > 0).
    resends: int
    #: Attempts at the site lost and resent (`retried` lines, except those resent
    #: because the client restarted).
    lost: int
    #: Tasks delivered successfully whose last attempt this policy sent here.
    succeeded: int
    #: `fastest`: successful tasks with both a prediction and a round trip.
    compared: int = 0
    #: `fastest`: median predicted seconds to the result, over `compared` tasks.
    predicted_median_s: float | None = None
    #: `fastest`: median measured round trip of the same tasks.
    measured_median_s: float | None = None


@dataclass(frozen=True)
class HealthRow:
    """A site's health from `at_s` on, until its next change."""

    site: str
    health: str
    #: Seconds since the run started (its `run` line), client clock.
    at_s: float
    #: Until the site's next change; for its last, until the journal's last line.
    duration_s: float
    #: Whether this is the site's last change (`duration_s` a lower bound).
    until_end: bool
    reason: str


@dataclass(frozen=True)
class RoutingFacts:
    routing: list[RoutingRow]
    health: list[HealthRow]


def read_routing_facts(run_dir: Path) -> RoutingFacts:
    """The routing and health facts of the run in `run_dir`."""
    return routing_facts(read_journal(run_dir))


def routing_facts(entries: Iterable[dict[str, Any]]) -> RoutingFacts:
    """The routing and health facts of a run's journal lines, oldest first."""
    collector = RoutingFactsCollector()
    for entry in entries:
        collector.add(entry)
    return collector.facts()


class _Tally:
    def __init__(self) -> None:
        self.sent = 0
        self.resends = 0
        self.lost = 0
        self.succeeded = 0
        self.predicted: list[float] = []
        self.measured: list[float] = []


class RoutingFactsCollector:
    """Folds journal lines into tallies; lines it cannot read are left out.

    Fed one line at a time (`add`), beside other readers in one pass.
    """

    def __init__(self) -> None:
        self.start_ns: int | None = None
        self.last_ns: int | None = None
        self.sites: list[str] = []  # as the run line declares them
        self.tallies: dict[tuple[str, str], _Tally] = {}
        #: (site, health, at_s, reason), in journal order.
        self.changes: list[tuple[str, str, float, str]] = []
        self.health_now: dict[str, str] = {}

    def add(self, entry: dict[str, Any]) -> None:
        task, time_ns = entry.get("task"), entry.get("time_ns")
        if not isinstance(task, dict) or not isinstance(time_ns, int):
            return
        self.line(entry.get("event"), task, time_ns)

    def line(self, event: object, task: dict[str, Any], time_ns: int) -> None:
        """`add` for a line already checked: its task a dict, its time an int."""
        if self.start_ns is None:  # the run line, or the first line of an old run
            self.start_ns = time_ns
        last = self.last_ns
        if not last or time_ns > last:  # max(time_ns, last or time_ns)
            self.last_ns = time_ns
        if event == "submitted" or event == "retried":
            self._attempt(event, task)
        elif event == "delivered":
            self._delivered(task)
        elif event == "run":
            self.start_ns = time_ns
            self.sites = [str(site) for site in task.get("sites") or {}]
        elif event == "health":
            self._health(task, time_ns)

    def _tally(self, site: object, policy: object) -> _Tally | None:
        if not isinstance(site, str) or not isinstance(policy, str):
            return None  # an old journal's line, or a task never sent
        tally = self.tallies.get((site, policy))
        if tally is None:
            tally = self.tallies[site, policy] = _Tally()
        return tally

    def _attempt(self, event: object, task: dict[str, Any]) -> None:
        tally = self._tally(task.get("site"), task.get("policy"))
        if tally is None:
            return
        if event == "retried":
            # resent because the client restarted: the site lost nothing
            if task.get("reason") != CLIENT_RESTART:
                tally.lost += 1
            return
        tally.sent += 1
        retries = task.get("retries")
        if _is_number(retries) and retries > 0:
            tally.resends += 1

    def _delivered(self, task: dict[str, Any]) -> None:
        routing = task.get("routing")
        if not isinstance(routing, dict) or task.get("success") is not True:
            return
        policy = routing.get("policy")
        tally = self._tally(task.get("site"), policy)
        if tally is None:
            return
        tally.succeeded += 1
        if policy != PREDICTING:
            return
        predicted = routing.get("predicted_s")
        if not _is_number(predicted):
            return
        measured = _round_trip_s(task.get("timeline"))
        if measured is not None:
            tally.predicted.append(float(predicted))
            tally.measured.append(measured)

    def _health(self, task: dict[str, Any], time_ns: int) -> None:
        site, health = task.get("site"), task.get("health")
        if not isinstance(site, str) or not isinstance(health, str):
            return
        start_s = (self.start_ns or time_ns) / 1e9
        since = task.get("since")
        # A change of reason alone keeps its state's `since`: it happened now.
        if _is_number(since) and self.health_now.get(site) != health:
            at_s = float(since) - start_s
        else:
            at_s = time_ns / 1e9 - start_s
        self.health_now[site] = health
        self.changes.append((site, health, at_s, str(task.get("reason") or "")))

    def facts(self) -> RoutingFacts:
        return RoutingFacts(self.routing_rows(), self.health_rows())

    def routing_rows(self) -> list[RoutingRow]:
        rank = {site: i for i, site in enumerate(self.sites)}
        keys = sorted(
            self.tallies, key=lambda k: (rank.get(k[0], len(rank)), k[0], k[1])
        )
        rows = []
        for site, policy in keys:
            tally = self.tallies[site, policy]
            rows.append(
                RoutingRow(
                    site=site,
                    policy=policy,
                    sent=tally.sent,
                    resends=tally.resends,
                    lost=tally.lost,
                    succeeded=tally.succeeded,
                    compared=len(tally.measured),
                    predicted_median_s=_median(tally.predicted),
                    measured_median_s=_median(tally.measured),
                )
            )
        return rows

    def health_rows(self) -> list[HealthRow]:
        end_s = ((self.last_ns or 0) - (self.start_ns or 0)) / 1e9
        rows: list[HealthRow] = []
        next_at: dict[str, float] = {}  # each site's next change, walking back
        for site, health, at_s, reason in reversed(self.changes):
            until = next_at.get(site)
            rows.append(
                HealthRow(
                    site=site,
                    health=health,
                    at_s=at_s,
                    duration_s=max(0.0, (end_s if until is None else until) - at_s),
                    until_end=until is None,
                    reason=reason,
                )
            )
            next_at[site] = at_s
        return rows[::-1]


def _round_trip_s(timeline: object) -> float | None:
    """Seconds from the last `sent` to the last `received` of a recorded timeline."""
    if not isinstance(timeline, dict):
        return None
    sent = received = None
    for event in timeline.get("events") or ():
        if isinstance(event, _SEQUENCES) and len(event) >= 2:
            name = event[0]
            if name == _SENT:
                time_ns = event[1]
                if isinstance(time_ns, int):
                    sent = time_ns
            elif name == _RECEIVED:
                time_ns = event[1]
                if isinstance(time_ns, int):
                    received = time_ns
    if sent is None or received is None or received < sent:
        return None
    return (received - sent) / 1e9


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None
