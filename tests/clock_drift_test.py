"""The clock estimator against known truth, on thousands of made-up runs.

Each run has a remote clock with a skew of seconds, a drift of up to +-300 ppm and,
in some, one step; links with their own delays each way (asymmetric), jitter,
several tasks in flight that come back out of order, and in some tasks held for
up to a minute. Every corrected remote stamp
must lie within its +- of the truth, no client<->remote hop may be negative, and a
step must be found within 2 tasks of where it happened, with its size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from colmena_fx.latency.clocks import ClockOffset
from colmena_fx.latency.clocks import ClockSync
from colmena_fx.latency.drift import MAX_DRIFT_PPM
from colmena_fx.latency.drift import Bounds
from colmena_fx.latency.drift import DriftModel
from colmena_fx.models import Stamp

MS = 1_000_000
#: Slack on comparisons (ns): stamps are whole nanoseconds.
SLACK_NS = 2


@dataclass
class MadeUpRun:
    """One run's stamps and their truth (ns), tasks in the order they were sent."""

    sent: np.ndarray
    received: np.ndarray
    #: The host's first and last stamp of each task, on its own clock ...
    remote_first: np.ndarray
    remote_last: np.ndarray
    #: ... and when they happened on the client's.
    true_first: np.ndarray
    true_last: np.ndarray
    #: Index of the first task sent after the step, and its size (ns); -1 if none.
    step_task: int
    step_ns: float

    def arrival_order(self) -> np.ndarray:
        return np.argsort(self.received, kind="stable")


