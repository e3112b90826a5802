"""How far each remote clock is from the client's, over time, and how sure we are.

Every finished task is one NTP-style round trip for each remote host that stamped
it: the client sent it at T1 and received it at T4 (client clock); the host's first
and last stamps are T2 and T3 (its own clock). With `offset` meaning remote time
minus client time, causality bounds the offset from both sides:

    T3 - T4  <=  offset  <=  T2 - T1

`drift` fits a clock that runs at a fixed rate between steps to all those bounds;
each stamp is corrected with the offset at its own time, and its +- is the width of
what the bounds allow then. Because the estimate lies within every bound, no
corrected hop from the client to a remote host, or back, comes out negative.

The bounds cannot split a path between its two directions: a link 10 ms out and
30 ms back looks like a 20 ms symmetric one with the remote clock 10 ms off. The
estimate then errs by half the asymmetry, inside its +-, unless the site declares
the least one-way delays it measured (`ClockSetting.link_out_ms`/`link_back_ms`).

A site may instead declare its clocks synchronized (within a bound). A declaration
the round trips contradict is set aside, with a warning that names the evidence.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import replace
from typing import Any
from typing import NamedTuple

import numpy as np

from colmena_fx.clockplan import ClockPlan
from colmena_fx.clocksetting import ClockSetting
from colmena_fx.latency.clockfigures import ClockOffset
from colmena_fx.latency.clockfigures import ClockSegment
from colmena_fx.latency.clockfigures import Correction
from colmena_fx.latency.clockfit import ClockFit
from colmena_fx.latency.hops import CLIENT_STAMPS
from colmena_fx.models import Stamp


class RoundTrip(NamedTuple):
    """The four stamps of one task as seen by one remote clock (ns)."""

    sent_ns: int
    remote_first_ns: int
    remote_last_ns: int
    received_ns: int

    @property
    def delay_ns(self) -> int:
        return (self.received_ns - self.sent_ns) - (
            self.remote_last_ns - self.remote_first_ns
        )

    @property
    def lower_ns(self) -> int:
        return self.remote_last_ns - self.received_ns

    @property
    def upper_ns(self) -> int:
        return self.remote_first_ns - self.sent_ns


_SENT, _RECEIVED = Stamp.SENT.value, Stamp.RECEIVED.value


def round_trips(events: Iterable[Any]) -> dict[str, RoundTrip]:
    """One round trip per remote host from a task's events (`Event`s or lists).

    Only the last attempt counts: a retried task was sent more than once.
    """
    sent_ns = received_ns = None
    spans: dict[str, list[int]] = {}
    for name, time_ns, host in events:
        if name == _SENT:  # a new attempt: forget the previous one
            sent_ns, received_ns, spans = time_ns, None, {}
        elif name == _RECEIVED:
            received_ns = time_ns
        elif host and name not in CLIENT_STAMPS:  # "": a clock nobody named
            span = spans.get(host)
            if span is None:
                spans[host] = [time_ns, time_ns]
            elif time_ns < span[0]:
                span[0] = time_ns
            elif time_ns > span[1]:
                span[1] = time_ns
    if sent_ns is None or received_ns is None:
        return {}
    return {
        host: RoundTrip(sent_ns, first, last, received_ns)
        for host, (first, last) in spans.items()
    }


#: The endpoint's stamps just before and after a worker's, by preference: every
#: worker stamp happens after the engine took the task and before it gave it back.
_BRACKET_BEFORE = (Stamp.EXECUTION_STARTED.value, Stamp.ENDPOINT_RECEIVED.value)
_BRACKET_AFTER = (Stamp.EXECUTION_ENDED.value, Stamp.ENDPOINT_SENT.value)


def chained_trips(events: Iterable[Any]) -> dict[str, tuple[str, RoundTrip]]:
    """Per remote host other than the endpoint's: the endpoint's host, and the
    round trip of the task on the endpoint's clock (its stamps around the worker
    host's), which bounds the worker's clock against the endpoint's far tighter
    than the client's round trip does. Only the last attempt counts."""
    endpoint = ""
    stamps: dict[tuple[str, str], int] = {}
    spans: dict[str, list[int]] = {}
    for name, time_ns, host in events:
        if name == _SENT:
            endpoint, stamps, spans = "", {}, {}
        elif name == Stamp.ENDPOINT_RECEIVED.value:
            endpoint = host
        if not host or name in CLIENT_STAMPS:
            continue
        stamps[host, name] = time_ns
        span = spans.setdefault(host, [time_ns, time_ns])
        span[0], span[1] = min(span[0], time_ns), max(span[1], time_ns)
    if not endpoint:
        return {}
    before = next((stamps[endpoint, name] for name in _BRACKET_BEFORE
                   if (endpoint, name) in stamps), None)  # fmt: skip
    after = next((stamps[endpoint, name] for name in _BRACKET_AFTER
                  if (endpoint, name) in stamps), None)  # fmt: skip
    if before is None or after is None:
        return {}
    return {
        host: (endpoint, RoundTrip(before, first, last, after))
        for host, (first, last) in spans.items()
        if host != endpoint
    }


