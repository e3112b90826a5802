"""Which of a method's sites gets the next task, and why.

Every policy looks only at sites that can take work now (`UP`, else `DEGRADED`),
so a lost site is routed around by all of them. `fastest` predicts each site's
time to the result from what the campaign has measured there: the method's median
overhead (round trip minus time on a worker and in the endpoint's queue) and
compute time, plus the wait for a free worker given the tasks already in flight.
Both measured terms are differences of stamps on one clock each (the client's, the
site's), so no clock offset enters them. A site with no data yet borrows the
median of the sites that have some (a neutral prior); with no data anywhere, the
prediction only counts tasks ahead per worker.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import defaultdict
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from colmena_fx.methodroute import RoutingPolicy
from colmena_fx.models import Result
from colmena_fx.models import Routing
from colmena_fx.models import Stamp
from colmena_fx.transports.health import Health

#: Tasks per (method, site) the medians are taken over: recent enough to follow a
#: site that slows down, many enough not to chase one slow task.
WINDOW = 50


@dataclass(frozen=True)
class SiteView:
    """One candidate site as routing sees it at the moment of the choice."""

    name: str
    health: Health
    in_flight: int
    #: Workers the site reports; None when it does not say.
    capacity: int | None = None


@dataclass(frozen=True)
class Prediction:
    site: str
    total_s: float
    overhead_s: float
    compute_s: float
    wait_s: float

    def __str__(self) -> str:
        return (
            f"{self.site!r} {self.total_s * 1e3:.1f} ms (overhead "
            f"{self.overhead_s * 1e3:.1f} + compute {self.compute_s * 1e3:.1f} + "
            f"wait {self.wait_s * 1e3:.1f})"
        )


class ServiceEstimates:
    """Rolling per-(method, site) medians of overhead and compute time."""

    def __init__(self) -> None:
        self._overhead: dict[tuple[str, str], deque[float]] = defaultdict(
            lambda: deque(maxlen=WINDOW)
        )
        self._compute: dict[tuple[str, str], deque[float]] = defaultdict(
            lambda: deque(maxlen=WINDOW)
        )
        self._finished: dict[str, deque[float]] = defaultdict(
            lambda: deque(maxlen=WINDOW)
        )
        self._lock = threading.Lock()

    def observe(self, result: Result) -> None:
        """Learn from a finished attempt (successful ones only)."""
        if not result.success or result.site is None:
            return
        timeline = result.timeline
        sent, received = timeline.get(Stamp.SENT), timeline.get(Stamp.RECEIVED)
        if sent is None or received is None:
            return
        round_trip = (received.time_ns - sent.time_ns) / 1e9
        busy = _span(result, Stamp.EXECUTION_STARTED, Stamp.EXECUTION_ENDED)
        if busy is None:
            busy = _span(result, Stamp.WORKER_STARTED, Stamp.WORKER_ENDED) or 0.0
        queued = _span(result, Stamp.ENDPOINT_RECEIVED, Stamp.EXECUTION_STARTED) or 0.0
        key = (result.method, result.site)
        with self._lock:
            self._overhead[key].append(max(0.0, round_trip - busy - queued))
            self._compute[key].append(busy)
            self._finished[result.site].append(time.monotonic())

    def medians(self, method: str, site: str) -> tuple[float, float] | None:
        """(overhead, compute) seconds of `method` at `site`, once measured."""
        with self._lock:
            overhead = self._overhead.get((method, site))
            compute = self._compute.get((method, site))
            if not overhead or not compute:
                return None
            return statistics.median(overhead), statistics.median(compute)

    def completion_rate(self, site: str) -> float | None:
        """Tasks per second the site finished lately, over its last `WINDOW`."""
        with self._lock:
            times = self._finished.get(site)
            if not times or len(times) < 2 or times[-1] <= times[0]:
                return None
            return (len(times) - 1) / (times[-1] - times[0])

    def predict(self, method: str, sites: Sequence[SiteView]) -> list[Prediction]:
        """Each site's predicted seconds from sending a task to its result."""
        known = {site.name: self.medians(method, site.name) for site in sites}
        measured = [value for value in known.values() if value is not None]
        prior = (
            (
                statistics.median(v[0] for v in measured),
                statistics.median(v[1] for v in measured),
            )
            if measured
            else (0.0, 0.0)
        )
        predictions = []
        for site in sites:
            overhead, compute = known[site.name] or prior
            wait = self._wait(site, compute)
            predictions.append(
                Prediction(
                    site.name, overhead + compute + wait, overhead, compute, wait
                )
            )
        return predictions

    def _wait(self, site: SiteView, compute_s: float) -> float:
        """Expected wait for a worker: tasks ahead over the site's service rate."""
        if site.capacity:
            ahead = max(0, site.in_flight + 1 - site.capacity)
            if compute_s > 0:
                return ahead * compute_s / site.capacity
        else:
            ahead = site.in_flight
        rate = self.completion_rate(site.name)
        if rate:
            return ahead / rate
        return ahead * compute_s


def _span(result: Result, first: str, last: str) -> float | None:
    """Seconds between two stamps of one host (one clock), if both are there."""
    start, end = result.timeline.get(first), result.timeline.get(last)
    if start is None or end is None or not start.host or start.host != end.host:
        return None
    return max(0.0, (end.time_ns - start.time_ns) / 1e9)


class Router:
    """Applies a method's policy to its candidate sites, one task at a time."""

    def __init__(self, estimates: ServiceEstimates) -> None:
        self.estimates = estimates
        self._turns: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def choose(
        self,
        method: str,
        policy: RoutingPolicy,
        candidates: Sequence[SiteView],
        avoid: str | None = None,
    ) -> tuple[str, Routing] | None:
        """The site for the next task of `method`, or None when none can take it.

        `avoid` (the site that just lost the task) is passed over when another
        site can take it.
        """
        usable = [s for s in candidates if s.health is Health.UP] or [
            s for s in candidates if s.health is Health.DEGRADED
        ]
        if avoid is not None and len(usable) > 1:
            usable = [s for s in usable if s.name != avoid] or usable
        if not usable:
            return None
        names = [s.name for s in usable]
        if policy == "round_robin":
            with self._lock:
                turn = self._turns[method]
                self._turns[method] = turn + 1
            chosen = usable[turn % len(usable)]
            reason = f"turn {turn + 1}, of {len(usable)} usable sites"
            return chosen.name, Routing(policy=policy, usable=names, reason=reason)
        if policy == "least_loaded":
            chosen = min(usable, key=_load)
            reason = f"{_load(chosen):.2f} tasks per worker, the fewest"
            return chosen.name, Routing(policy=policy, usable=names, reason=reason)
        if policy == "fastest":
            predictions = self.estimates.predict(method, usable)
            order = {s.name: (i, _load(s)) for i, s in enumerate(usable)}
            best = min(predictions, key=lambda p: (p.total_s, order[p.site][1]))
            others = "; ".join(str(p) for p in predictions if p is not best)
            reason = f"predicted {best}" + (f"; {others}" if others else "")
            return best.site, Routing(
                policy=policy, usable=names, predicted_s=best.total_s, reason=reason
            )
        chosen = usable[0]
        passed = [s.name for s in candidates if s.name not in names]
        reason = "first usable site in order" + (
            f" (passed over {', '.join(passed)})" if passed else ""
        )
        return chosen.name, Routing(policy=policy, usable=names, reason=reason)


def _load(site: SiteView) -> float:
    """Tasks in flight per worker, counting the one being placed."""
    return (site.in_flight + 1) / (site.capacity or 1)