def made_up_run(rng: np.random.Generator, tasks: int, step: bool) -> MadeUpRun:
    start = 1_800_000_000 * 10**9
    skew_ns = rng.uniform(-5, 5) * 1e9
    rate = rng.uniform(-300, 300) * 1e-6
    out_ms, back_ms = rng.uniform(0.05, 30, 2)
    jitter_ms = rng.uniform(0.01, 2)
    in_flight = int(rng.integers(1, 5))
    gap_ms = rng.uniform(5, 500)
    sent = start + np.cumsum(rng.exponential(gap_ms / in_flight, tasks) * MS)
    sent = sent.astype(np.int64)
    # a third of the runs hold tasks for up to a minute, as simulations do: a
    # clock 300 ppm fast then stretches a task by more than the links take
    longest_ms = 60_000 if rng.uniform() < 1 / 3 else 50
    hold = (rng.uniform(0.1, longest_ms, tasks) * MS).astype(np.int64)
    step_task, step_ns = -1, 0.0
    if step:
        # Large enough to show against the round trips' own spread, and against
        # what a line of another rate could explain: a task held for a minute
        # bounds the offset only at its send and its receipt, and between them
        # the fastest drift allowed moves a line by 30 ms.
        step_task = int(rng.integers(tasks // 4, 3 * tasks // 4))
        size = rng.uniform(1.5, 10) * (out_ms + back_ms + 4 * jitter_ms) * MS
        size += 2 * MAX_DRIFT_PPM * 1e-6 * hold.max()
        step_ns = float(size * rng.choice([-1, 1]))
    # the step happens between two sends: before this task reached the host
    step_at = sent[step_task] if step else np.iinfo(np.int64).max

    def offset(client: np.ndarray) -> np.ndarray:
        drift = skew_ns + rate * (client - start).astype(np.float64)
        return drift + np.where(client >= step_at, step_ns, 0.0)

    true_first = sent + ((out_ms + rng.exponential(jitter_ms, tasks)) * MS).astype(
        np.int64
    )
    true_last = true_first + hold
    received = true_last + ((back_ms + rng.exponential(jitter_ms, tasks)) * MS).astype(
        np.int64
    )
    if step:  # the host steps while it holds no task: later ones wait for it
        quiet = int(max(true_last[:step_task].max() + MS - sent[step_task], 0))
        later = np.arange(tasks) >= step_task
        sent, true_first, true_last, received = (
            np.where(later, column + quiet, column)
            for column in (sent, true_first, true_last, received)
        )
        step_at = sent[step_task]
    remote_first = (true_first + offset(true_first)).astype(np.int64)
    remote_last = (true_last + offset(true_last)).astype(np.int64)
    return MadeUpRun(sent, received, remote_first, remote_last, true_first,
                     true_last, step_task, step_ns)  # fmt: skip


def estimate(run: MadeUpRun) -> tuple[ClockSync, ClockOffset]:
    sync = ClockSync()
    for i in run.arrival_order():
        sync.observe("far", [
            (Stamp.SENT, int(run.sent[i]), "client"),
            (Stamp.ENDPOINT_RECEIVED, int(run.remote_first[i]), "node"),
            (Stamp.ENDPOINT_SENT, int(run.remote_last[i]), "node"),
            (Stamp.RECEIVED, int(run.received[i]), "client"),
        ])  # fmt: skip
    (clock,) = sync.offsets()
    return sync, clock


def check_run(run: MadeUpRun) -> None:
    sync, clock = estimate(run)
    remote = np.concatenate([run.remote_first, run.remote_last])
    truth = np.concatenate([run.true_first, run.true_last])
    sent = np.concatenate([run.sent, run.sent])
    correction = sync.correct("far", "node", remote, sent)
    assert correction is not None
    corrected = remote - correction.offset_ns
    miss = np.abs(corrected - truth) - correction.error_ns
    assert miss.max() <= SLACK_NS, (clock, miss.max())
    tasks = len(run.sent)
    link_out = corrected[:tasks] - run.sent
    link_back = run.received - corrected[tasks:]
    assert min(link_out.min(), link_back.min()) >= -SLACK_NS, clock
    assert clock.rejected == 0, clock
    if run.step_task < 0:
        assert len(clock.segments) == 1, clock
        return
    assert len(clock.segments) == 2, clock
    found = clock.segments[1]
    assert abs(found.after_trips - run.step_task) <= 2, (clock, run.step_task)
    assert found.step_s is not None
    spread = found.uncertainty_start_s + clock.segments[0].uncertainty_end_s
    assert abs(found.step_s * 1e9 - run.step_ns) <= spread * 1e9 + SLACK_NS + (
        # the old line, carried to the new segment's start, widens with its rate
        (found.start_ns - clock.segments[0].end_ns)
        * clock.segments[0].drift_uncertainty_ppm
        * 1e-6
    ), clock


@pytest.mark.parametrize("step", [False, True], ids=["drift", "drift+step"])
def test_thousands_of_made_up_runs_hold_the_truth(step: bool) -> None:
    rng = np.random.default_rng(20261202 + step)
    for _ in range(1000):
        check_run(made_up_run(rng, tasks=int(rng.integers(8, 60)), step=step))


def test_a_long_run_pins_the_drift() -> None:
    rng = np.random.default_rng(7)
    run = made_up_run(rng, tasks=2000, step=False)
    check_run(run)
    _, clock = estimate(run)
    span_s = (run.received[-1] - run.sent[0]) / 1e9
    # the rate is known to within the links' spread over the run's length
    assert clock.drift_uncertainty_ppm <= 1e6 * 0.1 / span_s


def test_a_bogus_round_trip_is_set_aside() -> None:
    model = DriftModel()
    model.add(Bounds(0, 2 * MS, 4 * MS, 0))
    assert model.add(Bounds(10 * MS, 2 * MS, 14 * MS, 3 * MS)) == -1  # lower > upper
    assert model.rejected == 1 and len(model.segments) == 1


def test_one_round_trip_bounds_the_offset_and_the_fastest_drift_the_rest() -> None:
    """The band of one round trip is its bounds, and away from it, it widens by the
    fastest drift allowed."""
    model = DriftModel(max_drift_ppm=500)
    model.add(Bounds(0, 2 * MS, 4 * MS, 0))
    (segment,) = model.segments
    low, high = segment.band(np.asarray([0, 4 * MS, 1_000 * MS]))
    # each bound holds where the host stamped: between send and receipt
    assert high[0] == pytest.approx(2 * MS, abs=500e-6 * 4 * MS)
    assert low[1] == pytest.approx(0, abs=500e-6 * 4 * MS)
    assert (high[2] - low[2]) - (high[0] - low[0]) <= 2 * 500e-6 * 1e9 + SLACK_NS
