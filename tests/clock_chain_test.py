"""A worker on another host than its endpoint, its clock chained through the
endpoint's.

The worker's clock is bounded against the client's only by the whole round trip
(client, link, endpoint, engine and back), so across a slow link its +- is the
link's. Its endpoint's stamps bracket the worker's much more tightly: the worker's
clock is estimated against the endpoint's, and through it against the client's,
so that the hops between endpoint and worker carry only the chain's +-.

Here the endpoint runs on the client's clock behind a 30 ms link each way, and
the HTEX workers play another host (`COLMENA_FX_HOST`) whose clock is 2 s ahead
(libfaketime, set in the provider's `worker_init`): the truth of every stamp is
known, so every hop between endpoint and worker must hold its true value within
its +-, and none may be negative.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from colmena_fx.federation import Federation
from colmena_fx.latency.hops import CHAIN
from colmena_fx.latency.hops import CLIENT_STAMPS
from colmena_fx.latency.hops import HOP_NAMES
from colmena_fx.latency.recorder import LatencyRecorder
from colmena_fx.models import HOST
from testing.faketime import faketime_env
from testing.links import DelayedLinkFactory
from testing.links import echo_one_at_a_time
from testing.sites import HTEX
from testing.sites import write_federation
from testing.sites import write_site

WORKER_HOST = "worker-node-7"
WORKER_OFFSET_S = 2.0
LINK_S = 0.030
TASKS = 30
#: A stamp's own resolution, and float rounding of seconds since the first stamp.
SLACK_S = 2e-6


def _worker_elsewhere() -> dict[str, Any]:
    """HTEX whose workers say they are on WORKER_HOST, 2 s ahead of the client."""
    env = {"COLMENA_FX_HOST": WORKER_HOST, **faketime_env(WORKER_OFFSET_S)}
    exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
    provider = {**HTEX["provider"], "worker_init": f"export {exports}"}
    return {**HTEX, "provider": provider}


def _federation(directory: Path, local: dict[str, Any]) -> Federation:
    site = write_site(directory, "far", _worker_elsewhere(), local=local)
    methods = {"echo": {"site": "far", "function": "testing.tasks:echo"}}
    return Federation.from_file(write_federation(directory, [site], methods))


def test_a_worker_clock_is_chained_through_its_endpoint(
    tmp_path: Path, make_delayed_link: DelayedLinkFactory
) -> None:
    link = make_delayed_link(LINK_S, LINK_S)
    federation = _federation(tmp_path, link.local)
    with federation:
        results = echo_one_at_a_time(federation, TASKS)
    hosts = {event.host for event in results[0].timeline.events}
    assert {HOST, WORKER_HOST} <= hosts
    assert federation.run_dir is not None
    for recorder in (federation.latency, LatencyRecorder.from_run(federation.run_dir)):
        clocks = {clock.host: clock for clock in recorder.offsets()}
        worker, endpoint = clocks[WORKER_HOST], clocks[HOST]
        assert worker.via == HOST and endpoint.via == ""
        assert f"chained through {HOST}" in worker.note()
        assert abs(worker.offset_s - WORKER_OFFSET_S) <= worker.uncertainty_s
        # against the client's clock, no better than the endpoint's (the link's)
        assert worker.uncertainty_s >= endpoint.uncertainty_s

        corrected, table = recorder.hops()
        assert len(corrected.tasks) == TASKS
        assert not (table.seconds < 0).any()
        results_of = {result.task_id: result for result in results}
        offsets = {HOST: 0.0, WORKER_HOST: WORKER_OFFSET_S}
        across = 0
        for row, name, seconds, within in zip(
            table.task, table.hop, table.seconds, table.uncertainty_s, strict=True
        ):
            if name not in HOP_NAMES:  # a span of the data steps
                continue
            first, last = CHAIN[HOP_NAMES.index(name)], CHAIN[HOP_NAMES.index(name) + 1]
            timeline = results_of[corrected.tasks[row].task_id].timeline
            began, ended = timeline.get(first), timeline.get(last)
            assert began is not None and ended is not None
            if {began.host, ended.host} != {HOST, WORKER_HOST} or (
                first in CLIENT_STAMPS or last in CLIENT_STAMPS
            ):
                continue  # not between the endpoint's clock and the worker's
            across += 1
            truth = (ended.time_ns / 1e9 - offsets[ended.host]) - (
                began.time_ns / 1e9 - offsets[began.host]
            )
            assert abs(seconds - truth) <= within + SLACK_S, (name, seconds, truth)
            # the chain's +- (the engine's own latency), not both clocks' against
            # the client's (the link's, twice)
            assert within < (endpoint.uncertainty_s + worker.uncertainty_s) / 4, (
                name,
                within,
            )
        # the endpoint queue and return, in each task
        assert across >= 2 * TASKS
