"""A remote clock as a line between steps, from the bounds its round trips set.

Causality bounds a remote clock's offset from the client's (remote minus client) at
two moments of every round trip: no more than `T2 - T1` when the host first stamped
the task, no less than `T3 - T4` when it last did. A clock that runs at a fixed
rate has offset(t) = a + b (t - t0): each bound is a half-plane in (a, b), and the
lines every round trip allows form a convex polygon (the linear program of Moon,
Skelly and Towsley's skew estimation, kept whole rather than solved for one
objective). At any time t the offsets those lines take span a band, which holds
the true offset: its middle is the estimate, its half-width the +-. Lines steeper
than `MAX_DRIFT_PPM` are ruled out from the start, so the band stays finite before
the round trips pin the rate.

When a round trip leaves no line, the clock stepped (or changed its rate beyond the
model): a new segment starts there, with a polygon of its own. A round trip that
fits no segment near its time (its host stepped while holding the task) is set
aside as `rejected` rather than starting a segment.

The polygon is updated lazily, in the order round trips arrive: a round trip whose
bounds cut nothing costs one pass over the polygon's few vertices.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

#: The fastest drift a clock may have: NTP gives up disciplining a clock beyond it.
MAX_DRIFT_PPM = 500.0
#: Slack on every bound (s): the stamps' own resolution.
_EPSILON_S = 1e-9
#: Bound on |a| before the first round trip cuts it (s, relative to the reference).
_BOX_S = 1e4
#: Round trips checked against the polygons at once by `DriftModel.add_all`.
_BATCH = 512


class Bounds(NamedTuple):
    """One round trip's bounds on the offset (ns): `upper` at client time `upper_at`
    (sent), `lower` at `lower_at` (received); `lower` exceeds `upper` by no more
    than the clock can drift in between, unless it is bogus (`DriftModel.bogus`)."""

    upper_at: int
    upper: int
    lower_at: int
    lower: int

    @property
    def delay_ns(self) -> int:
        return self.upper - self.lower


class Segment:
    """The lines one run of round trips allows, between two steps of the clock."""

    def __init__(self, first: Bounds, max_rate: float, number: int = 0) -> None:
        #: Which segment of its clock this is, in the order they were found.
        self.number = number
        #: Times count (s) from `t0`, offsets from `ref` (both ns), for precision.
        self.t0 = first.upper_at
        self.ref = first.upper
        self.start_ns = first.upper_at
        self.end_ns = first.lower_at
        self.trips = 0
        self.min_delay_ns = first.delay_ns
        #: How long (s) the segment has lasted, so far: the reach of its lines.
        self._span = 0.0
        #: A line inside the polygon (its vertices' mean): a cheap first guess.
        self._center = (0.0, 0.0)
        self._a = [-_BOX_S, _BOX_S, _BOX_S, -_BOX_S]
        self._b = [-max_rate, -max_rate, max_rate, max_rate]
        if not self.add(first):
            raise ValueError(f"round trip {first} bounds nothing")

    # -- learning --------------------------------------------------------------------

    def add(self, trip: Bounds) -> bool:
        """Narrow the polygon by `trip`; False (and unchanged) if no line fits it."""
        a, b = self._a, self._b
        upper = (trip.upper - self.ref) / 1e9
        lower = (trip.lower - self.ref) / 1e9
        # Where each bound holds: when the host stamped, not when the client did,
        # so place it by the estimated one-way delays (a second-order correction).
        x_sent = (trip.upper_at - self.t0) / 1e9
        x_received = (trip.lower_at - self.t0) / 1e9
        away = x_received - x_sent
        guess = self._center[0] + self._center[1] * x_sent
        if not self.trips:
            guess = (upper + lower) / 2
        x_upper = x_sent + min(max(upper - guess, 0.0), away)
        x_lower = x_received - min(max(guess - lower, 0.0), away)
        at_upper = [ai + bi * x_upper for ai, bi in zip(a, b, strict=True)]
        at_lower = [ai + bi * x_lower for ai, bi in zip(a, b, strict=True)]
        upper += _EPSILON_S
        lower -= _EPSILON_S
        if min(at_upper) > upper or max(at_lower) < lower:
            return False
        span = max(x_received, self._span)
        if max(at_upper) > upper:  # most round trips cut nothing
            a, b = _clip(a, b, 1.0, x_upper, upper, span)
        if a and min(at_lower) < lower:
            a, b = _clip(a, b, -1.0, -x_lower, -lower, span)
        if not a:  # numerically empty at the edge: keep the polygon as it was
            return False
        self._a, self._b, self._span = a, b, span
        self._center = (sum(a) / len(a), sum(b) / len(b))
        self.absorb(trip)
        return True

    def absorb(self, trip: Bounds) -> None:
        """Count a round trip whose bounds cut nothing (`meets` said so)."""
        self.trips += 1
        self.start_ns = min(self.start_ns, trip.upper_at)
        self.end_ns = max(self.end_ns, trip.lower_at)
        self.min_delay_ns = min(self.min_delay_ns, trip.delay_ns)
        self._span = max(self._span, (trip.lower_at - self.t0) / 1e9)

    def meets(
        self,
        upper_at: np.ndarray,
        upper: np.ndarray,
        lower_at: np.ndarray,
        lower: np.ndarray,
        every: bool,
    ) -> np.ndarray:
        """Which round trips' bounds `every` line of the polygon meets, or (not
        `every`) some line does, each bound on its own as `add` tests it.

        Every line: the round trip would cut nothing, now or once later ones have
        shrunk the polygon, so `add` can skip it (`absorb`). Some line: the
        segment could have taken it. Vectorized, for many at once.
        """
        at_upper, at_lower, upper_s, lower_s = self._at_bounds(
            upper_at, upper, lower_at, lower
        )
        highest, lowest = (
            (at_upper[1], at_lower[0]) if every else (at_upper[0], at_lower[1])
        )
        met: np.ndarray = (highest <= upper_s + _EPSILON_S) & (
            lowest >= lower_s - _EPSILON_S
        )
        return met

    def _at_bounds(
        self,
        upper_at: np.ndarray,
        upper: np.ndarray,
        lower_at: np.ndarray,
        lower: np.ndarray,
    ) -> tuple[
        tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray],
        np.ndarray, np.ndarray,
    ]:  # fmt: skip
        """The lowest and highest offset (s from `ref`) of the polygon's lines
        where each round trip's upper and lower bound hold (placed as `add`
        places them), and the bounds themselves."""
        x_sent = (upper_at - self.t0) / 1e9
        x_received = (lower_at - self.t0) / 1e9
        upper_s = (upper - self.ref) / 1e9
        lower_s = (lower - self.ref) / 1e9
        away = x_received - x_sent
        guess = self._center[0] + self._center[1] * x_sent
        x_upper = x_sent + np.clip(upper_s - guess, 0.0, away)
        x_lower = x_received - np.clip(guess - lower_s, 0.0, away)
        return self.band_at(x_upper), self.band_at(x_lower), upper_s, lower_s

    def band_at(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The lowest and highest offset (s from `ref`) of the polygon's lines at
        `x` (s from `t0`)."""
        low = np.full(x.shape, np.inf)
        high = np.full(x.shape, -np.inf)
        for ai, bi in zip(self._a, self._b, strict=True):
            value = ai + bi * x
            np.minimum(low, value, out=low)
            np.maximum(high, value, out=high)
        return low, high

    # -- reading ---------------------------------------------------------------------

    def band(self, at_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The lowest and highest offset (ns) any allowed line takes at `at_ns`."""
        x = (np.asarray(at_ns, dtype=np.float64) - self.t0) / 1e9
        low, high = self.band_at(x)
        return self.ref + low * 1e9, self.ref + high * 1e9

    def rate(self) -> tuple[float, float]:
        """The least and greatest drift (s per s) of the allowed lines."""
        return min(self._b), max(self._b)

    def on_client_clock(self, remote_ns: np.ndarray) -> np.ndarray:
        """The client time (ns) of remote stamps: remote minus the offset then."""
        remote = np.asarray(remote_ns, dtype=np.float64)
        at = remote - self.ref
        for _ in range(2):  # the offset changes slowly: two rounds settle it
            low, high = self.band(at)
            at = remote - (low + high) / 2
        return at


def _clip(
    a: list[float], b: list[float], ca: float, cb: float, limit: float, span: float
) -> tuple[list[float], list[float]]:
    """The convex polygon (a, b) cut to `ca * a + cb * b <= limit`; vertices whose
    lines stay within a nanosecond of each other over `span` s merge."""
    out_a: list[float] = []
    out_b: list[float] = []
    count = len(a)
    for i in range(count):
        a1, b1 = a[i], b[i]
        a2, b2 = a[(i + 1) % count], b[(i + 1) % count]
        s1 = ca * a1 + cb * b1 - limit
        s2 = ca * a2 + cb * b2 - limit
        if s1 <= 0:
            out_a.append(a1)
            out_b.append(b1)
        if (s1 <= 0) != (s2 <= 0):
            f = s1 / (s1 - s2)
            out_a.append(a1 + f * (a2 - a1))
            out_b.append(b1 + f * (b2 - b1))
    return _merge_close(out_a, out_b, span)


def _merge_close(
    a: list[float], b: list[float], span: float
) -> tuple[list[float], list[float]]:
    """Drop each vertex whose line stays within `_EPSILON_S` of the last kept one
    over the segment (so the polygon keeps a few vertices, not one per round trip;
    the band narrows by at most that slack)."""
    reach = max(span, 1.0)
    keep_a: list[float] = []
    keep_b: list[float] = []
    for ai, bi in zip(a, b, strict=True):
        if keep_a and _close(ai - keep_a[-1], bi - keep_b[-1], reach):
            continue
        keep_a.append(ai)
        keep_b.append(bi)
    while len(keep_a) > 1 and _close(keep_a[0] - keep_a[-1], keep_b[0] - keep_b[-1],
                                     reach):  # fmt: skip
        keep_a.pop()
        keep_b.pop()
    return keep_a, keep_b


def _close(da: float, db: float, reach: float) -> bool:
    return abs(da) + abs(db) * reach < _EPSILON_S


class DriftModel:
    """One remote clock: its segments, fed round trips in the order they arrive."""

    def __init__(self, max_drift_ppm: float = MAX_DRIFT_PPM) -> None:
        self.max_rate = max_drift_ppm * 1e-6
        self.segments: list[Segment] = []
        self._starts: list[int] = []
        #: Per round trip, in arrival order: its segment's `number`, or -1
        #: (rejected). `segments` are in time order, which is not always the
        #: order they were found in: tasks come back out of order.
        self.placed: list[int] = []
        self.rejected = 0

    def add(self, trip: Bounds) -> int:
        """Place one round trip; returns its segment's number, or -1 if rejected."""
        index = self._place(trip)
        self.placed.append(index)
        if index < 0:
            self.rejected += 1
        return index

    def add_all(self, trips: Sequence[Bounds]) -> None:
        """Place many round trips, in order, as `add` would one by one.

        Most round trips of a long run cut nothing: each batch is first checked
        against its segments at once, and only the others go through `add`.
        """
        for first in range(0, len(trips), _BATCH):
            batch = trips[first : first + _BATCH]
            if not self.segments:
                self.add(batch[0])
                batch = batch[1:]
            held = self._held(batch)
            for trip, segment in zip(batch, held, strict=True):
                if segment is None:
                    self.add(trip)
                    continue
                segment.absorb(trip)
                self.placed.append(segment.number)
                if trip.upper_at < self._starts[0]:
                    self._starts = [s.start_ns for s in self.segments]

    def _held(self, batch: Sequence[Bounds]) -> list[Segment | None]:
        """Per round trip, the segment of its time if that holds it already."""
        if not batch:
            return []
        columns = np.asarray(
            [(t.upper_at, t.upper, t.lower_at, t.lower) for t in batch], dtype=np.int64
        )
        starts = np.asarray(self._starts, dtype=np.int64)
        near = np.maximum(np.searchsorted(starts, columns[:, 0], side="right") - 1, 0)
        held: list[Segment | None] = [None] * len(batch)
        held_for = (columns[:, 2] - columns[:, 0]) * self.max_rate
        sane = columns[:, 3] <= columns[:, 1] + held_for
        for position in np.unique(near):
            segment = self.segments[position]
            rows = np.flatnonzero(near == position)
            fits = segment.meets(*(columns[rows, i] for i in range(4)), every=True)
            for row in rows[fits & sane[rows]]:
                held[row] = segment
        return held

    def bogus(self, trip: Bounds) -> bool:
        """The host's span of the task outgrew the client's by more than the
        fastest drift allows: it stepped back while it held the task."""
        return trip.lower > trip.upper + self.max_rate * (trip.lower_at - trip.upper_at)

    def _place(self, trip: Bounds) -> int:
        if self.bogus(trip):
            return -1
        if not self.segments:
            return self._new_segment(trip)
        near = max(bisect.bisect_right(self._starts, trip.upper_at) - 1, 0)
        # Its own time's segment first; then the neighbours, for a task that was
        # sent just before a step but stamped after it (or the other way round).
        for index in (near, near + 1, near - 1):
            if 0 <= index < len(self.segments) and self.segments[index].add(trip):
                self._starts[index] = self.segments[index].start_ns
                return self.segments[index].number
        # A step: after every segment's start, or before the first one's (its
        # task came back after tasks sent later). Between two, it is a task whose
        # host stepped while holding it, not a segment of its own.
        if trip.upper_at >= self._starts[-1]:
            return self._new_segment(trip, len(self.segments))
        if trip.upper_at < self._starts[0]:
            return self._new_segment(trip, 0)
        return -1

    def _new_segment(self, trip: Bounds, position: int = 0) -> int:
        segment = Segment(trip, self.max_rate, number=len(self.segments))
        self.segments.insert(position, segment)
        self._starts.insert(position, trip.upper_at)
        return segment.number

    def neighbours_admitting(
        self,
        placed: np.ndarray,
        upper_at: np.ndarray,
        upper: np.ndarray,
        lower_at: np.ndarray,
        lower: np.ndarray,
    ) -> np.ndarray:
        """Per round trip (its segment's number in `placed`, its bounds), the
        numbers of the segments just before and just after its own in time that
        would have taken it too, or -1: a round trip next to a step whose bounds
        are wider than the step fits both sides, and nobody can tell which side
        its host was on."""
        out = np.full((len(placed), 2), -1, dtype=np.int64)
        for position, segment in enumerate(self.segments):
            rows = np.flatnonzero(placed == segment.number)
            if not rows.size:
                continue
            for column, other in ((0, position - 1), (1, position + 1)):
                if not 0 <= other < len(self.segments):
                    continue
                neighbour = self.segments[other]
                fits = neighbour.meets(
                    upper_at[rows], upper[rows], lower_at[rows], lower[rows], False
                )
                out[rows[fits], column] = neighbour.number
        return out

    def segment_at(self, client_ns: np.ndarray) -> np.ndarray:
        """The number of the segment in force at each client time."""
        starts = np.asarray(self._starts, dtype=np.int64)
        numbers = np.asarray([segment.number for segment in self.segments])
        position = np.searchsorted(starts, client_ns, side="right") - 1
        return numbers[np.maximum(position, 0)]
