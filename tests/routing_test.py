"""Routing policies on given site views, and the estimates `fastest` predicts from."""

from __future__ import annotations

import pytest

from colmena_fx.models import Result
from colmena_fx.models import Stamp
from colmena_fx.routing import Router
from colmena_fx.routing import ServiceEstimates
from colmena_fx.routing import SiteView
from colmena_fx.transports.health import Health

UP, DEGRADED, LOST = Health.UP, Health.DEGRADED, Health.LOST


def approx(value: float) -> object:
    return pytest.approx(value, abs=1e-6)


def finished(
    site: str, round_trip_s: float, compute_s: float, queue_s: float = 0.0
) -> Result:
    """A successful attempt whose stamps give these spans (remote clock offset 5 s)."""
    result = Result(method="sim", site=site, success=True)
    t0 = 1_000_000_000_000
    remote = t0 + 5_000_000_000
    result.stamp(Stamp.SENT, time_ns=t0)
    result.stamp(Stamp.ENDPOINT_RECEIVED, host="far", time_ns=remote)
    start = remote + int(queue_s * 1e9)
    result.stamp(Stamp.EXECUTION_STARTED, host="far", time_ns=start)
    result.stamp(
        Stamp.EXECUTION_ENDED, host="far", time_ns=start + int(compute_s * 1e9)
    )
    result.stamp(Stamp.RECEIVED, time_ns=t0 + int(round_trip_s * 1e9))
    return result


def choose(
    router: Router, policy: str, *views: SiteView, avoid: str | None = None
) -> str | None:
    chosen = router.choose("sim", policy, list(views), avoid)  # type: ignore[arg-type]
    return None if chosen is None else chosen[0]


def test_every_policy_passes_over_sites_that_cannot_take_work() -> None:
    router = Router(ServiceEstimates())
    views = [
        SiteView("a", LOST, 0, 4),
        SiteView("b", Health.RECOVERING, 0, 4),
        SiteView("c", UP, 9, 1),
    ]
    for policy in ("failover", "round_robin", "least_loaded", "fastest"):
        assert choose(router, policy, *views) == "c"
        assert choose(router, policy, *views[:2]) is None


def test_failover_takes_the_first_up_site_then_a_degraded_one() -> None:
    router = Router(ServiceEstimates())
    a, b = SiteView("a", UP, 100, 1), SiteView("b", UP, 0, 8)
    assert choose(router, "failover", a, b) == "a"
    assert choose(router, "failover", SiteView("a", DEGRADED, 0, 1), b) == "b"
    assert (
        choose(
            router, "failover", SiteView("a", DEGRADED, 0, 1), SiteView("b", LOST, 0, 1)
        )
        == "a"
    )
    chosen = router.choose("sim", "failover", [SiteView("a", LOST, 0, 1), b])
    assert chosen is not None and "passed over a" in chosen[1].reason


def test_a_retry_avoids_the_site_that_lost_it_when_another_can_take_it() -> None:
    router = Router(ServiceEstimates())
    a, b = SiteView("a", UP, 0, 1), SiteView("b", UP, 0, 1)
    assert choose(router, "failover", a, b, avoid="a") == "b"
    assert choose(router, "failover", a, avoid="a") == "a"  # the only one left


def test_round_robin_cycles_over_usable_sites() -> None:
    router = Router(ServiceEstimates())
    views = [SiteView("a", UP, 0, 1), SiteView("b", UP, 0, 1), SiteView("c", UP, 0, 1)]
    assert [choose(router, "round_robin", *views) for _ in range(6)] == list("abcabc")


def test_least_loaded_counts_tasks_per_worker() -> None:
    router = Router(ServiceEstimates())
    big, small = SiteView("big", UP, 6, 8), SiteView("small", UP, 1, 2)
    assert choose(router, "least_loaded", small, big) == "big"  # 7/8 < 2/2
    assert choose(router, "least_loaded", SiteView("big", UP, 8, 8), small) == "small"


def test_fastest_without_data_spreads_by_tasks_per_worker() -> None:
    router = Router(ServiceEstimates())
    a, b = SiteView("a", UP, 3, 4), SiteView("b", UP, 0, 2)
    assert choose(router, "fastest", a, b) == "b"
    assert (
        choose(router, "fastest", SiteView("a", UP, 0, 4), SiteView("b", UP, 0, 2))
        == "a"
    )


def test_fastest_prefers_the_lower_measured_overhead_until_its_queue_grows() -> None:
    estimates = ServiceEstimates()
    for _ in range(10):
        estimates.observe(finished("near", round_trip_s=0.060, compute_s=0.050))
        estimates.observe(finished("far", round_trip_s=0.100, compute_s=0.050))
    assert estimates.medians("sim", "near") == (
        approx(0.010),
        approx(0.050),
    )
    router = Router(estimates)
    idle = [SiteView("near", UP, 0, 4), SiteView("far", UP, 0, 2)]
    chosen = router.choose("sim", "fastest", idle)
    assert chosen is not None and chosen[0] == "near"
    assert chosen[1].predicted_s == approx(0.060)
    # Four tasks ahead on its four workers: the next waits 50 ms there.
    busy = [SiteView("near", UP, 8, 4), SiteView("far", UP, 0, 2)]
    assert choose(router, "fastest", *busy) == "far"


def test_the_endpoint_queue_is_not_counted_as_overhead() -> None:
    estimates = ServiceEstimates()
    estimates.observe(finished("a", round_trip_s=1.0, compute_s=0.2, queue_s=0.7))
    assert estimates.medians("sim", "a") == (approx(0.1), approx(0.2))


def test_a_site_without_data_borrows_the_others_median() -> None:
    estimates = ServiceEstimates()
    estimates.observe(finished("a", round_trip_s=0.3, compute_s=0.2))
    predictions = {
        p.site: p
        for p in estimates.predict(
            "sim", [SiteView("a", UP, 0, 1), SiteView("new", UP, 0, 1)]
        )
    }
    assert predictions["new"].total_s == approx(predictions["a"].total_s)
