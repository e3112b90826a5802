"""Shared fixtures: federations of real endpoint processes, stopped after each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from colmena_fx.federation import Federation
from testing import leaks
from testing.sites import PROCESS_POOL
from testing.sites import FederationFactory
from testing.sites import write_federation
from testing.sites import write_site

#: The local Globus Compute service (RabbitMQ, stand-in web service, endpoints),
#: links with a known clock offset or delay, and a Redis server for data stores.
pytest_plugins = ["testing.gcservice.fixtures", "testing.links", "testing.redis"]


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    """Fail a test that leaves threads, child processes or library state behind.

    Autouse, so it is set up before and torn down after the test's other
    function-scoped fixtures: what they stop is not a leak. A leak is reported as
    an error of the test's teardown, beside (never instead of) its own failure.
    """
    before = leaks.snapshot()
    yield
    problems = leaks.check(before)
    if problems:
        pytest.fail(
            "the test left this behind:\n  " + "\n  ".join(problems), pytrace=False
        )


@pytest.fixture
def make_federation(tmp_path: Path) -> Iterator[FederationFactory]:
    """Build and start a federation; every one started here is stopped afterwards."""
    started: list[Federation] = []

    def make(
        methods: dict[str, dict[str, Any]],
        sites: dict[str, dict[str, Any]] | None = None,
        federation: dict[str, Any] | None = None,
        **site_settings: Any,
    ) -> Federation:
        site_files = [
            write_site(tmp_path, name, engine, **site_settings)
            for name, engine in (sites or {"cpu": PROCESS_POOL}).items()
        ]
        path = write_federation(tmp_path, site_files, methods, **(federation or {}))
        federation = Federation.from_file(path)
        started.append(federation)
        return federation.start()

    yield make
    for federation in started:
        federation.stop()


@pytest.fixture
def cpu_federation(make_federation: FederationFactory) -> Federation:
    """One process-pool site running the functions of `testing.tasks`."""
    names = ["echo", "add", "fail_with", "sleep_then", "die", "return_unpicklable"]
    return make_federation(
        {name: {"site": "cpu", "function": f"testing.tasks:{name}"} for name in names}
    )
