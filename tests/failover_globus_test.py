"""A method on a globus site and a local one: the local site takes over when the
endpoint behind the Globus Compute stand-in goes offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from colmena_fx.federation import Federation
from colmena_fx.transports.health import Health
from colmena_fx.transports.health import HealthChange
from testing.gcservice.fixtures import EndpointFactory
from testing.gcservice.fixtures import write_globus_site
from testing.gcservice.service import ComputeServiceStandIn
from testing.sites import PROCESS_POOL
from testing.sites import collect
from testing.sites import write_federation
from testing.sites import write_site
from testing.wait import wait_until

pytestmark = pytest.mark.usefixtures("globus_credentials")


def test_an_offline_globus_endpoint_fails_over_to_a_local_site(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    federations: list[Federation],
) -> None:
    endpoint = start_endpoint("pool", PROCESS_POOL)
    sites = [
        write_globus_site(
            tmp_path, "gc", compute_service, endpoint, status_poll_s=0.2,
            lost_after_s=2,
        ),
        write_site(tmp_path, "cpu", PROCESS_POOL),
    ]  # fmt: skip
    method = {"function": "testing.tasks:sleep_then", "sites": ["gc", "cpu"],
              "max_retries": 2}  # fmt: skip
    path = write_federation(tmp_path, sites, {"sleep_then": method})
    federation = Federation.from_file(path)
    federations.append(federation)
    federation.start()
    changes: list[HealthChange] = []
    federation.on_health_change(changes.append)

    federation.submit("sleep_then", 0.0, "first")
    first = collect(federation, 1)[0]
    assert first.success and first.site == "gc"
    held = {federation.submit("sleep_then", 2.0, i) for i in range(2)}
    wait_until(
        lambda: all(r.remote_id for r in federation.in_flight()),
        30,
        "the service accepting the tasks",
    )
    endpoint.kill()
    gc = federation.transports["gc"].health
    wait_until(lambda: gc.health is not Health.UP, 30, "the globus site not up")
    during = federation.submit("sleep_then", 0.0, "during")
    results = {r.task_id: r for r in collect(federation, 3, timeout=90)}
    assert set(results) == held | {during}
    for result in results.values():
        assert result.success, result.failure
        assert result.site == "cpu"
    assert all(results[task_id].retries == 1 for task_id in held)
    seen = [(c.site, c.health) for c in changes]
    assert ("gc", Health.LOST) in seen
