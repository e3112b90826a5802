"""The latency figures against known truth: a site whose clock is off by a known
offset (its endpoint under libfaketime), and a link with a known delay (a TCP delay
proxy between client and endpoint). The offsets and hops read back from the run's
journal, as `colmena-fx report` and `summary` read them, must recover both within
2 ms, and no corrected hop may be negative.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from colmena_fx.federation import Federation
from colmena_fx.latency.recorder import LatencyRecorder
from colmena_fx.models import HOST
from testing.delayproxy import DelayProxy
from testing.faketime import faketime_env
from testing.links import free_port
from testing.sites import THREAD_POOL
from testing.sites import write_federation
from testing.sites import write_site

TASKS = 40
TOLERANCE_S = 0.002


def _run(tmp_path: Path, local: dict[str, Any]) -> LatencyRecorder:
    """Echo TASKS small values one in flight through a site; the run as reported."""
    site = write_site(tmp_path, "far", THREAD_POOL, local=local)
    path = write_federation(
        tmp_path, [site], {"echo": {"site": "far", "function": "testing.tasks:echo"}}
    )
    federation = Federation.from_file(path)
    with federation:
        for i in range(TASKS):
            federation.submit("echo", i)
            result = federation.get_result(timeout=60)
            assert result is not None and result.success, result
            federation.processed(result)
        live_offsets = federation.latency.offsets()
    assert federation.run_dir is not None
    recorder = LatencyRecorder.from_run(federation.run_dir)
    assert recorder.offsets() == live_offsets  # the same estimate, live and after
    _, table = recorder.hops()
    assert len(table.seconds) > 0
    negative = [
        (hop, seconds)
        for hop, seconds in zip(table.hop, table.seconds, strict=True)
        if seconds < 0
    ]
    assert negative == []
    return recorder


@pytest.mark.parametrize("offset_s", [3.0, -2.5])
def test_a_shifted_endpoint_clock_is_recovered(tmp_path: Path, offset_s: float) -> None:
    recorder = _run(tmp_path, {"env": faketime_env(offset_s)})
    (clock,) = recorder.offsets()
    assert (clock.site, clock.host, clock.samples) == ("far", HOST, TASKS)
    assert clock.consistent
    assert abs(clock.offset_s - offset_s) <= TOLERANCE_S, clock
    # corrected, the link is the loopback's fraction of a millisecond, not seconds
    link = {row.hop: row for row in recorder.summary()}["link_out"]
    assert link.crosses_clocks and 0 <= link.median_s < TOLERANCE_S


@pytest.fixture
def delayed_link() -> Iterator[tuple[dict[str, Any], float]]:
    delay_s = 0.025
    port = free_port()
    with DelayProxy("127.0.0.1", port, delay_s) as proxy:
        local = {"link": "tcp", "tcp_port": port,
                 "connect_via": f"127.0.0.1:{proxy.port}"}  # fmt: skip
        yield local, delay_s


def test_a_delayed_link_is_recovered(
    tmp_path: Path, delayed_link: tuple[dict[str, Any], float]
) -> None:
    local, delay_s = delayed_link
    recorder = _run(tmp_path, local)
    (clock,) = recorder.offsets()
    assert abs(clock.offset_s) <= TOLERANCE_S, clock  # same host, same clock
    hops = {row.hop: row for row in recorder.summary()}
    for name in ("link_out", "link_back"):
        assert abs(hops[name].median_s - delay_s) <= TOLERANCE_S, hops[name]
    # the delay is on the links only, not in the endpoint or the client
    assert np.isclose(
        hops["round_trip"].median_s,
        sum(row.median_s for name, row in hops.items()
            if name not in ("round_trip", "total", "serialize", "client_queue",
                            "deserialize", "delivery", "thinker")),
        atol=0.005,
    )  # fmt: skip
