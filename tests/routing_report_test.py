"""Routing and site health read back from a journal: the rows, `summary` and the
report, on journals written by hand; old journals show nothing new."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from colmena_fx.cli import main
from colmena_fx.dispatch import brief
from colmena_fx.latency.routes import RoutingFacts
from colmena_fx.latency.routes import RoutingRow
from colmena_fx.latency.routes import read_routing_facts
from colmena_fx.latency.routes import routing_facts
from colmena_fx.models import Result
from colmena_fx.models import Routing
from colmena_fx.models import Stamp
from colmena_fx.report import write_report
from colmena_fx.report.data import load_report_data
from testing import browser
from testing.journals import START_NS
from testing.journals import at_ns
from testing.journals import line
from testing.journals import run_line

#: The run line of these journals: federation, its sites and transports.
RUN = ("routed", {"a": "local", "b": "local"})

#: A reason with markup in it (HTML, rich's): shown as text, in either.
LOST_WHY = "site 'a' exited (status -9); see <b>ep.log</b> [/tmp/a] & more"


def submitted(
    task_id: str, site: str, at: float, policy: str | None,
    retries: int = 0, predicted_s: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    task: dict[str, Any] = {"task_id": task_id, "method": "sim", "topic": "default",
                            "site": site, "retries": retries}  # fmt: skip
    if policy is not None:
        task["policy"] = policy
    if predicted_s is not None:
        task["predicted_s"] = predicted_s
    return line("submitted", at, task)


def health(site: str, state: str, at: float, since: float, why: str) -> dict[str, Any]:
    return line("health", at, {"site": site, "health": state, "reason": why,
                               "since": (START_NS / 1e9) + since})  # fmt: skip


def delivered(
    task_id: str,
    site: str,
    trips: list[tuple[float, float | None]],
    routing: Routing | None,
    success: bool = True,
    retries: int = 0,
) -> dict[str, Any]:
    """A task's full record, as the federation journals it: (sent, received) of
    each attempt, received None for one that was lost."""
    result = Result(task_id=task_id, method="sim", site=site, success=success,
                    retries=retries, routing=routing)  # fmt: skip
    result.stamp(Stamp.CREATED, time_ns=at_ns(trips[0][0] - 0.01))
    for sent, received in trips:
        result.stamp(Stamp.SENT, time_ns=at_ns(sent))
        if received is not None:
            result.stamp(Stamp.RECEIVED, time_ns=at_ns(received))
    end = max(t for trip in trips for t in trip if t is not None) + 0.01
    result.stamp(Stamp.DELIVERED, time_ns=at_ns(end))
    return line("delivered", end, result.journal_record())


def fastest(predicted_s: float) -> Routing:
    return Routing(policy="fastest", usable=["a", "b"], predicted_s=predicted_s,
                   reason=f"predicted {predicted_s} s")  # fmt: skip


def routed_run(run_dir: Path) -> Path:
    """Two sites; a is lost at 2 s, restarts twice and is up again at 4 s.

    t0 (fastest) is lost with a and resent to b; t1 (fastest) finishes on a; t2
    (round robin) on b; t3 (failover) fails on a. The journal ends at 6 s.
    """
    lost = submitted("t0", "a", 2.0, "fastest")
    failover = Routing(policy="failover")
    lines = [
        run_line(*RUN),
        health("a", "up", 0.5, 0.5, "endpoint pid 7 answers on ipc://a"),
        health("b", "up", 0.6, 0.6, "endpoint pid 8 answers on ipc://b"),
        submitted("t0", "a", 1.0, "fastest", predicted_s=0.1),
        submitted("t1", "a", 1.1, "fastest", predicted_s=0.2),
        delivered("t1", "a", [(1.1, 1.35)], fastest(0.2)),
        health("a", "lost", 2.0, 2.0, LOST_WHY),
        line("retried", 2.0, {**lost["task"], "failure": "endpoint_lost: exited"}),
        health("a", "recovering", 2.01, 2.01, "restart 1 of 3 in 0.5 s"),
        submitted("t0", "b", 2.0, "fastest", retries=1, predicted_s=0.3),
        submitted("t2", "b", 2.5, "round_robin"),
        delivered("t0", "b", [(1.0, None), (2.0, 2.5)], fastest(0.3), retries=1),
        delivered("t2", "b", [(2.5, 2.6)], Routing(policy="round_robin")),
        # a change of reason alone: its state's `since` stays where it was
        health("a", "recovering", 3.0, 2.01, "restart 2 of 3 in 1 s"),
        health("a", "up", 4.0, 4.0, "endpoint pid 9 answers on ipc://a"),
        submitted("t3", "a", 4.5, "failover"),
        delivered("t3", "a", [(4.5, 5.99)], failover, success=False),
    ]
    return write_lines(run_dir, lines)


def write_lines(run_dir: Path, lines: list[dict[str, Any]], torn: str = "") -> Path:
    run_dir.mkdir(parents=True)
    text = "".join(json.dumps(entry) + "\n" for entry in lines)
    (run_dir / "journal.jsonl").write_text(text + torn)
    return run_dir


EXPECTED_ROUTING = [
    RoutingRow("a", "failover", sent=1, resends=0, lost=0, succeeded=0),
    RoutingRow("a", "fastest", sent=2, resends=0, lost=1, succeeded=1, compared=1,
               predicted_median_s=0.2, measured_median_s=0.25),
    RoutingRow("b", "fastest", sent=1, resends=1, lost=0, succeeded=1, compared=1,
               predicted_median_s=0.3, measured_median_s=0.5),
    RoutingRow("b", "round_robin", sent=1, resends=0, lost=0, succeeded=1),
]  # fmt: skip


def _rounded(rows: list[RoutingRow]) -> list[RoutingRow]:
    """`rows` with their medians to the nanosecond, to compare them exactly."""
    return [
        dataclasses.replace(
            row,
            predicted_median_s=_round(row.predicted_median_s),
            measured_median_s=_round(row.measured_median_s),
        )
        for row in rows
    ]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 9)


def test_rows_of_a_run_with_routing_and_health(tmp_path: Path) -> None:
    facts = read_routing_facts(routed_run(tmp_path / "run"))
    assert _rounded(facts.routing) == EXPECTED_ROUTING
    assert [(r.site, r.health, r.until_end, r.reason) for r in facts.health] == [
        ("a", "up", False, "endpoint pid 7 answers on ipc://a"),
        ("b", "up", True, "endpoint pid 8 answers on ipc://b"),
        ("a", "lost", False, LOST_WHY),
        ("a", "recovering", False, "restart 1 of 3 in 0.5 s"),
        ("a", "recovering", False, "restart 2 of 3 in 1 s"),
        ("a", "up", True, "endpoint pid 9 answers on ipc://a"),
    ]
    # from the run's start; each until its site's next change, the last to the end
    assert [r.at_s for r in facts.health] == pytest.approx(
        [0.5, 0.6, 2.0, 2.01, 3.0, 4.0]
    )
    assert [r.duration_s for r in facts.health] == pytest.approx(
        [1.5, 5.4, 0.01, 0.99, 1.0, 2.0]
    )


def test_the_median_of_several_predictions() -> None:
    lines = [run_line(*RUN)]
    for i, (predicted, trip) in enumerate([(0.1, 0.4), (0.2, 0.1), (0.9, 0.3)]):
        lines.append(submitted(f"t{i}", "a", 1.0, "fastest", predicted_s=predicted))
        lines.append(delivered(f"t{i}", "a", [(1.0, 1.0 + trip)], fastest(predicted)))
    # a round trip that runs backwards (a garbled timeline) is not compared
    lines.append(delivered("t9", "a", [(1.0, 0.5)], fastest(5.0)))
    (row,) = routing_facts(lines).routing
    assert (row.sent, row.succeeded, row.compared) == (3, 4, 3)
    assert row.predicted_median_s == pytest.approx(0.2)
    assert row.measured_median_s == pytest.approx(0.3)


def test_lines_it_cannot_read_are_left_out(tmp_path: Path) -> None:
    lines = [
        run_line(*RUN),
        line("health", 1.0, {"health": "up"}),  # no site
        line("health", 1.0, {"site": "a", "health": "up", "since": "soon"}),
        submitted("t0", "a", 1.0, "fastest", predicted_s=0.1),
        {"event": "submitted", "time_ns": "late", "task": {}},
        line("submitted", 1.0, {"site": None, "policy": "failover"}),
        line("delivered", 1.5, {"site": "a", "success": True, "routing": "fastest"}),
    ]
    facts = read_routing_facts(write_lines(tmp_path / "run", lines, torn='{"ev'))
    assert [(r.site, r.policy, r.sent, r.succeeded) for r in facts.routing] == [
        ("a", "fastest", 1, 0)
    ]
    (row,) = facts.health  # timed when journaled, for want of a `since`
    assert (row.site, row.until_end) == ("a", True)
    assert row.at_s == pytest.approx(1.0)


def test_the_reader_reads_what_the_dispatcher_writes() -> None:
    result = Result(task_id="t0", method="sim", site="b", retries=1,
                    routing=fastest(0.3))  # fmt: skip
    facts = routing_facts(
        [
            run_line(*RUN),
            line("submitted", 1.0, brief(result)),
        ]
    )
    assert [(r.site, r.policy, r.sent, r.resends) for r in facts.routing] == [
        ("b", "fastest", 1, 1)
    ]


def old_run(run_dir: Path) -> Path:
    """A journal from before routing policies and site health."""
    old = delivered("t0", "a", [(1.0, 1.2)], None)
    old["task"].pop("routing")
    nulled = delivered("t1", "a", [(1.0, 1.3)], None)  # routing: null
    return write_lines(run_dir, [
        run_line(*RUN),
        submitted("t0", "a", 1.0, None),
        submitted("t1", "a", 1.0, None),
        old,
        nulled,
    ])  # fmt: skip


def test_an_old_journal_has_no_routing_facts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = old_run(tmp_path / "run")
    assert read_routing_facts(run) == RoutingFacts([], [])
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["summary", str(run)]) == 0
    out = capsys.readouterr().out
    assert "round_trip" in out and "2/0" in out
    assert "Routing" not in out and "Site health" not in out
    page = write_report(run).read_text()
    assert re.findall(r"<h2>([^<]*)</h2>", page) == [
        "Where the time goes", "Round-trip latency", "Worker utilization",
        "Thinker decision latency", "Clock offsets",
    ]  # fmt: skip


def test_summary_prints_routing_and_site_health(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["summary", str(routed_run(tmp_path / "run"))]) == 0
    out = capsys.readouterr().out
    assert out.index("round_trip") < out.index("Routing") < out.index("Site health")
    rows = {tuple(r.split()[:2]): r.split()[2:] for r in _table_rows(out, "Routing")}
    assert rows[("a", "fastest")] == ["2", "0", "1", "1", "200", "250", "1"]
    assert rows[("b", "fastest")] == ["1", "1", "0", "1", "300", "500", "1"]
    assert rows[("b", "round_robin")] == ["1", "0", "0", "1"]
    assert rows[("a", "failover")] == ["1", "0", "0", "0"]
    health = [r.split()[:4] for r in _table_rows(out, "Site health")]
    assert health[:3] == [["a", "up", "0.50", "1.50"], ["b", "up", "0.60", ">="],
                          ["a", "lost", "2.00", "0.01"]]  # fmt: skip
    assert "see <b>ep.log</b> [/tmp/a] & more" in out  # no markup, for rich either


def _table_rows(out: str, title: str) -> list[str]:
    """The body rows of the rich table titled `title`, border characters removed."""
    lines = out[out.index(title) :].splitlines()
    body = next(i for i, text in enumerate(lines) if text.startswith(("┡", "├")))
    rows = []
    for text in lines[body + 1 :]:
        if text.startswith("└"):
            break
        rows.append(text.replace("│", " "))
    return rows


def test_report_shows_routing_and_site_health_in_chromium(tmp_path: Path) -> None:
    run = routed_run(tmp_path / "run")
    data = load_report_data(run)
    assert _rounded(data.routing.routing) == EXPECTED_ROUTING
    page_path = write_report(run)
    page = page_path.read_text()
    headings = re.findall(r"<h2>([^<]*)</h2>", page)
    assert headings[3:5] == ["Routing", "Site health"]
    assert (
        '<td>b</td><td>fastest</td><td class="num">1</td><td class="num">1</td>'
        '<td class="num">0</td><td class="num">1</td><td class="num">300</td>'
        '<td class="num">500</td><td class="num">1</td>'
    ) in page
    assert '<td class="num">&ge; 2.00</td>' in page
    # the browser shows a reason's markup as text, and builds no element from it
    dom = browser.dump_dom(page_path, tmp_path / "chromium-profile")
    assert "see &lt;b&gt;ep.log&lt;/b&gt; [/tmp/a] &amp; more" in dom
    assert "<b>ep.log</b>" not in dom
    section = dom[dom.index("<h2>Routing</h2>") : dom.index("<h2>Site health</h2>")]
    assert section.count("<tr>") == 1 + len(EXPECTED_ROUTING)
    health = dom[dom.index("<h2>Site health</h2>") :]
    assert health[: health.index("</table>")].count("<tr>") == 1 + 6
