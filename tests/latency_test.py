"""Hop model, clock-offset estimation, statistics and exports, on made-up timelines."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from colmena_fx.clockplan import ClockPlan
from colmena_fx.clocksetting import ClockSetting
from colmena_fx.exceptions import UsageError
from colmena_fx.latency import LatencyRecorder
from colmena_fx.latency.clocks import ClockSync
from colmena_fx.latency.clocks import RoundTrip
from colmena_fx.latency.clocks import round_trips
from colmena_fx.latency.export import export
from colmena_fx.latency.hops import hops_between
from colmena_fx.latency.timelines import TaskInfo
from colmena_fx.models import Stamp

MS = 1_000_000


def local_timeline(
    start: int, offset: int, out: int, back: int, host: str = "node"
) -> list[tuple[str, int, str]]:
    """A local site's task: `out`/`back` ns on the links, remote clock at +offset."""
    sent = start + 2 * MS
    remote = sent + out + offset  # in the remote clock
    return [
        (Stamp.CREATED, start, "client"),
        (Stamp.SERIALIZED, start + MS, "client"),
        (Stamp.SENT, sent, "client"),
        (Stamp.ENDPOINT_RECEIVED, remote, host),
        (Stamp.WORKER_STARTED, remote + MS, host),
        (Stamp.COMPUTE_STARTED, remote + 2 * MS, host),
        (Stamp.COMPUTE_ENDED, remote + 12 * MS, host),
        (Stamp.WORKER_ENDED, remote + 13 * MS, host),
        (Stamp.ENDPOINT_SENT, remote + 14 * MS, host),
        (Stamp.RECEIVED, sent + out + 14 * MS + back, "client"),
        (Stamp.DESERIALIZED, sent + out + 15 * MS + back, "client"),
        (Stamp.DELIVERED, sent + out + 16 * MS + back, "client"),
    ]


def recorder_with(timelines: list[list[tuple[str, int, str]]], site: str = "s"):
    recorder = LatencyRecorder()
    for i, events in enumerate(timelines):
        recorder.add(TaskInfo(f"t{i}", site, "m", "default", True), events)
    return recorder


def trip_events(trip: RoundTrip, host: str = "node") -> list[tuple[str, int, str]]:
    return [
        (Stamp.SENT, trip.sent_ns, "client"),
        (Stamp.ENDPOINT_RECEIVED, trip.remote_first_ns, host),
        (Stamp.ENDPOINT_SENT, trip.remote_last_ns, host),
        (Stamp.RECEIVED, trip.received_ns, "client"),
    ]


def test_estimate_holds_the_true_offset_within_its_uncertainty() -> None:
    rng = np.random.default_rng(1)
    offset = -3_250 * MS
    sync = ClockSync()
    for i in range(200):
        out, back = (int(d) for d in rng.exponential(2 * MS, 2) + 0.1 * MS)
        sent = i * 50 * MS
        last = RoundTrip(sent, sent + out + offset, sent + out + offset + 5 * MS,
                         sent + out + 5 * MS + back)  # fmt: skip
        sync.observe("s", trip_events(last))
    (clock,) = sync.offsets()
    assert clock.consistent and len(clock.segments) == 1
    assert abs(clock.offset_s * 1e9 - offset) <= clock.uncertainty_s * 1e9
    # no wider than the last round trip allows, nor the fastest drift
    assert clock.uncertainty_s * 1e9 <= last.delay_ns / 2
    assert abs(clock.drift_ppm) <= clock.drift_uncertainty_ppm <= 500


def test_a_stepped_clock_starts_a_segment() -> None:
    sync = ClockSync()
    for i, step in enumerate((0, 0, 500 * MS)):
        sent = (10 + i * 10) * MS
        sync.observe("s", trip_events(
            RoundTrip(sent, sent + MS + step, sent + 2 * MS + step, sent + 3 * MS)
        ))  # fmt: skip
    (clock,) = sync.offsets()
    assert not clock.consistent
    assert [s.after_trips for s in clock.segments] == [0, 2]
    assert clock.segments[1].step_s == pytest.approx(0.5, abs=0.002)
    # half the last trip's delay, and what the fastest drift adds over its 3 ms
    assert clock.uncertainty_s == pytest.approx(0.001, abs=2e-6)
    assert "stepped 1x" in clock.note()


