"""Hop model, clock-offset estimation, statistics and exports, on made-up timelines."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from colmena_fx.exceptions import UsageError
from colmena_fx.latency import LatencyRecorder
from colmena_fx.latency.clocks import OffsetEstimator
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


def test_estimate_holds_the_true_offset_within_its_uncertainty() -> None:
    rng = np.random.default_rng(1)
    offset = -3_250 * MS
    estimator = OffsetEstimator()
    for i in range(200):
        out, back = (int(d) for d in rng.exponential(2 * MS, 2) + 0.1 * MS)
        sent = i * 50 * MS
        estimator.add(
            RoundTrip(sent, sent + out + offset, sent + out + offset + 5 * MS,
                      sent + out + 5 * MS + back)
        )  # fmt: skip
    estimate, uncertainty, consistent = estimator.estimate()
    assert consistent
    assert abs(estimate - offset) <= uncertainty
    # tighter than NTP's bound of half the least delay
    assert uncertainty <= estimator.min_delay_ns() / 2


def test_a_stepped_clock_is_reported_inconsistent() -> None:
    estimator = OffsetEstimator()
    for step in (0, 0, 500 * MS):
        sent = 10 * MS
        estimator.add(RoundTrip(sent, sent + MS + step, sent + 2 * MS + step,
                                sent + 3 * MS))  # fmt: skip
    _, uncertainty, consistent = estimator.estimate()
    assert not consistent
    assert uncertainty == pytest.approx(MS)  # half the least-delayed recent trip


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
    # the bound is the least outbound plus least return time: offset and link
    # asymmetry cannot be told apart
    assert clock.uncertainty_s <= clock.min_delay_s / 2
    _, table = recorder.hops()
    assert (table.seconds >= 0).all()
    stats = {row.hop: row for row in recorder.summary()}
    assert stats["link_out"].crosses_clocks
    assert stats["link_out"].median_s == pytest.approx(5.45e-3, abs=0.6e-3)
    assert stats["link_out"].uncertainty_s == pytest.approx(clock.uncertainty_s)
    assert not stats["compute"].crosses_clocks
    assert stats["compute"].uncertainty_s == 0
    assert stats["compute"].median_s == pytest.approx(0.010)
    assert stats["round_trip"].p99_s >= stats["round_trip"].p95_s


def test_synchronized_clocks_are_taken_as_stamped() -> None:
    recorder = LatencyRecorder(synchronized=True)
    events = local_timeline(0, 40 * MS, 5 * MS, 5 * MS)
    recorder.add(TaskInfo("t", "s", "m", "default", True), events)
    link = {row.hop: row for row in recorder.summary()}["link_out"]
    assert link.median_s == pytest.approx(0.045)


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
        f"{name}.{fmt}" for name in ("hops", "summary", "clocks")
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


def test_a_run_is_read_back_from_its_journal(tmp_path: Path) -> None:
    events = local_timeline(0, 0, MS, MS)
    lines = [
        {"event": "run", "time_ns": 0, "task": {"clocks": "synchronized"}},
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
