"""Everything `summary` and the report read from a run's journal, in one pass.

The latency recorder (`LatencyRecorder.from_run`), the task facts
(`tasks.read_task_facts`) and the routing facts (`routes.read_routing_facts`) each
fold the journal's lines into their own state. Reading the journal once for each
cost three decodings of every line, and the recorder used to list every
`delivered` record before feeding it; here each line is decoded once, handed to
the three in turn and dropped, so that the memory of a read run is what the three
keep (a table row and a few fields per task), not its journal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from colmena_fx.clocksetting import ClockSetting
from colmena_fx.journal import read_journal
from colmena_fx.latency.recorder import JournalFeed
from colmena_fx.latency.recorder import LatencyRecorder
from colmena_fx.latency.routes import RoutingFacts
from colmena_fx.latency.routes import RoutingFactsCollector
from colmena_fx.latency.tasks import TaskFacts
from colmena_fx.latency.tasks import TaskFactsCollector


@dataclass(frozen=True)
class RunFacts:
    """What the journal of one run says, as `summary` and the report show it."""

    recorder: LatencyRecorder
    tasks: TaskFacts
    routing: RoutingFacts


def read_run_facts(
    run_dir: Path, clocks: Mapping[str, ClockSetting] | None = None
) -> RunFacts:
    """The recorder, task facts and routing facts of the run in `run_dir`.

    The same as `LatencyRecorder.from_run(run_dir, clocks)`,
    `read_task_facts(run_dir)` and `read_routing_facts(run_dir)`, from one
    reading of the journal.
    """
    feed = JournalFeed(clocks)
    tasks = TaskFactsCollector()
    routes = RoutingFactsCollector()
    for entry in read_journal(run_dir):
        feed.add(entry)  # first: a line it cannot read fails the read, as before
        task, time_ns = entry["task"], entry.get("time_ns")
        if isinstance(task, dict) and isinstance(time_ns, int):  # as `add` checks
            event = entry["event"]
            tasks.line(event, task, time_ns)
            routes.line(event, task, time_ns)
    recorder = feed.finish()
    if recorder is None:  # a `run` line after the first `delivered` one
        recorder = LatencyRecorder.from_run(run_dir, clocks)
    return RunFacts(recorder, tasks.facts(), routes.facts())
