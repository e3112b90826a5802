"""Failover and routing policies, measured on real endpoint processes in one run.

(a) Failover. Two local sites `a` and `b` (process pools of 4 workers), one method
    listed on both with the `failover` policy, so every task goes to `a` while it
    is up. A steering loop keeps 8 tasks of 50 ms in flight. Each round runs 2 s,
    kills `a`'s endpoint (SIGKILL), runs until `a` has been restarted and is up
    again, then 2 s more. Per round: seconds from the kill to the first result
    served by `b`, to `a` up again, tasks lost (submitted minus delivered: must be
    0), failed, and the throughput before, during (kill to `a` up) and after, as
    ratios to the round's own "before" (the baseline of the same run).

(b) Policies, in two scenarios of two sites of unequal speed: `fewer_workers`,
    `fast` (4 workers, direct link) and `slow` (2 workers, its link through a
    proxy adding 20 ms each way); `slower_workers`, both 4 workers but each task
    takes 3x as long on `slow` (an older machine: only measured compute times tell
    the sites apart). A campaign is 400 tasks of 50 ms submitted at once; its
    makespan is from the first submit to the last result. Each policy routes one
    method over both sites; `static` sends a fixed number of the tasks to `slow`
    (per-topic routes) and the rest to `fast`. The best static split is found
    first by searching that number (coarse, then fine) and is the oracle each
    policy is compared with. Then the rounds: each runs every policy and the
    oracle once, the order rotated from round to round so that load hits them
    alike, and each policy's ratio to the oracle is taken within its round. One
    warm-up campaign of each comes first (not counted): `fastest` predicts from
    what the federation measured, as it would in a real campaign after its first
    tasks.

Prints each figure as median [min-max] over rounds; the last line of standard
output is one JSON object. Targets: 0 tasks lost; in each scenario `fastest`
within 1.15x of the oracle and below `round_robin`. Run from the repository root: `make
bench-failover` or `python benchmarks/failover.py [--quick]`.
"""

# ruff: noqa: E402 -- the repository root goes on sys.path before the imports
# of `benchmarks`, for when this file runs as a script.

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import argparse
import contextlib
import datetime
import json
import logging
import os
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from benchmarks._overhead.machine import machine_info
from benchmarks._stats import Spread
from benchmarks.overhead import prepare_environment
from colmena_fx.federation import Federation
from colmena_fx.transports.health import Health
from testing.delayproxy import DelayProxy

TASK_S = 0.05
FUNCTION = "benchmarks._tasks:pause"
POLICIES = ("round_robin", "least_loaded", "fastest", "failover")
TARGET_FASTEST = 1.15


def progress(message: str) -> None:
    print(f"[failover] {message}", file=sys.stderr, flush=True)


def _pool(workers: int) -> dict[str, Any]:
    return {"type": "ProcessPoolEngine", "max_workers": workers}


def _write(
    directory: Path, sites: dict[str, dict[str, Any]], methods: dict[str, Any]
) -> Path:
    names = []
    for name, body in sites.items():
        (directory / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, **body}))
        names.append(f"{name}.yaml")
    path = directory / "federation.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": directory.name,
                "sites": names,
                "methods": methods,
                "run_dir": "runs",
            }
        )
    )
    return path


# -- (a) failover ----------------------------------------------------------------------


@dataclass
class FailoverRound:
    first_from_b_s: float
    back_up_s: float
    lost: int
    failed: int
    before_per_s: float
    during_per_s: float
    after_per_s: float


def failover_round(
    federation: Federation, in_flight: int, phase_s: float
) -> FailoverRound:
    """Keep `in_flight` tasks going; kill site `a` after `phase_s`; see it come back."""
    health = federation.transports["a"].health
    submitted = 0
    arrivals: list[tuple[float, str | None, bool]] = []

    def top_up(target: int) -> None:
        nonlocal submitted
        while submitted - len(arrivals) < target:
            federation.submit("pause", TASK_S, topic="failover")
            submitted += 1

    start = time.monotonic()
    top_up(in_flight)
    killed_at = up_at = None
    deadline = start + 120
    while time.monotonic() < deadline:
        result = federation.get_result("failover", timeout=1)
        now = time.monotonic()
        if result is not None:
            arrivals.append((now, result.site, bool(result.success)))
        if killed_at is None and now - start >= phase_s:
            pid = federation.transports["a"].process.pid  # type: ignore[attr-defined]
            os.kill(pid, signal.SIGKILL)
            killed_at = now
        noticed = killed_at is not None and now - killed_at > 0.1
        if noticed and up_at is None and health.health is Health.UP:
            up_at = now
        if up_at is not None and now - up_at >= phase_s:
            break
        top_up(in_flight)
    while len(arrivals) < submitted:  # drain: every task must come back
        result = federation.get_result("failover", timeout=60)
        if result is None:
            break
        arrivals.append((time.monotonic(), result.site, bool(result.success)))
    if killed_at is None or up_at is None:
        raise RuntimeError("site a was not killed and restarted within 120 s")
    from_b = [t for t, site, ok in arrivals if site == "b" and t > killed_at]

    def rate(begin: float, end: float) -> float:
        done = sum(1 for t, _site, ok in arrivals if ok and begin <= t < end)
        return done / (end - begin)

    return FailoverRound(
        first_from_b_s=(min(from_b) - killed_at) if from_b else float("nan"),
        back_up_s=up_at - killed_at,
        lost=submitted - len(arrivals),
        failed=sum(1 for _t, _site, ok in arrivals if not ok),
        before_per_s=rate(start + 0.5, killed_at),
        during_per_s=rate(killed_at, up_at),
        after_per_s=rate(up_at, up_at + phase_s),
    )


