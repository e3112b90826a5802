"""A realistic run directory of many tasks, for timing what reads journals.

The journal is written as `colmena_fx.journal.Journal` writes it: short records
(`submitted`, `accepted`, `completed`, `retried`, `stamped`, `health`) with
`json.dumps`, a `delivered` line with the whole record in pydantic's compact JSON,
in the key order of `Result.journal_json`. The run has two sites:

- `local-cpu` (transport `local`) on the client's host `vm` and clock: every stamp
  of the chain, `endpoint_received` and `endpoint_sent` included;
- `polaris` (transport `globus`) on four worker nodes whose clocks run 3.2 s (and
  a few ms more per node) ahead of the client's; the service hides the endpoint's
  stamps, and its tasks are `accepted` with a remote id.

`simulate` tasks are routed `fastest` (a prediction each) to either site, `train`
tasks `failover` to `polaris`. One task in a hundred fails in the user function,
`polaris` degrades once and is lost once: the tasks in flight there are `retried`
and resent to `local-cpu`, their timelines holding both `sent` stamps. A tenth of
the results are fetched by reference (`result_data_*` stamped after delivery).
The run ends with a clean stop that leaves a few tasks unfinished.

Deterministic for a given `tasks` and `seed`.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

START_NS = 1_796_216_022_172_066_729
CLIENT = "vm"
LOCAL, REMOTE = "local-cpu", "polaris"
NODES = tuple(f"x3001c0s{n}b0n0" for n in (13, 19, 25, 31))
#: Remote clock minus client clock per node, ns.
OFFSETS = {node: 3_200_000_000 + 1_500_000 * i for i, node in enumerate(NODES)}
#: Tasks created per second; a 100k-task run spans about 400 s.
RATE = 250.0
UNFINISHED = 3
ENDPOINT = "b9137eb5-a24b-4da7-a06e-db255fb64c22"
OFFLINE = f"Globus Compute reports endpoint {ENDPOINT} offline"
LOCAL_UP = "endpoint pid 13002 answers on ipc:///tmp/cfx-pr6dsbi6/endpoint.sock"
GROUP = "7c52471b-2d65-4fad-b0c0-a0645b77ffb3"
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/work/main/colmena_fx/worker.py", line 98, in execute\n'
    "    reply.value = fn(*args)\n"
    '  File "examples/interleaved_optimizer/functions.py", line 41, in simulate\n'
    "    raise SimulationError(message)\n"
    "SimulationError: {message}\n"
)

_compact = json.JSONEncoder(separators=(",", ":")).encode


@dataclass
class _Attempt:
    site: str
    sent_ns: int
    retries: int
    lost: bool = False
    node: str = ""


@dataclass
class _Lines:
    items: list[tuple[int, int, str]] = field(default_factory=list)

    def add(self, event: str, time_ns: int, task: dict[str, Any] | str) -> None:
        body = task if isinstance(task, str) else json.dumps(task)
        text = f'{{"event": "{event}", "time_ns": {time_ns}, "task": {body}}}\n'
        self.items.append((time_ns, len(self.items), text))


def write_run(parent: Path, tasks: int = 100_000, seed: int = 7) -> Path:
    """A run directory under `parent` holding a journal of `tasks` tasks."""
    rng = random.Random(seed)
    run_dir = Path(parent) / f"bench-{tasks}"
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = _Lines()
    span_ns = int(tasks / RATE * 1e9)
    degraded = (
        START_NS + int(0.4 * span_ns),
        START_NS + int(0.4 * span_ns) + 5 * 10**9,
    )
    lost = (START_NS + int(0.7 * span_ns), START_NS + int(0.7 * span_ns) + 10 * 10**9)
    lines.add(
        "run",
        START_NS,
        {"federation": "bench", "client_host": CLIENT,
         "clocks": {"*": {"mode": "estimate", "within_ms": 0.0, "link_out_ms": 0.0,
                          "link_back_ms": 0.0}},
         "sites": {LOCAL: "local", REMOTE: "globus"}},
    )  # fmt: skip
    _health(lines, rng, degraded, lost)
    for index in range(tasks):
        created = START_NS + 2 * 10**9 + int(index / RATE * 1e9 + rng.random() * 2e6)
        _task(lines, rng, index, created, lost, unfinished=index >= tasks - UNFINISHED)
    end_ns = max(time_ns for time_ns, _, _ in lines.items) + 50_000_000
    lines.add("stopped", end_ns, {"unfinished": UNFINISHED})
    lines.items.sort()
    with open(run_dir / "journal.jsonl", "w", encoding="utf-8") as stream:
        stream.writelines(text for _, _, text in lines.items)
    return run_dir


def _health(
    lines: _Lines, rng: random.Random, degraded: tuple[int, int], lost: tuple[int, int]
) -> None:
    def change(site: str, health: str, time_ns: int, reason: str) -> None:
        body = {"site": site, "health": health, "reason": reason,
                "since": round(time_ns / 1e9, 7)}  # fmt: skip
        lines.add("health", time_ns + 30_000, body)

    online = f"Globus Compute reports endpoint {ENDPOINT} online"
    change(REMOTE, "up", START_NS + 216_000_000, online)
    change(LOCAL, "up", START_NS + 1_900_000_000, LOCAL_UP)
    change(REMOTE, "degraded", degraded[0], f"{online} but 412 tasks pending")
    change(REMOTE, "up", degraded[1], online)
    change(REMOTE, "lost", lost[0], OFFLINE)
    change(REMOTE, "up", lost[1], online)


def _task(
    lines: _Lines,
    rng: random.Random,
    index: int,
    created: int,
    lost: tuple[int, int],
    unfinished: bool,
) -> None:
    task_id = _uuid(rng)
    train = index % 50 == 49
    method, topic = ("train", "train") if train else ("simulate", "sim")
    compute = int(rng.lognormvariate(-1.6, 0.4) * 1e9) * (5 if train else 1)
    remote = train or rng.random() < 0.55
    down = lost[0] <= created + 40_000_000 <= lost[1]
    site = REMOTE if remote and not down else LOCAL
    policy = "failover" if train else "fastest"
    usable = [REMOTE] if train else ([LOCAL] if down else [LOCAL, REMOTE])
    guess = round(compute / 1e9 * rng.uniform(0.8, 1.3) + 0.08, 6)
    predicted = None if train else guess
    reason = (
        "first usable site in order"
        if train
        else f"predicted {site!r} {guess * 1e3:.1f} ms (overhead 80.0 + compute "
        f"{guess * 1e3 - 80:.1f} + wait 0.0)"
    )
    brief: dict[str, Any] = {"task_id": task_id, "method": method, "topic": topic,
                             "site": site, "retries": 0, "policy": policy}  # fmt: skip
    if predicted is not None:
        brief["predicted_s"] = predicted
    serialized = created + 200_000 + rng.randrange(200_000)
    sent = serialized + 1_000_000 + rng.randrange(500_000)
    lines.add("submitted", serialized + 50_000, brief)
    events: list[list[Any]] = [
        ["created", created, CLIENT],
        ["serialized", serialized, CLIENT],
    ]
    retries = 0
    # a task in flight at `polaris` when it is lost is resent to `local-cpu`
    if site == REMOTE and sent < lost[0] < sent + compute + 400_000_000:
        events.append(["sent", sent, CLIENT])
        accepted = {"task_id": task_id, "site": REMOTE, "remote_id": _uuid(rng)}
        lines.add("accepted", sent + 30_000_000, accepted)
        why = f"EndpointError on polaris: {OFFLINE}"
        retried = {**brief, "success": False, "failure": why}
        lines.add("retried", lost[0] + 100_000, {**retried, "reason": "endpoint_lost"})
        retries, site = 1, LOCAL
        brief = {**brief, "site": site, "retries": 1}
        sent = lost[0] + 2_000_000
        lines.add("submitted", sent - 500_000, brief)
        usable = [LOCAL]
    if unfinished:
        return
    events.append(["sent", sent, CLIENT])
    remote_id: str | None = None
    remote_group: str | None = None
    if site == REMOTE:
        node = NODES[rng.randrange(len(NODES))]
        offset = OFFSETS[node]
        remote_id, remote_group = _uuid(rng), GROUP
        accepted = {"task_id": task_id, "site": site, "remote_id": remote_id}
        lines.add("accepted", sent + 25_000_000 + rng.randrange(10_000_000), accepted)
        exec_start = sent + 50_000_000 + rng.randrange(30_000_000)
        worker = exec_start + 250_000_000 + rng.randrange(50_000_000)
        stamps = _worker(rng, worker, compute)
        exec_end = stamps[-1][1] + 900_000
        received = exec_end + 300_000_000 + rng.randrange(100_000_000)
        events += [[name, t + offset, node] for name, t in stamps]
        events += [["execution_started", exec_start + offset, node],
                   ["execution_ended", exec_end + offset, node]]  # fmt: skip
    else:
        node = CLIENT
        endpoint_received = sent + 300_000 + rng.randrange(300_000)
        exec_start = endpoint_received + 200_000 + rng.randrange(1_000_000)
        worker = exec_start + 20_000_000 + rng.randrange(20_000_000)
        stamps = _worker(rng, worker, compute)
        exec_end = stamps[-1][1] + 900_000
        endpoint_sent = exec_end + 2_000_000 + rng.randrange(2_000_000)
        received = endpoint_sent + 500_000 + rng.randrange(300_000)
        events.append(["endpoint_received", endpoint_received, CLIENT])
        events += [[name, t, CLIENT] for name, t in stamps]
        events += [["execution_started", exec_start, CLIENT],
                   ["execution_ended", exec_end, CLIENT],
                   ["endpoint_sent", endpoint_sent, CLIENT]]  # fmt: skip
    by_reference = rng.random() < 0.1
    deserialized = received + 600_000 + rng.randrange(400_000)
    delivered = deserialized + 1_000_000 + rng.randrange(30_000_000)
    events += [["received", received, CLIENT], ["deserialized", deserialized, CLIENT],
               ["delivered", delivered, CLIENT]]  # fmt: skip
    success = rng.random() >= 0.01
    failure: dict[str, str] | None = None
    if not success:
        message = "the simulation diverged at step 812: residual 3.1e+07 over 1e+06"
        failure = {
            "kind": "user", "exception_type": "SimulationError", "message": message,
            "traceback": TRACEBACK.format(message=message),
            "host": node,
        }  # fmt: skip
    completed: dict[str, Any] = {**brief, "retries": retries, "success": success}
    if failure is not None:
        completed["failure"] = f"SimulationError on {node}: {failure['message']}"
    lines.add("completed", deserialized + 300_000, completed)
    record: dict[str, Any] = {
        "task_id": task_id, "method": method, "topic": topic, "site": site,
        "remote_id": remote_id, "remote_group": remote_group, "success": success,
        "failure": failure,
        "resources": {"num_nodes": None, "ranks_per_node": None, "num_ranks": None,
                      "priority": None, "extra": {}},
        "task_info": {} if train else {
            "x": [rng.uniform(-5, 5) for _ in range(4)], "index": index,
            "from_model": rng.random() < 0.5},
        "retries": retries,
        "routing": {"policy": policy, "usable": usable, "predicted_s": predicted,
                    "reason": reason},
        "sizes": {"inputs": 308, "request": 868 + rng.randrange(64),
                  "value": 22 if success else 0,
                  "reply": 835 + rng.randrange(64) if site == LOCAL else 0},
        "timeline": {"events": events},
    }  # fmt: skip
    lines.add("delivered", delivered + 150_000, _compact(record))
    stamp = delivered + 200_000
    if by_reference and success:
        for name in ("result_data_started", "result_data_ended"):
            stamp += 2_000_000 + rng.randrange(3_000_000)
            lines.add("stamped", stamp + 5_000,
                      {"task_id": task_id, "name": name, "time_ns": stamp})  # fmt: skip
    stamp += 100_000 + rng.randrange(2_000_000)
    lines.add("stamped", stamp + 6_000,
              {"task_id": task_id, "name": "processed", "time_ns": stamp})  # fmt: skip


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _worker(rng: random.Random, started: int, compute: int) -> list[tuple[str, int]]:
    compute_started = started + 90_000 + rng.randrange(30_000)
    compute_ended = compute_started + compute
    worker_ended = compute_ended + 70_000 + rng.randrange(20_000)
    return [
        ("worker_started", started),
        ("compute_started", compute_started),
        ("compute_ended", compute_ended),
        ("worker_ended", worker_ended),
    ]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parent", type=Path)
    parser.add_argument("--tasks", type=int, default=100_000)
    args = parser.parse_args()
    print(write_run(args.parent, args.tasks))
