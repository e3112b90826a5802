"""`colmena-fx data check`: each store round-tripped from this host, each route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from colmena_fx.cli import main
from testing.links import free_port
from testing.redis import RedisServer
from testing.sites import PROCESS_POOL
from testing.sites import write_federation
from testing.sites import write_site


def _federation(tmp_path: Path, stores: dict[str, Any]) -> Path:
    site = write_site(tmp_path, "cpu", PROCESS_POOL)
    methods = {"echo": {"site": "cpu", "function": "testing.tasks:echo"}}
    return write_federation(tmp_path, [site], methods, data={"stores": stores})


def _check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["data", "check", str(path), "--size", "2 MB"])
    return code, " ".join(capsys.readouterr().out.split())


def test_every_store_answers(
    tmp_path: Path, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    stores = {
        "scratch": {"type": "file", "path": "store", "sites": ["client", "cpu"]},
        "cache": {"type": "redis", "host": redis_server.host,
                  "port": redis_server.port},
    }  # fmt: skip
    code, out = _check(_federation(tmp_path, stores), capsys)
    assert code == 0, out
    assert out.count(" ok ") == 2
    assert "scratch file client, cpu" in out and "cache redis everyone" in out
    assert "echo cpu scratch 1 MB task" in out  # the first store reaching both
    assert redis_server.keys() == 0
    assert list((tmp_path / "store").iterdir()) == []


def test_a_store_that_is_down_fails_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    stores = {"cache": {"type": "redis", "port": port, "timeout_s": 1}}
    code, out = _check(_federation(tmp_path, stores), capsys)
    assert code == 1
    assert f"127.0.0.1:{port} does not answer" in out