class ClockSync:
    """The offsets of every remote clock a campaign has heard from.

    A remote clock is a (site, host) pair: two sites on one machine may still run
    different clocks (one under a fake time, say), and one site spans many hosts.
    Each site's `ClockSetting` (from `plan`) says whether to estimate its clocks
    or take them as synchronized.
    """

    def __init__(self, plan: ClockPlan | None = None) -> None:
        self.plan = plan or ClockPlan()
        self._clocks: dict[tuple[str, str], ClockFit] = {}
        #: (site, worker host) -> its endpoint's host, and the worker's clock
        #: against the endpoint's.
        self._chained: dict[tuple[str, str], tuple[str, ClockFit]] = {}
        self._lock = threading.Lock()

    def observe(self, site: str, events: Sequence[Any]) -> None:
        """Learn from one finished task of `site` (cheap: the model is built lazily)."""
        trips = round_trips(events)
        if not trips:
            return
        chained = chained_trips(events) if len(trips) > 1 else {}
        with self._lock:
            for host, trip in trips.items():
                clock = self._clocks.get((site, host))
                if clock is None:
                    clock = self._clocks[site, host] = ClockFit(
                        site, host, self.plan.for_site(site)
                    )
                clock.add(trip)
            for host, (endpoint, trip) in chained.items():
                entry = self._chained.get((site, host))
                if entry is None:
                    # the link's declared delays are the client's, not the node's
                    fit = ClockFit(site, host, ClockSetting())
                    entry = self._chained[site, host] = (endpoint, fit)
                if entry[0] == endpoint:  # else: another endpoint, direct only
                    entry[1].add(trip, key_ns=trips[host].sent_ns)

    def correct(
        self, site: str, host: str, remote_ns: np.ndarray, sent_ns: np.ndarray
    ) -> Correction | None:
        """How to move remote stamps of (site, host) onto the client's clock; None
        for a clock with no round trip to estimate it from."""
        with self._lock:
            clock = self._clocks.get((site, host))
            if clock is None:
                setting = self.plan.for_site(site)
                if setting.mode != "synchronized":
                    return None
                clock = ClockFit(site, host, setting)
            direct = clock.correct(remote_ns, sent_ns)
            if direct is None or clock.synchronized:
                return direct
            return self._chain(site, host, direct, remote_ns, sent_ns)

    def _chain(
        self,
        site: str,
        host: str,
        direct: Correction,
        remote_ns: np.ndarray,
        sent_ns: np.ndarray,
    ) -> Correction:
        """A worker host's stamps through its endpoint's clock: its offset from
        the endpoint's, plus the endpoint's from the client's at that time.

        That sum is the estimate (so that hops between the two clocks carry only
        the first's +-); its +- against the client's clock is narrowed to what
        the direct estimate also allows, since the truth lies within both.
        """
        entry = self._chained.get((site, host))
        if entry is None or (site, entry[0]) not in self._clocks:
            return direct
        endpoint, fit = entry
        inner = fit.correct(remote_ns, sent_ns)
        if inner is None:
            return direct
        outer = self._clocks[site, endpoint].correct(
            remote_ns - inner.offset_ns, sent_ns
        )
        if outer is None:
            return direct
        chained = fit.owns(sent_ns)
        moved = outer.moved_ns if outer.moved_ns is not None else outer.error_ns
        offset = inner.offset_ns + outer.offset_ns
        error = inner.error_ns + outer.error_ns
        low = np.maximum(offset - error, direct.offset_ns - direct.error_ns)
        high = np.minimum(offset + error, direct.offset_ns + direct.error_ns)
        both = low <= high  # else the direct bounds were bogus: trust the chain
        error = np.where(both, np.maximum(offset - low, high - offset), error)
        return Correction(
            offset_ns=np.where(chained, offset, direct.offset_ns),
            error_ns=np.where(chained, error, direct.error_ns),
            rate_error=np.where(
                chained, inner.rate_error + outer.rate_error, direct.rate_error
            ),
            via=endpoint,
            via_error_ns=np.where(chained, inner.error_ns + moved, np.nan),
            moved_ns=direct.moved_ns,
        )

    def offset(self, site: str, host: str) -> ClockOffset | None:
        """The offset of `host` at `site`, or None before any round trip."""
        with self._lock:
            clock = self._clocks.get((site, host))
        return None if clock is None else self._describe(site, host, clock)

    def offsets(self) -> list[ClockOffset]:
        with self._lock:
            clocks = sorted(self._clocks.items())
        return [self._describe(site, host, clock) for (site, host), clock in clocks]

    def _describe(self, site: str, host: str, clock: ClockFit) -> ClockOffset:
        """The clock's own fit; a chained one's offset and +- at its last round
        trip as its stamps are corrected (through its endpoint's clock)."""
        offset = clock.describe()
        entry = self._chained.get((site, host))
        if entry is None or not clock.trips or clock.synchronized:
            return offset
        sent, first = clock.trips[-1][:2]
        correction = self.correct(
            site, host, np.asarray([first]), np.asarray([sent], dtype=np.int64)
        )
        if correction is None or not correction.via:
            return offset
        return replace(
            offset,
            offset_s=float(correction.offset_ns[0]) / 1e9,
            uncertainty_s=float(correction.error_ns[0]) / 1e9,
            via=correction.via,
        )

    @property
    def synchronized(self) -> bool:
        """True when every site is declared synchronized (and none contradicted)."""
        with self._lock:
            clocks = list(self._clocks.values())
        default = self.plan.default.mode == "synchronized"
        sites = all(s.mode == "synchronized" for s in self.plan.sites.values())
        return default and sites and all(clock.synchronized for clock in clocks)


__all__ = [
    "ClockFit",
    "ClockOffset",
    "ClockSegment",
    "ClockSync",
    "Correction",
    "RoundTrip",
    "chained_trips",
    "round_trips",
]
