"""One remote clock's fit: its round trips, the drift model they make, the
corrections of its stamps, and what it reports about itself.

A site's declared setting (`ClockSetting`) is checked here against the round
trips' raw bounds, model-free: a contradicted one is set aside with a warning that
names the site, the evidence and the fix, and the clock is estimated instead.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from colmena_fx.clocksetting import ClockSetting
from colmena_fx.latency.clockfigures import ClockOffset
from colmena_fx.latency.clockfigures import ClockSegment
from colmena_fx.latency.clockfigures import Correction
from colmena_fx.latency.drift import Bounds
from colmena_fx.latency.drift import DriftModel
from colmena_fx.latency.drift import Segment

if TYPE_CHECKING:
    from colmena_fx.latency.clocks import RoundTrip

logger = logging.getLogger(__name__)


class ClockFit:
    """The round trips of one remote clock, and the model they fit, built lazily.

    The round trips are against the client's clock, or, for a worker host
    chained to its endpoint's (`ClockSync`), against that host's clock: T1 and T4
    are then the endpoint's stamps around the worker's, and each round trip is
    still found by its task's send on the client's clock (its key).
    """

    def __init__(self, site: str, host: str, setting: ClockSetting) -> None:
        self.site, self.host, self.setting = site, host, setting
        #: (T1, T2, T3, T4) per round trip, in arrival order.
        self.trips: list[tuple[int, int, int, int]] = []
        self._model: DriftModel | None = None
        self._placed = 0
        self._out_ns = int(setting.link_out_ms * 1e6)
        self._back_ns = int(setting.link_back_ms * 1e6)
        self.warning = ""
        self.synchronized = setting.mode == "synchronized"
        self._within_ns = int(setting.within_ms * 1e6)
        self._checked = 0
        #: Each round trip's task's send on the client's clock (T1 unless chained).
        self.keys: list[int] = []

    def add(self, trip: RoundTrip, key_ns: int | None = None) -> None:
        self.trips.append(
            (trip.sent_ns, trip.remote_first_ns, trip.remote_last_ns, trip.received_ns)
        )
        self.keys.append(trip.sent_ns if key_ns is None else key_ns)

    # -- the declared setting, against the evidence ----------------------------

    def _check_declaration(self) -> None:
        """Set a contradicted declaration aside (once), with a warning."""
        if self.warning or self._checked == len(self.trips):
            return
        fresh = self.trips[self._checked :]
        self._checked = len(self.trips)
        if self.synchronized:
            evidence = self._beyond_bound(fresh)
            fix = (
                f"set 'clocks: estimate' in the site file of {self.site!r}, or a "
                "'within_ms' that holds"
            )
        elif self._out_ns or self._back_ns:
            evidence = self._shorter_than_declared(fresh)
            fix = (
                f"measure the least one-way delays of {self.site!r} again, or drop "
                "'link_out_ms'/'link_back_ms'"
            )
        else:
            return
        if evidence:
            self.warning = (
                f"site {self.site!r} (host {self.host}) declares its clock "
                f"{self.setting.describe()}, but {evidence}: {fix}. Its offset is "
                "estimated from the round trips instead"
            )
            logger.warning("%s", self.warning)
            self.synchronized = False
            self._out_ns = self._back_ns = 0
            self._model, self._placed = None, 0

    def _beyond_bound(self, trips: list[tuple[int, int, int, int]]) -> str:
        within = self._within_ns
        for t1, t2, t3, t4 in trips:
            if t3 - t4 > within:
                return (
                    f"a round trip proves it at least {(t3 - t4) / 1e6:.3f} ms ahead "
                    f"(it stamped a task after the client had its result)"
                )
            if t2 - t1 < -within:
                return (
                    f"a round trip proves it at least {(t1 - t2) / 1e6:.3f} ms behind "
                    f"(it stamped a task before the client sent it)"
                )
        return ""

    def _shorter_than_declared(self, trips: list[tuple[int, int, int, int]]) -> str:
        declared = self._out_ns + self._back_ns
        for t1, t2, t3, t4 in trips:
            away = (t4 - t1) - (t3 - t2)
            if away < declared:
                return (
                    f"a round trip spent only {away / 1e6:.3f} ms on the link, less "
                    f"than the declared {declared / 1e6:.3f} ms"
                )
        return ""

    # -- the estimate ------------------------------------------------------------

    def model(self) -> DriftModel:
        """The drift model of every round trip so far (new ones placed now)."""
        self._check_declaration()
        if self._model is None:
            self._model = DriftModel()
        self._model.add_all([self._bounds(trip) for trip in self.trips[self._placed :]])
        self._placed = len(self.trips)
        return self._model

    def _bound_columns(
        self, trips: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """`_bounds` of every round trip (rows of T1..T4), as columns."""
        t1, t2, t3, t4 = trips.T
        return t1, t2 - t1 - self._out_ns, t4, t3 - t4 + self._back_ns

    def _bounds(self, trip: tuple[int, int, int, int]) -> Bounds:
        t1, t2, t3, t4 = trip
        return Bounds(t1, t2 - t1 - self._out_ns, t4, t3 - t4 + self._back_ns)

    def owns(self, sent_ns: np.ndarray) -> np.ndarray:
        """Which of these sends (client clock) are of a task with a round trip here."""
        return np.isin(sent_ns, np.asarray(self.keys, dtype=np.int64))

    def correct(self, remote_ns: np.ndarray, sent_ns: np.ndarray) -> Correction | None:
        """Corrections for remote stamps of this clock, each with its task's send
        on the client's clock."""
        self._check_declaration()
        if self.synchronized:
            zeros = np.zeros(len(remote_ns))
            return Correction(zeros, np.full(len(remote_ns), float(self._within_ns)),
                              zeros)  # fmt: skip
        if not self.trips:
            return None
        model = self.model()
        offset = np.empty(len(remote_ns))
        error = np.empty(len(remote_ns))
        rate_error = np.zeros(len(remote_ns))
        trips = np.asarray(self.trips, dtype=np.int64)
        placed = np.asarray(model.placed)
        # A stamp belongs to its task's round trip, where the task came back; the
        # others (tasks that failed on the way) to the segment of their send.
        keys = np.asarray(self.keys, dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        keys_sorted = keys[order]
        where = np.minimum(np.searchsorted(keys_sorted, sent_ns), len(order) - 1)
        own = keys_sorted[where] == sent_ns
        trip_of = order[where]
        if model.segments:
            start = np.where(
                own, trips[trip_of, 0], np.where(sent_ns >= 0, sent_ns, remote_ns)
            )
            segment = model.segment_at(start)
        else:  # every round trip was bogus: each task by its nearest one
            segment = np.full(len(remote_ns), -1)
        segment = np.where(own, placed[trip_of], segment)
        # A round trip next to a step that fits both sides: its stamps may be on
        # either, and the +- covers both.
        columns = self._bound_columns(trips)
        either = model.neighbours_admitting(placed, *columns)[trip_of]
        either[~own] = -1
        by_number = {seg.number: seg for seg in model.segments}
        low = np.full(len(remote_ns), np.inf)
        high = np.full(len(remote_ns), -np.inf)
        for candidates in (segment, either[:, 0], either[:, 1]):
            for number in np.unique(candidates[candidates >= 0]):
                seg, mask = by_number[int(number)], candidates == number
                seg_low, seg_high = seg.band(seg.on_client_clock(remote_ns[mask]))
                low[mask] = np.minimum(low[mask], seg_low)
                high[mask] = np.maximum(high[mask], seg_high)
                slow, fast = seg.rate()
                rate_error[mask] = np.maximum(rate_error[mask], (fast - slow) / 2)
        # Whatever the model says, each stamp of a task that came back was taken
        # after its send (and the link out) and before its receipt (and the link
        # back): its offset lies between those, its hops cannot come out negative.
        floor = np.where(own, remote_ns - (trips[trip_of, 3] - self._back_ns), -np.inf)
        ceiling = np.where(own, remote_ns - (trips[trip_of, 0] + self._out_ns), np.inf)
        clipped_low, clipped_high = np.maximum(low, floor), np.minimum(high, ceiling)
        usable = clipped_low <= clipped_high  # else the declared delays are wrong
        clipped_low = np.where(usable, clipped_low, low)
        clipped_high = np.where(usable, clipped_high, high)
        # A task whose round trip fit no segment: by its own send and receipt.
        alone = (segment < 0) & own
        low[alone], high[alone] = floor[alone], ceiling[alone]
        clipped_low[alone], clipped_high[alone] = floor[alone], ceiling[alone]
        known = (segment >= 0) | own
        center = (low + high) / 2
        # A task's stamps move together, so that hops within this clock keep
        # their length: by the least shift that brings each within its bounds.
        shift = _shift_per_task(center, floor, ceiling, trip_of, own & ~alone)
        offset[known] = (center + shift)[known]
        error[known] = np.maximum(offset - clipped_low, clipped_high - offset)[known]
        moved = np.where(known & ~alone, np.abs(shift), error)
        # A task that never came back, of a clock whose round trips were all
        # bogus: by the nearest round trip's bounds.
        stray = ~known
        if stray.any():
            bounds = [self._bounds(self.trips[i]) for i in trip_of[stray]]
            offset[stray] = [(b.upper + b.lower) / 2 for b in bounds]
            error[stray] = [abs(b.upper - b.lower) / 2 for b in bounds]
        return Correction(offset, error, rate_error, moved_ns=moved)

    def describe(self) -> ClockOffset:
        self._check_declaration()
        setting = self.setting.describe()
        if self.warning:
            setting = "estimate (declaration contradicted)"
        if self.synchronized:
            return ClockOffset(
                self.site, self.host, 0.0, self._within_ns / 1e9, len(self.trips),
                self._min_delay_ns() / 1e9, setting=setting,
            )  # fmt: skip
        model = self.model()
        segments = self._segments(model)
        if not segments:  # every round trip was bogus
            bounds = self._bounds(self.trips[-1])
            return ClockOffset(
                self.site, self.host, (bounds.upper + bounds.lower) / 2e9,
                abs(bounds.delay_ns) / 2e9, len(self.trips),
                self._min_delay_ns() / 1e9, consistent=False, setting=setting,
                rejected=model.rejected, warning=self.warning,
            )  # fmt: skip
        last = segments[-1]
        return ClockOffset(
            site=self.site,
            host=self.host,
            offset_s=last.offset_end_s,
            uncertainty_s=last.uncertainty_end_s,
            samples=len(self.trips),
            min_delay_s=self._min_delay_ns(model) / 1e9,
            consistent=len(segments) == 1 and not model.rejected and not self.warning,
            drift_ppm=last.drift_ppm,
            drift_uncertainty_ppm=last.drift_uncertainty_ppm,
            setting=setting,
            rejected=model.rejected,
            segments=tuple(segments),
            warning=self.warning,
        )

    def _min_delay_ns(self, model: DriftModel | None = None) -> float:
        """The least time a round trip spent away from both clocks: the client's
        round trip less the host's span, that span on the client's clock (a host
        running fast stretches a long task by more than the links take)."""
        if not self.trips:
            return 0.0
        trips = np.asarray(self.trips, dtype=np.int64)
        span = (trips[:, 2] - trips[:, 1]).astype(np.float64)
        if model is not None and model.segments:
            rates = {seg.number: sum(seg.rate()) / 2 for seg in model.segments}
            rate = np.asarray([rates.get(number, 0.0) for number in model.placed])
            span = span / (1.0 + rate)
        return float(((trips[:, 3] - trips[:, 0]) - span).min())

    def _segments(self, model: DriftModel) -> list[ClockSegment]:
        sent = np.sort(np.asarray([trip[0] for trip in self.trips], dtype=np.int64))
        out: list[ClockSegment] = []
        previous: Segment | None = None
        for index, seg in enumerate(model.segments):
            (low_start, low_end), (high_start, high_end) = seg.band(
                np.asarray([seg.start_ns, seg.end_ns])
            )
            slow, fast = seg.rate()
            step = None
            if previous is not None:
                low_before, high_before = previous.band(np.asarray([seg.start_ns]))
                before = low_before[0] + high_before[0]
                step = float((low_start + high_start) - before) / 2e9
            out.append(
                ClockSegment(
                    index=index,
                    start_ns=seg.start_ns,
                    end_ns=seg.end_ns,
                    after_trips=int(np.searchsorted(sent, seg.start_ns)),
                    trips=seg.trips,
                    offset_start_s=float(low_start + high_start) / 2e9,
                    offset_end_s=float(low_end + high_end) / 2e9,
                    uncertainty_start_s=float(high_start - low_start) / 2e9,
                    uncertainty_end_s=float(high_end - low_end) / 2e9,
                    drift_ppm=(slow + fast) / 2 * 1e6,
                    drift_uncertainty_ppm=(fast - slow) / 2 * 1e6,
                    step_s=step,
                )
            )
            previous = seg
        return out


def _shift_per_task(
    center: np.ndarray,
    floor: np.ndarray,
    ceiling: np.ndarray,
    trip_of: np.ndarray,
    mask: np.ndarray,
) -> np.ndarray:
    """Per stamp (of `mask`), the shift of its task's offsets closest to zero
    that keeps every one of them between its floor and ceiling (the middle of
    what they allow if nothing can)."""
    shift = np.zeros(len(center))
    if not mask.any():
        return shift
    trips = trip_of[mask]
    count = int(trips.max()) + 1
    least = np.full(count, -np.inf)
    most = np.full(count, np.inf)
    np.maximum.at(least, trips, (floor - center)[mask])
    np.minimum.at(most, trips, (ceiling - center)[mask])
    used = np.unique(trips)
    low, high = least[used], most[used]
    best = np.zeros(count)
    best[used] = np.where(low <= high, np.clip(0.0, low, high), (low + high) / 2)
    shift[mask] = best[trips]
    return shift
