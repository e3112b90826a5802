"""Clock corrections against known truth on running sites, over a minute.

One federation of four sites on this machine, each endpoint (and its workers) on a
clock of its own that the test controls (`testing/faketime.ClockControl`): offsets of
seconds, drifts of +-50 and +-200 ppm, and steps of +5 ms and -20 ms mid-run; two
sites on loopback, two behind a link 10 ms out and 30 ms back. Each site has one task
in flight at a time; a site's clock steps just after one of its results, before its
next task is sent, so that no round trip straddles the step (a straddling one is the
model's to reject: `tests/clock_drift_test.py`).

The estimate is checked where a user reads it: every remote stamp, corrected, lies
within its +- of the true client time at which it was taken; each clock's segments
hold the true offset at their start and end, and its drift; each step is found
within two tasks of where it was made; no hop between the client and a site comes
out negative. The run's journal read back gives the same estimate as the live run.

The far-fast site declares the link's one-way delays (`clocks: link_out_ms,
link_back_ms`): a -20 ms step behind a 40 ms round trip moves the remote clock by
less than the bounds' width, so without them it would go unnoticed (and its stamps
would still lie within their +-, which is all the bounds can promise).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from colmena_fx.federation import Federation
from colmena_fx.latency.clocks import ClockSync
from colmena_fx.latency.hops import CLIENT_STAMPS
from colmena_fx.latency.recorder import LatencyRecorder
from colmena_fx.models import HOST
from colmena_fx.models import Result
from colmena_fx.models import Stamp
from testing.faketime import ClockControl
from testing.links import ClockControlFactory
from testing.links import DelayedLinkFactory
from testing.links import shifted_clock
from testing.sites import THREAD_POOL
from testing.sites import write_federation
from testing.sites import write_site

#: How long tasks are sent, and how often each site gets one.
RUN_S = 60.0
PERIOD_S = 0.3
#: Beyond the reported +-: the truth's own uncertainty (a stamp's client time is
#: solved from the clock's line, and float rounding of ns since the epoch).
SLACK_NS = 5_000
SLACK_PPM = 1.0


@dataclass
class Site:
    """One site of the run, its clock, and when (if ever) the test steps it."""

    name: str
    offset_s: float
    drift_ppm: float
    step_by_s: float | None = None
    #: When the step is made, as a fraction of RUN_S.
    step_at: float = 0.0
    delayed: bool = False
    clocks: dict[str, Any] | None = None
    control: ClockControl | None = None
    sent: int = 0
    in_flight: bool = False
    last_sent_s: float = -PERIOD_S
    #: Tasks sent before the step was made.
    stepped_after: int | None = None
    results: list[Result] = field(default_factory=list)

    @property
    def method(self) -> str:
        return f"echo-{self.name}"

    @property
    def clock(self) -> ClockControl:
        assert self.control is not None
        return self.control


def _sites() -> list[Site]:
    return [
        Site("near-fast", 3.0, 200.0, step_by_s=0.005, step_at=1 / 2),
        Site("near-slow", -2.5, -50.0, step_by_s=-0.020, step_at=1 / 3),
        Site(
            "far-fast",
            -4.0,
            50.0,
            step_by_s=-0.020,
            step_at=2 / 3,
            delayed=True,
            clocks={"link_out_ms": 9.9, "link_back_ms": 29.9},
        ),
        Site("far-slow", 1.5, -200.0, delayed=True),
    ]


def _federation(
    directory: Path,
    sites: list[Site],
    make_clock_control: ClockControlFactory,
    make_delayed_link: DelayedLinkFactory,
) -> Federation:
    files = []
    for site in sites:
        site.control = make_clock_control(
            site.offset_s, site.drift_ppm, steppable=site.step_by_s is not None
        )
        link = make_delayed_link(0.010, 0.030).local if site.delayed else {}
        settings: dict[str, Any] = {
            "local": shifted_clock(control=site.control, **link)
        }
        if site.clocks is not None:
            settings["clocks"] = site.clocks
        files.append(write_site(directory, site.name, THREAD_POOL, **settings))
    methods = {
        site.method: {"site": site.name, "function": "testing.tasks:echo"}
        for site in sites
    }
    return Federation.from_file(write_federation(directory, files, methods))


def _run(federation: Federation, sites: list[Site]) -> None:
    """Each site: one task in flight, the next PERIOD_S after the last was sent,
    for RUN_S; its clock stepped after the first result past its `step_at`."""
    by_method = {site.method: site for site in sites}
    start = time.monotonic()
    deadline = start + RUN_S + 120
    while True:
        now = time.monotonic() - start
        for site in sites:
            due = now >= site.last_sent_s + PERIOD_S
            if not site.in_flight and now < RUN_S and due:
                federation.submit(site.method, site.sent)
                site.sent += 1
                site.in_flight, site.last_sent_s = True, now
        idle = [site for site in sites if not site.in_flight]
        if len(idle) == len(sites) and now >= RUN_S:
            return
        assert time.monotonic() < deadline, [(s.name, s.sent) for s in sites]
        due = [site.last_sent_s + PERIOD_S - now for site in idle if now < RUN_S]
        result = federation.get_result(timeout=max(min(due, default=1.0), 0.001))
        if result is None:
            continue
        assert result.success, result
        site = by_method[result.method]
        assert result.value == len(site.results)
        federation.processed(result)
        site.results.append(result)
        site.in_flight = False
        if (
            site.step_by_s is not None
            and site.stepped_after is None
            and time.monotonic() - start >= site.step_at * RUN_S
        ):
            site.clock.step(site.step_by_s)
            site.stepped_after = site.sent


def _remote_stamps_hold_the_truth(site: Site, clocks: ClockSync) -> int:
    """Every remote stamp of `site`, corrected, lies within its +- of the client
    time at which it was taken; the number of stamps checked."""
    checked = 0
    for index, result in enumerate(site.results):
        sent = result.timeline.get(Stamp.SENT)
        assert sent is not None
        raw = np.array(
            [e.time_ns for e in result.timeline.events if e.name not in CLIENT_STAMPS],
            dtype=np.int64,
        )
        correction = clocks.correct(
            site.name, HOST, raw, np.full(len(raw), sent.time_ns, dtype=np.int64)
        )
        assert correction is not None, site.name
        corrected = raw - correction.offset_ns
        truth = np.array([site.clock.client_ns(int(ns), sent.time_ns) for ns in raw])
        error = np.abs(corrected - truth)
        assert np.all(error <= correction.error_ns + SLACK_NS), (
            site.name,
            f"task {index}, stepped after {site.stepped_after}",
            (error - correction.error_ns).max(),
            clocks.offset(site.name, HOST),
        )
        checked += len(raw)
    return checked


def _line_truth_ns(clock: ClockControl, since_ns: int, at_ns: int) -> float:
    """The true offset at `at_ns` of the line the clock ran on at `since_ns`: a
    segment may end with a round trip just after a step, which fit it as well
    (its bounds were wider than the step), and its line is the one before."""
    later = sum(step.by_s for step in clock.steps if since_ns < step.after_ns <= at_ns)
    return clock.true_offset_ns(at_ns) - later * 1e9


def _clock_holds_the_truth(site: Site, clocks: ClockSync) -> None:
    """The clock's segments hold the true offset at both ends and the true drift,
    and begin where the test stepped the clock."""
    clock = clocks.offset(site.name, HOST)
    assert clock is not None, site.name
    assert clock.samples == len(site.results)
    assert clock.rejected == 0, clock
    expected = 1 if site.step_by_s is None else 2
    assert len(clock.segments) == expected, clock.segments
    for segment in clock.segments:
        for at_ns, offset_s, within_s in (
            (segment.start_ns, segment.offset_start_s, segment.uncertainty_start_s),
            (segment.end_ns, segment.offset_end_s, segment.uncertainty_end_s),
        ):
            true_s = _line_truth_ns(site.clock, segment.start_ns, at_ns) / 1e9
            assert abs(offset_s - true_s) <= within_s + SLACK_NS / 1e9, (
                site.name, segment, true_s
            )  # fmt: skip
        assert (
            abs(segment.drift_ppm - site.drift_ppm)
            <= segment.drift_uncertainty_ppm + SLACK_PPM
        ), (site.name, segment)
    if site.step_by_s is not None:
        assert site.stepped_after is not None, f"{site.name} was never stepped"
        found = clock.segments[1]
        assert abs(found.after_trips - site.stepped_after) <= 2, (
            site.name, found, site.stepped_after
        )  # fmt: skip
        assert found.step_s is not None
        assert found.step_s == pytest.approx(site.step_by_s, abs=0.002), found


def test_drifting_and_stepped_clocks_are_corrected_within_their_bounds(
    tmp_path: Path,
    make_clock_control: ClockControlFactory,
    make_delayed_link: DelayedLinkFactory,
) -> None:
    sites = _sites()
    federation = _federation(tmp_path, sites, make_clock_control, make_delayed_link)
    with federation:
        _run(federation, sites)
        live = federation.latency
        for site in sites:
            # a slow machine sends fewer, never none to speak of
            assert len(site.results) >= RUN_S / PERIOD_S / 4, (site.name, site.sent)
            assert _remote_stamps_hold_the_truth(site, live.clocks) > 0
            _clock_holds_the_truth(site, live.clocks)
        live_offsets = live.offsets()
    assert federation.run_dir is not None
    recorder = LatencyRecorder.from_run(federation.run_dir)
    assert recorder.offsets() == live_offsets
    _, table = recorder.hops()
    negative = [
        (hop, seconds)
        for hop, seconds in zip(table.hop, table.seconds, strict=True)
        if seconds < 0
    ]
    assert negative == []
