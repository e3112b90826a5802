"""How far each remote clock is from the client's, and how sure we are.

Every finished task is one NTP-style round trip for each remote host that stamped
it: the client sent it at T1 and received it at T4 (client clock); the host's first
and last stamps are T2 and T3 (its own clock). With `offset` meaning remote time
minus client time, causality bounds the offset from both sides:

    T3 - T4  <=  offset  <=  T2 - T1

Each round trip gives such an interval, as wide as its delay (the time the task
spent away from both clocks). The intersection of all of them holds the true offset
while the clocks run at a fixed offset: its midpoint is the estimate and its
half-width the uncertainty, never more than half the least delay seen (NTP's
bound). Because the estimate lies inside every interval, no corrected hop from the
client to a remote host, or back, comes out negative.

When the intervals do not intersect, a clock stepped or drifted during the run: the
estimate falls back to NTP's clock filter, the least-delayed of the recent round
trips, and says so (`consistent=False`).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from colmena_fx.latency.hops import CLIENT_STAMPS
from colmena_fx.models import Stamp


@dataclass(frozen=True)
class RoundTrip:
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


@dataclass(frozen=True)
class ClockOffset:
    """A remote clock's offset from the client's: remote = client + offset_s."""

    site: str
    host: str
    offset_s: float
    #: The true offset lies within offset_s +- uncertainty_s.
    uncertainty_s: float
    samples: int
    #: The shortest round trip seen, away from both clocks.
    min_delay_s: float
    #: False when the round trips disagree (a clock stepped or drifted).
    consistent: bool = True


class OffsetEstimator:
    """Offset of one remote clock from a stream of round trips."""

    def __init__(self, window: int = 8) -> None:
        self._lower = -(2**63)
        self._upper = 2**63
        self._samples = 0
        self._min_delay = 2**63
        #: The last `window` round trips: NTP's clock filter picks from these.
        self._recent: deque[RoundTrip] = deque(maxlen=window)

    def add(self, trip: RoundTrip) -> None:
        self._lower = max(self._lower, trip.lower_ns)
        self._upper = min(self._upper, trip.upper_ns)
        self._min_delay = min(self._min_delay, trip.delay_ns)
        self._samples += 1
        self._recent.append(trip)

    @property
    def samples(self) -> int:
        return self._samples

    def estimate(self) -> tuple[float, float, bool]:
        """(offset ns, uncertainty ns, consistent); needs at least one sample."""
        if self._lower <= self._upper:
            return (
                (self._lower + self._upper) / 2,
                (self._upper - self._lower) / 2,
                True,
            )
        best = min(self._recent, key=lambda trip: trip.delay_ns)
        return (best.lower_ns + best.upper_ns) / 2, best.delay_ns / 2, False

    def min_delay_ns(self) -> int:
        return self._min_delay


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


class ClockSync:
    """The offsets of every remote clock a campaign has heard from.

    A remote clock is a (site, host) pair: two sites on one machine may still run
    different clocks (one under a fake time, say), and one site spans many hosts.
    With `synchronized=True` the run declares its clocks in sync (PTP, a good
    NTP), and every offset is taken as exactly zero.
    """

    def __init__(self, synchronized: bool = False, window: int = 8) -> None:
        self.synchronized = synchronized
        self._window = window
        self._estimators: dict[tuple[str, str], OffsetEstimator] = {}
        self._lock = threading.Lock()

    def observe(self, site: str, events: Iterable[Any]) -> None:
        """Learn from one finished task of `site`."""
        trips = round_trips(events)
        with self._lock:
            for host, trip in trips.items():
                estimator = self._estimators.get((site, host))
                if estimator is None:
                    estimator = self._estimators[site, host] = OffsetEstimator(
                        self._window
                    )
                estimator.add(trip)

    def offset(self, site: str, host: str) -> ClockOffset | None:
        """The offset of `host` at `site`, or None before any round trip."""
        with self._lock:
            estimator = self._estimators.get((site, host))
            if estimator is None:
                return None
            return self._describe(site, host, estimator)

    def offsets(self) -> list[ClockOffset]:
        with self._lock:
            return [
                self._describe(site, host, estimator)
                for (site, host), estimator in sorted(self._estimators.items())
            ]

    def _describe(
        self, site: str, host: str, estimator: OffsetEstimator
    ) -> ClockOffset:
        offset_ns, uncertainty_ns, consistent = estimator.estimate()
        if self.synchronized:
            offset_ns, uncertainty_ns, consistent = 0.0, 0.0, True
        return ClockOffset(
            site=site,
            host=host,
            offset_s=offset_ns / 1e9,
            uncertainty_s=uncertainty_ns / 1e9,
            samples=estimator.samples,
            min_delay_s=estimator.min_delay_ns() / 1e9,
            consistent=consistent,
        )
