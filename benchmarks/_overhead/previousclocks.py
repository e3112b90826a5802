"""The previous clock design's observe path, kept as the baseline of `recordercalls`.

Copied verbatim from `colmena_fx/latency/clocks.py` at commit 9818ab8: per remote
clock an `OffsetEstimator` narrowed at every finished task (bounds intersected,
least delay, the last 8 round trips kept), before the drift model replaced it.
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


_SENT, _RECEIVED = Stamp.SENT.value, Stamp.RECEIVED.value


def round_trips(events: Iterable[Any]) -> dict[str, RoundTrip]:
    """One round trip per remote host from a task's events (`Event`s or lists)."""
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


class PreviousClockSync:
    """The previous `ClockSync`, as far as `LatencyRecorder.completed` uses it."""

    def __init__(self, window: int = 8) -> None:
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

    def estimates(self) -> dict[tuple[str, str], tuple[float, float, bool]]:
        with self._lock:
            return {key: est.estimate() for key, est in self._estimators.items()}