def run_failover(directory: Path, rounds: int, phase_s: float) -> list[FailoverRound]:
    local = {"heartbeat_s": 0.2, "heartbeat_timeout_s": 2.0,
             "restart": {"backoff_initial_s": 0.5}}  # fmt: skip
    path = _write(
        directory,
        {name: {"engine": _pool(4), "local": local} for name in ("a", "b")},
        {"pause": {"function": FUNCTION, "sites": ["a", "b"], "policy": "failover",
                   "max_retries": 5}},
    )  # fmt: skip
    figures = []
    with Federation.from_file(path) as federation:
        for i in range(rounds):
            progress(f"failover round {i + 1} of {rounds}")
            figures.append(failover_round(federation, in_flight=8, phase_s=phase_s))
    return figures


# -- (b) policies ----------------------------------------------------------------------


def campaign(
    federation: Federation, method: str, tasks: int, to_slow: int = 0
) -> float:
    """Makespan in seconds of `tasks` tasks submitted at once."""
    start = time.monotonic()
    for i in range(tasks):
        topic = ("slow" if i < to_slow else "fast") if method == "static" else method
        federation.submit(method, TASK_S, topic=topic)
    if method == "static":
        pending = {"slow": to_slow, "fast": tasks - to_slow}
    else:
        pending = {method: tasks}
    for topic, count in pending.items():
        for _ in range(count):
            result = federation.get_result(topic, timeout=300)
            if result is None or not result.success:
                raise RuntimeError(
                    f"{method}: {result.failure if result else 'timeout'}"
                )
    return time.monotonic() - start