def test_corrected_hops_are_never_negative_and_recover_the_link() -> None:
    rng = np.random.default_rng(2)
    offset = 2_000 * MS
    timelines = [
        local_timeline(
            i * 100 * MS, offset, int(rng.uniform(4.9, 6) * MS),
            int(rng.uniform(4.9, 6) * MS),
        )
        for i in range(100)
    ]  # fmt: skip
    recorder = recorder_with(timelines)
    (clock,) = recorder.offsets()
    assert (clock.site, clock.host, clock.samples) == ("s", "node", 100)
    assert abs(clock.offset_s - offset / 1e9) <= clock.uncertainty_s
    # the bound is about half a round trip's time on the links: offset and link
    # asymmetry cannot be told apart
    assert clock.uncertainty_s <= 6e-3
    _, table = recorder.hops()
    assert (table.seconds >= 0).all()
    stats = {row.hop: row for row in recorder.summary()}
    assert stats["link_out"].crosses_clocks
    assert stats["link_out"].median_s == pytest.approx(5.45e-3, abs=0.6e-3)
    # each stamp within its own round trip's bounds: at most half its delay
    assert 0 < stats["link_out"].uncertainty_s <= 6e-3
    assert not stats["compute"].crosses_clocks
    # within the remote clock, only its rate is uncertain: at most the fastest
    # drift over the hop's 10 ms
    assert 0 < stats["compute"].uncertainty_s <= 500e-6 * 0.0101
    assert stats["compute"].median_s == pytest.approx(0.010)
    assert stats["round_trip"].p99_s >= stats["round_trip"].p95_s


def synchronized(within_ms: float = 0.0) -> ClockPlan:
    return ClockPlan(ClockSetting(mode="synchronized", within_ms=within_ms))


