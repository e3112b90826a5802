"""Pytest fixtures: one broker and stand-in service per session, endpoints per test.

Loaded as a plugin by `tests/conftest.py`. The broker and service bind to loopback
on free ports and are stopped by the fixtures that started them.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from colmena_fx.federation import Federation
from colmena_fx.transports.globus_service import ACCESS_TOKEN_ENV
from testing import leaks
from testing.gcservice.broker import RabbitMQBroker
from testing.gcservice.endpoint import EndpointProcess
from testing.gcservice.service import ComputeServiceStandIn

#: Start a real endpoint: (name, engine block) -> its running process.
EndpointFactory = Callable[[str, dict[str, Any]], EndpointProcess]


@pytest.fixture(scope="session")
def compute_service(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ComputeServiceStandIn]:
    broker = RabbitMQBroker(tmp_path_factory.mktemp("rabbitmq")).start()
    if broker.pid is not None:  # it runs, and spawns helpers, across tests
        leaks.keep_for_session(broker.pid)
    service = ComputeServiceStandIn(broker.url)
    try:
        yield service.start()
    finally:
        service.stop()
        broker.stop()


@pytest.fixture
def globus_credentials(
    compute_service: ComputeServiceStandIn, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The stand-in's token, where colmena-fx reads an access token from."""
    monkeypatch.setenv(ACCESS_TOKEN_ENV, compute_service.token)
    return compute_service.token


@pytest.fixture
def start_endpoint(
    compute_service: ComputeServiceStandIn, tmp_path: Path
) -> Iterator[EndpointFactory]:
    started: list[EndpointProcess] = []

    def start(name: str, engine: dict[str, Any]) -> EndpointProcess:
        endpoint = EndpointProcess(compute_service, name, engine, tmp_path / "gce")
        started.append(endpoint)
        return endpoint.start()

    yield start
    for endpoint in started:
        endpoint.stop()
    compute_service.reset_faults()  # whatever the test switched on


@pytest.fixture
def federations() -> Iterator[list[Federation]]:
    """Federations a test started by hand; each is stopped after the test."""
    started: list[Federation] = []
    yield started
    for federation in started:
        federation.stop()


def write_globus_site(
    directory: Path,
    name: str,
    service: ComputeServiceStandIn,
    endpoint: EndpointProcess,
    **link: Any,
) -> Path:
    """A site file reaching `endpoint` through the stand-in service."""
    settings = {
        "endpoint_id": endpoint.endpoint_id,
        "service_url": service.url,
        "status_poll_s": 0.5,
        "start_timeout_s": 10,
        **link,
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yaml"
    body = {"name": name, "transport": "globus", "globus": settings,
            "engine": endpoint.engine}  # fmt: skip
    path.write_text(yaml.safe_dump(body))
    return path
