"""The embedded endpoint process: its link, its authentication, its files."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
import zmq

from colmena_fx.configfiles import load_site
from colmena_fx.endpoint import wire
from colmena_fx.endpoint.process import EndpointProcess
from colmena_fx.endpoint.server import _OnlyClientKey
from colmena_fx.exceptions import ConfigError
from colmena_fx.exceptions import EndpointError
from colmena_fx.federation import Federation
from testing.sites import PROCESS_POOL
from testing.sites import THREAD_POOL
from testing.sites import FederationFactory
from testing.sites import write_site
from testing.wait import wait_until


@pytest.fixture
def endpoint(tmp_path: Path):
    process = EndpointProcess(
        load_site(write_site(tmp_path, "solo", THREAD_POOL)), tmp_path / "run"
    )
    info = process.start()
    yield process, info
    process.stop()


def _dealer(ctx: zmq.Context, info: wire.ConnectionInfo, public: str, secret: str):
    sock = ctx.socket(zmq.DEALER)
    sock.curve_serverkey = info.server_public_key.encode()
    sock.curve_publickey = public.encode()
    sock.curve_secretkey = secret.encode()
    sock.linger = 0
    sock.connect(info.address)
    return sock


def _hello(host: str) -> list[bytes]:
    header = wire.HelloHeader(
        client_host=host, session="s1", role="rx", run="r", client_pid=os.getpid()
    )
    return wire.encode(wire.Kind.HELLO, header)


def test_connection_file_is_private_and_names_an_ipc_socket(endpoint) -> None:
    process, info = endpoint
    mode = stat.S_IMODE(process.connection_file.stat().st_mode)
    assert mode == 0o600
    assert info.address.startswith("ipc://")
    socket_dir = Path(info.address.removeprefix("ipc://")).parent
    assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700


def test_peer_with_the_run_key_is_answered(endpoint) -> None:
    _, info = endpoint
    ctx = zmq.Context()
    try:
        sock = _dealer(ctx, info, info.client_public_key, info.client_secret_key)
        sock.send_multipart(_hello("t"))
        assert sock.poll(10_000), "the endpoint never answered its own client"
        kind, header, _ = wire.decode(sock.recv_multipart())
        assert kind is wire.Kind.WELCOME
        assert header.running == [] and header.finished == []
        assert sock.poll(10_000), "no heartbeat followed the welcome"
        kind, header, _ = wire.decode(sock.recv_multipart())
        assert kind is wire.Kind.HEARTBEAT
        assert header.engine == "ThreadPoolEngine"
    finally:
        ctx.destroy(linger=0)


def test_peer_without_the_run_key_is_dropped_and_logged(endpoint) -> None:
    process, info = endpoint
    ctx = zmq.Context()
    try:
        public, secret = wire.new_keypair()
        intruder = _dealer(ctx, info, public, secret)
        intruder.send_multipart(_hello("intruder"))
        intruder.send_multipart(
            wire.encode(
                wire.Kind.TASK, wire.TaskHeader.model_construct(task_id="x"), b"payload"
            )
        )
        assert not intruder.poll(2_000), "an unauthenticated peer got an answer"
    finally:
        ctx.destroy(linger=0)
    wait_until(
        lambda: "rejected a peer" in process.log_path.read_text(),
        10,
        "the endpoint logging the rejected peer",
    )
    log = process.log_path.read_text()
    assert f"rejected a peer with an unknown CURVE key {public}" in log
    assert "intruder" not in log  # its HELLO was never read
    assert "dropped" not in log


def test_key_check_accepts_only_the_run_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    public, _ = wire.new_keypair()
    other, _ = wire.new_keypair()
    check = _OnlyClientKey(public)
    assert check.callback("*", public.encode())
    with caplog.at_level(logging.WARNING):
        assert not check.callback("*", other.encode())
    assert other in caplog.text


def test_tcp_link_binds_to_loopback(make_federation: FederationFactory) -> None:
    federation: Federation = make_federation(
        {"echo": {"site": "cpu", "function": "testing.tasks:echo"}},
        local={"link": "tcp"},
    )
    status = federation.status()[0]
    assert status.state == "running"
    info = wire.ConnectionInfo.read(
        federation.transports["cpu"].process.connection_file  # type: ignore[attr-defined]
    )
    assert info.address.startswith("tcp://127.0.0.1:")
    federation.submit("echo", "over tcp")
    result = federation.get_result(timeout=60)
    assert result is not None and result.value == "over tcp"


def test_non_loopback_tcp_host_is_refused(tmp_path: Path) -> None:
    path = write_site(
        tmp_path, "wide", PROCESS_POOL, local={"link": "tcp", "tcp_host": "0.0.0.0"}
    )
    with pytest.raises(ConfigError, match=r"local.tcp_host.*loopback"):
        load_site(path)


def test_bad_engine_block_fails_start_naming_file_and_key(tmp_path: Path) -> None:
    path = write_site(tmp_path, "broken", {"type": "NoSuchEngine"})
    process = EndpointProcess(load_site(path), tmp_path / "run")
    with pytest.raises(ConfigError, match=r"broken.yaml: key 'engine': 'NoSuchEngine'"):
        process.start()


def test_engine_that_cannot_start_reports_its_log(tmp_path: Path) -> None:
    # A valid engine whose provider is misconfigured fails inside the endpoint.
    engine = {"type": "ProcessPoolEngine", "max_workers": -1}
    process = EndpointProcess(
        load_site(write_site(tmp_path, "bad", engine)), tmp_path / "run"
    )
    with pytest.raises((EndpointError, ConfigError), match="bad"):
        process.start()