def test_synchronized_clocks_are_taken_as_stamped() -> None:
    recorder = LatencyRecorder(synchronized(within_ms=1))
    events = local_timeline(0, MS // 2, 5 * MS, 5 * MS)
    recorder.add(TaskInfo("t", "s", "m", "default", True), events)
    link = {row.hop: row for row in recorder.summary()}["link_out"]
    assert link.median_s == pytest.approx(0.0055)
    assert link.uncertainty_s == pytest.approx(0.001)
    (clock,) = recorder.offsets()
    assert (clock.setting, clock.offset_s, clock.warning) == (
        "synchronized within 1 ms",
        0.0,
        "",
    )


def test_a_synchronized_declaration_the_round_trips_contradict_is_set_aside(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = LatencyRecorder(synchronized())
    events = local_timeline(0, 40 * MS, 5 * MS, 5 * MS)
    recorder.add(TaskInfo("t", "s", "m", "default", True), events)
    (clock,) = recorder.offsets()
    assert "site 's'" in clock.warning and "at least 35.000 ms ahead" in clock.warning
    assert "clocks: estimate" in clock.warning and not clock.consistent
    assert clock.warning in caplog.text
    assert abs(clock.offset_s - 0.040) <= clock.uncertainty_s
    link = {row.hop: row for row in recorder.summary()}["link_out"]
    assert 0 <= link.median_s <= 0.010  # corrected: not 45 ms


def test_declared_one_way_delays_split_an_asymmetric_link() -> None:
    """A round trip cannot tell 10 ms out, 30 ms back from 20 and 20 with the clock
    10 ms off; the measured least one-way delays can."""
    offset, out, back = 3_000 * MS, 10 * MS, 30 * MS
    timelines = [local_timeline(i * 100 * MS, offset, out, back) for i in range(20)]
    guessed = recorder_with(timelines)
    (clock,) = guessed.offsets()
    assert clock.offset_s * 1e9 == pytest.approx(offset - 10 * MS, abs=MS / 100)
    assert abs(clock.offset_s * 1e9 - offset) <= clock.uncertainty_s * 1e9  # inside
    told = LatencyRecorder(ClockPlan(sites={"s": ClockSetting(
        link_out_ms=9.9, link_back_ms=29.9)}))  # fmt: skip
    for i, events in enumerate(timelines):
        told.add(TaskInfo(f"t{i}", "s", "m", "default", True), events)
    (clock,) = told.offsets()
    assert abs(clock.offset_s * 1e9 - offset) <= 0.1 * MS
    assert clock.uncertainty_s <= 0.00011 and clock.consistent  # 0.1 ms undeclared
    hops = {row.hop: row for row in told.summary()}
    assert hops["link_out"].median_s == pytest.approx(0.010, abs=1e-4)
    assert hops["link_back"].median_s == pytest.approx(0.030, abs=1e-4)
    # declared delays longer than a round trip's are contradicted, and dropped
    wrong = LatencyRecorder(
        ClockPlan(sites={"s": ClockSetting(link_out_ms=30, link_back_ms=30)})
    )
    wrong.add(TaskInfo("t", "s", "m", "default", True), timelines[0])
    (clock,) = wrong.offsets()
    assert "only 40.000 ms on the link" in clock.warning


def test_missing_endpoint_stamps_merge_into_the_widest_honest_hop() -> None:
    # a Globus Compute task: no endpoint stamps; the engine's execution stamps
    events = [
        event
        for event in local_timeline(0, 0, 5 * MS, 5 * MS)
        if event[0] not in (Stamp.ENDPOINT_RECEIVED, Stamp.ENDPOINT_SENT)
    ]
    events.insert(3, (Stamp.EXECUTION_STARTED, 7 * MS + 1, "node"))
    names = [row.hop for row in recorder_with([events]).summary()]
    assert names[:4] == ["serialize", "client_queue", "link_out+endpoint_queue",
                         "worker_start"]  # fmt: skip
    assert "worker_return+endpoint_return+link_back" in names
    assert [hop.name for hop in hops_between([0, 2, 11])] == [
        "serialize+client_queue",
        "link_out+endpoint_queue+worker_start+input_resolve+compute"
        "+result_serialize+worker_return+endpoint_return+link_back",
    ]


def test_each_remote_host_is_its_own_clock_and_retries_count_once() -> None:
    first = local_timeline(0, 0, 5 * MS, 5 * MS, host="a")
    retried = first[:3] + local_timeline(100 * MS, 7 * MS, MS, MS, host="b")[2:]
    trips = round_trips(retried)
    assert list(trips) == ["b"]  # the first attempt's host left no round trip
    recorder = recorder_with([first, retried])
    assert {(c.host, c.samples) for c in recorder.offsets()} == {("a", 1), ("b", 1)}


def test_failed_tasks_count_but_do_not_enter_statistics() -> None:
    recorder = LatencyRecorder()
    events = local_timeline(0, 0, MS, MS)
    recorder.add(TaskInfo("ok", "s", "m", "default", True), events)
    recorder.add(TaskInfo("bad", "s", "m", "default", False), events)
    (counts,) = recorder.counts()
    assert (counts.succeeded, counts.failed) == (1, 1)
    assert {row.count for row in recorder.summary()} == {1}
    with pytest.raises(UsageError, match="cannot group by"):
        recorder.summary(by=("host",))
    (everything,) = {(r.site, r.method) for r in recorder.summary(by=("site",))}
    assert everything == ("s", "*")


def test_export_writes_csv_and_parquet_that_read_back(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    recorder = recorder_with(
        [local_timeline(i * 50 * MS, 3 * MS, 2 * MS, 2 * MS) for i in range(5)]
    )
    files = export(recorder, tmp_path)
    assert {f.name for f in files} == {
        f"{name}.{fmt}" for name in ("hops", "summary", "clocks", "clock_segments")
        for fmt in ("csv", "parquet")
    }  # fmt: skip
    hops = pq.read_table(tmp_path / "hops.parquet").to_pydict()
    assert set(hops["task_id"]) == {f"t{i}" for i in range(5)}
    link = [s for s, h in zip(hops["seconds"], hops["hop"], strict=True)
            if h == "link_out"]  # fmt: skip
    assert len(link) == 5 and min(link) >= 0
    with open(tmp_path / "summary.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert {"site", "method", "hop", "median_s", "p99_s", "uncertainty_s"} <= set(
        rows[0]
    )
    clocks = pq.read_table(tmp_path / "clocks.parquet").to_pydict()
    assert clocks["offset_s"][0] == pytest.approx(0.003, abs=1e-3)
    assert (clocks["segments"], clocks["steps"], clocks["consistent"]) == (
        [1],
        [0],
        [True],
    )
    assert {"drift_ppm", "drift_uncertainty_ppm", "setting", "warning"} <= set(clocks)
    segments = pq.read_table(tmp_path / "clock_segments.parquet").to_pydict()
    assert segments["trips"] == [5] and segments["step_s"] == [None]


def test_a_run_is_read_back_from_its_journal(tmp_path: Path) -> None:
    events = local_timeline(0, 0, MS, MS)
    lines = [
        {"event": "run", "time_ns": 0, "task": {"clocks": "synchronized"}},  # older
        {"event": "delivered", "time_ns": 1, "task": {
            "task_id": "t", "site": "s", "method": "m", "topic": "default",
            "success": True, "timeline": {"events": events}}},
        {"event": "processed", "time_ns": 2,
         "task": {"task_id": "t", "time_ns": events[-1][1] + 4 * MS}},
    ]  # fmt: skip
    (tmp_path / "journal.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in lines)
    )
    recorder = LatencyRecorder.from_run(tmp_path)
    assert recorder.clocks.synchronized
    thinker = {row.hop: row for row in recorder.summary()}["thinker"]
    assert thinker.median_s == pytest.approx(0.004)


def test_raw_hop_durations_of_one_timeline() -> None:
    from colmena_fx.latency import hop_durations

    durations = hop_durations(local_timeline(0, 0, 5 * MS, 5 * MS))
    assert durations["link_out"] == pytest.approx(0.005)
    assert durations["endpoint_queue+worker_start"] == pytest.approx(0.001)
    assert durations["compute"] == pytest.approx(0.010)


def test_a_stamp_amended_before_its_task_is_added_is_kept() -> None:
    recorder = LatencyRecorder()
    events = local_timeline(0, 0, MS, MS)
    # the thinker may take a result before the receiving thread has recorded it
    recorder.stamped("t", Stamp.PROCESSED, events[-1][1] + 3 * MS)
    recorder.add(TaskInfo("t", "s", "m", "default", True), events)
    thinker = {row.hop: row for row in recorder.summary()}["thinker"]
    assert thinker.median_s == pytest.approx(0.003)
