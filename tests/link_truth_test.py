"""The raw stamps of tasks over links whose truth is known: an endpoint whose clock is
shifted by libfaketime, and a link through a delay proxy. The stamps are checked as
recorded (uncorrected), in the results and in the run's journal; the settings that
build these links (`local.env`, `tcp_port`, `connect_via`) are checked on the way.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from colmena_fx.endpoint.wire import ConnectionInfo
from colmena_fx.exceptions import ConfigError
from colmena_fx.exceptions import EndpointError
from colmena_fx.federation import Federation
from colmena_fx.journal import final_records
from colmena_fx.models import Result
from colmena_fx.models import Stamp
from testing.links import DelayedLinkFactory
from testing.links import echo_federation
from testing.links import echo_one_at_a_time
from testing.links import free_port
from testing.links import shifted_clock
from testing.sites import PROCESS_POOL

TASKS = 10
#: Stamped in the endpoint process or in a worker: by the site's clock.
REMOTE = [
    Stamp.ENDPOINT_RECEIVED,
    Stamp.EXECUTION_STARTED,
    Stamp.WORKER_STARTED,
    Stamp.COMPUTE_STARTED,
    Stamp.COMPUTE_ENDED,
    Stamp.WORKER_ENDED,
    Stamp.EXECUTION_ENDED,
    Stamp.ENDPOINT_SENT,
]
#: Stamped by the worker process itself (a child of the endpoint's engine).
WORKER = [
    Stamp.WORKER_STARTED,
    Stamp.COMPUTE_STARTED,
    Stamp.COMPUTE_ENDED,
    Stamp.WORKER_ENDED,
]


def _stamps(events: Sequence[Sequence[Any]]) -> dict[str, int]:
    """Each stamp's last time (ns), from a timeline's `[name, time_ns, host]` events."""
    return {str(name): int(time_ns) for name, time_ns, _ in events}


def _journaled(federation: Federation, results: list[Result]) -> list[dict[str, int]]:
    """The stamps of `results` as the run's journal has them, which are theirs (but
    for `processed`, which comes after the journal's record of the delivery)."""
    assert federation.run_dir is not None
    journal = {
        record["task_id"]: _stamps(record["timeline"]["events"])
        for record in final_records(federation.run_dir)
    }
    assert journal.keys() == {result.task_id for result in results}
    for result in results:
        live = _stamps(result.timeline.events)
        del live[Stamp.PROCESSED]
        assert journal[result.task_id] == live
    return list(journal.values())


@pytest.mark.parametrize("offset_s", [3.0, -3.0])
def test_a_shifted_endpoint_clock_shows_in_the_raw_stamps(
    tmp_path: Path, offset_s: float
) -> None:
    # A process pool: the worker stamps come from processes of their own, which
    # must inherit the endpoint's environment (and so its clock).
    federation = echo_federation(tmp_path, shifted_clock(offset_s), PROCESS_POOL)
    with federation:
        results = echo_one_at_a_time(federation, TASKS)
    offset_ns = int(offset_s * 1e9)
    for stamps in _journaled(federation, results):
        assert set(WORKER) <= stamps.keys(), stamps
        sent, received = stamps[Stamp.SENT], stamps[Stamp.RECEIVED]
        # raw link time = real link time (short, positive on loopback) + offset
        link_out_s = (stamps[Stamp.ENDPOINT_RECEIVED] - sent) / 1e9
        assert offset_s <= link_out_s <= offset_s + 1, stamps
        link_back_s = (received - stamps[Stamp.ENDPOINT_SENT]) / 1e9
        assert -offset_s <= link_back_s <= -offset_s + 1, stamps
        # Every remote event happened between the client's send and receive, so
        # by the shifted clock it lies between those stamps shifted by the offset.
        for name in REMOTE:
            if name in stamps:
                assert sent + offset_ns <= stamps[name] <= received + offset_ns, name


def test_env_reaches_the_workers(tmp_path: Path) -> None:
    local = {"env": {"CFX_LINK_TEST": "from the site file", "OMP_NUM_THREADS": "1"}}
    with echo_federation(tmp_path, local, PROCESS_POOL) as federation:
        for name, expected in local["env"].items():
            federation.submit("getenv", name)
            result = federation.get_result(timeout=60)
            assert result is not None and result.value == expected, result


@pytest.mark.parametrize("back_delay_s", [None, 0.06], ids=["symmetric", "slow-back"])
def test_a_delayed_link_shows_in_the_raw_stamps(
    tmp_path: Path, make_delayed_link: DelayedLinkFactory, back_delay_s: float | None
) -> None:
    link = make_delayed_link(0.03, back_delay_s)
    federation = echo_federation(tmp_path, link.local)
    with federation:
        # The endpoint listens on the port it was given; the client goes around.
        transport = federation.transports["far"]
        info = ConnectionInfo.read(transport.process.connection_file)  # type: ignore[attr-defined]
        assert info.address == f"tcp://127.0.0.1:{link.endpoint_port}"
        results = echo_one_at_a_time(federation, TASKS)
    out_ns, back_ns = int(link.delay_s * 1e9), int(link.back_delay_s * 1e9)
    for stamps in _journaled(federation, results):
        assert stamps[Stamp.ENDPOINT_RECEIVED] - stamps[Stamp.SENT] >= out_ns
        assert stamps[Stamp.RECEIVED] - stamps[Stamp.ENDPOINT_SENT] >= back_ns


def test_a_taken_tcp_port_is_a_config_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        federation = echo_federation(tmp_path, {"link": "tcp", "tcp_port": port})
        with pytest.raises(ConfigError, match=rf"'local.tcp_port'.*:{port}"):
            federation.start()
        federation.stop()


def test_a_connect_via_nobody_listens_on_fails_the_start(tmp_path: Path) -> None:
    local = {"link": "tcp", "connect_via": f"127.0.0.1:{free_port()}",
             "start_timeout_s": 2}  # fmt: skip
    federation = echo_federation(tmp_path, local)
    with pytest.raises(EndpointError, match=r"never answered.*local.connect_via"):
        federation.start()
    federation.stop()