def search_split(federation: Federation, tasks: int) -> tuple[int, dict[int, float]]:
    """The number of tasks for `slow` that gives the shortest static makespan."""
    tried: dict[int, float] = {}

    def measure(k: int) -> float:
        k = max(0, min(tasks, k))
        if k not in tried:
            tried[k] = campaign(federation, "static", tasks, k)
            progress(f"static split {k} to slow: {tried[k]:.2f} s")
        return tried[k]

    coarse = max(1, tasks // 10)
    for k in range(0, tasks // 2 + 1, coarse):
        measure(k)
    best = min(tried, key=lambda k: tried[k])
    fine = max(1, coarse // 4)
    for k in range(best - coarse + fine, best + coarse, fine):
        measure(k)
    best = min(tried, key=lambda k: tried[k])
    return best, tried


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


#: The two sites of each policy scenario: engine workers, link delay each way in
#: seconds, and how many times longer a task takes there.
SCENARIOS: dict[str, dict[str, tuple[int, float, float]]] = {
    # half the workers behind a 20 ms link: what `least_loaded` already sees
    "fewer_workers": {"fast": (4, 0.0, 1.0), "slow": (2, 0.020, 1.0)},
    # as many workers, each three times slower (an older CPU): only measured
    # compute times tell the sites apart
    "slower_workers": {"fast": (4, 0.0, 1.0), "slow": (4, 0.0, 3.0)},
}
DESCRIBED = {
    "fewer_workers": "fast 4 workers, slow 2 workers + 20 ms link",
    "slower_workers": "fast 4 workers, slow 4 workers 3x slower",
}


@contextlib.contextmanager
def policy_federation(directory: Path, scenario: str) -> Iterator[Federation]:
    with contextlib.ExitStack() as stack:
        sites: dict[str, dict[str, Any]] = {}
        for name, (workers, delay_s, slowdown) in SCENARIOS[scenario].items():
            local: dict[str, Any] = {"env": {"CFX_BENCH_SLOWDOWN": str(slowdown)}}
            if delay_s:
                port = _free_port()
                proxy = stack.enter_context(DelayProxy("127.0.0.1", port, delay_s))
                local.update(link="tcp", tcp_port=port,
                             connect_via=f"127.0.0.1:{proxy.port}")  # fmt: skip
            sites[name] = {"engine": _pool(workers), "local": local}
        methods: dict[str, Any] = {
            policy: {"function": FUNCTION, "sites": ["fast", "slow"], "policy": policy}
            for policy in POLICIES
        }
        methods["static"] = {
            "function": FUNCTION, "site": "fast", "topics": {"slow": "slow"}
        }  # fmt: skip
        path = _write(directory, sites, methods)
        with Federation.from_file(path) as federation:
            yield federation


@dataclass
class PolicyFigures:
    makespans: dict[str, list[float]]
    best: int
    tried: dict[int, float]


def run_policies(
    directory: Path, scenario: str, rounds: int, tasks: int
) -> PolicyFigures:
    with policy_federation(directory, scenario) as federation:
        progress(f"{scenario}: warm-up, one campaign of each policy")
        for policy in POLICIES:
            campaign(federation, policy, tasks)
        best, tried = search_split(federation, tasks)
        progress(f"oracle: {best} of {tasks} tasks to slow, {tried[best]:.2f} s")
        names = [*POLICIES, "oracle"]
        makespans: dict[str, list[float]] = {name: [] for name in names}
        for i in range(rounds):
            order = names[i % len(names) :] + names[: i % len(names)]
            for name in order:
                if name == "oracle":
                    makespans[name].append(campaign(federation, "static", tasks, best))
                else:
                    makespans[name].append(campaign(federation, name, tasks))
            progress(
                f"round {i + 1} of {rounds}: "
                + ", ".join(f"{n} {makespans[n][-1]:.2f} s" for n in names)
            )
    return PolicyFigures(makespans, best, tried)


def report_policies(
    scenario: str, figures: PolicyFigures, tasks: int
) -> tuple[dict[str, Any], bool]:
    """Print one scenario's table; its JSON part and whether `fastest` met both
    targets."""
    makespans = figures.makespans
    print(f"(b) {scenario}: {tasks} tasks of {TASK_S * 1e3:.0f} ms, "
          f"{DESCRIBED[scenario]}; oracle = {figures.best} to slow")  # fmt: skip
    ratio = {
        name: Spread.of([m / o for m, o in zip(v, makespans["oracle"], strict=True)])
        for name, v in makespans.items()
    }
    for name, values in makespans.items():
        print(f"  {name:13s} makespan {Spread.of(values).text(2, ' s')}   "
              f"/ oracle {ratio[name].text(2, 'x')}")  # fmt: skip
    fastest_ok = ratio["fastest"].median <= TARGET_FASTEST
    beats_rr = ratio["fastest"].median < ratio["round_robin"].median
    verdict = {True: "met", False: "MISSED"}
    print(f"  target: fastest <= {TARGET_FASTEST}x oracle: {verdict[fastest_ok]}; "
          f"below round_robin: {verdict[beats_rr]}")  # fmt: skip
    part = {
        "sites": {
            name: {"workers": w, "delay_s": d, "slowdown": f}
            for name, (w, d, f) in SCENARIOS[scenario].items()
        },
        "tasks": tasks,
        "task_s": TASK_S,
        "oracle_to_slow": figures.best,
        "static_search": {
            str(k): round(v, 3) for k, v in sorted(figures.tried.items())
        },
        "makespan_s": {n: Spread.of(v).summary(3) for n, v in makespans.items()},
        "over_oracle": {n: r.summary(3) for n, r in ratio.items()},
    }
    return part, fastest_ok and beats_rr


# -- report ----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--tasks", type=int, default=400)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    prepare_environment()
    rounds = args.rounds or (2 if args.quick else 5)
    tasks = 100 if args.quick and args.tasks == 400 else args.tasks
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cfx-failover-") as tmp:
        a_dir, b_dir = Path(tmp, "failover"), Path(tmp, "policies")
        a_dir.mkdir()
        b_dir.mkdir()
        failover = run_failover(
            a_dir, 1 if args.quick else 3, 1.0 if args.quick else 2.0
        )
        policies = {}
        for scenario in SCENARIOS:
            directory = b_dir / scenario
            directory.mkdir()
            policies[scenario] = run_policies(directory, scenario, rounds, tasks)

    first_b = Spread.of([r.first_from_b_s for r in failover])
    back_up = Spread.of([r.back_up_s for r in failover])
    during = Spread.of([r.during_per_s / r.before_per_s for r in failover])
    after = Spread.of([r.after_per_s / r.before_per_s for r in failover])
    lost = sum(r.lost for r in failover)
    print("(a) failover: kill -9 of site a, every task on a (failover policy)")
    print(f"  kill to first result from b   {first_b.text(3, ' s')}")
    print(f"  kill to a up again            {back_up.text(2, ' s')}")
    before = Spread.of([r.before_per_s for r in failover])
    print(f"  throughput before             {before.text(1, '/s')}")
    print(f"  during / before               {during.text(2, 'x')}")
    print(f"  after / before                {after.text(2, 'x')}")
    print(f"  tasks lost {lost} (target 0), failed {sum(r.failed for r in failover)}")
    parts, met = {}, lost == 0
    for scenario, figures in policies.items():
        parts[scenario], ok = report_policies(scenario, figures, tasks)
        met = met and ok
    summary = {
        "benchmark": "failover",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "failover": {
            "first_result_from_other_site_s": first_b.summary(3),
            "back_up_s": back_up.summary(2),
            "during_over_before": during.summary(3),
            "after_over_before": after.summary(3),
            "lost": lost,
            "failed": sum(r.failed for r in failover),
        },
        "policies": parts,
        "targets": {
            "fastest_over_oracle": TARGET_FASTEST,
            "met": met,
        },
        "rounds": rounds,
        "wall_s": round(time.monotonic() - started, 1),
        "machine": machine_info(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
