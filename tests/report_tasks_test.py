"""Every task of a run counted, finished or not: the rows, `summary`, the report and
the exported `tasks` table, on journals written by hand: a clean run, a crashed
one, a resumed one, and an old journal without resumes or clean stops."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest

from colmena_fx.cli import main
from colmena_fx.dispatch import brief
from colmena_fx.latency.lifecycle import ending_sentence
from colmena_fx.latency.lifecycle import lifecycle_sentences
from colmena_fx.latency.routes import read_routing_facts
from colmena_fx.latency.tasks import SiteTasks
from colmena_fx.latency.tasks import TaskState
from colmena_fx.latency.tasks import read_task_facts
from colmena_fx.latency.tasks import task_facts
from colmena_fx.models import Failure
from colmena_fx.models import FailureKind
from colmena_fx.models import Result
from colmena_fx.models import Routing
from colmena_fx.models import Stamp
from colmena_fx.report import write_report
from testing.journals import START_NS
from testing.journals import at_ns
from testing.journals import line
from testing.journals import run_line

#: The run line of these journals: federation, its sites and transports.
RUN = ("crashy", {"a": "local", "b": "local", "idle": "local"})

OK, FAILED = TaskState.SUCCEEDED, TaskState.FAILED
NOT_DELIVERED, UNFINISHED = TaskState.NOT_DELIVERED, TaskState.UNFINISHED


def short(
    task_id: str, site: str | None, retries: int = 0, **more: Any
) -> dict[str, Any]:
    """What `brief` journals of a task; `more` adds fields (success, reason)."""
    return {"task_id": task_id, "method": "sim", "topic": "default", "site": site,
            "retries": retries, "policy": "failover", **more}  # fmt: skip


def submitted(task_id: str, site: str, at: float, retries: int = 0) -> dict[str, Any]:
    return line("submitted", at, short(task_id, site, retries))


def accepted(task_id: str, site: str, at: float) -> dict[str, Any]:
    task = {"task_id": task_id, "site": site, "remote_id": f"remote-{task_id}"}
    return line("accepted", at, task)


def retried(
    task_id: str, site: str, at: float, reason: str | None, retries: int = 0
) -> dict[str, Any]:
    """An attempt lost and resent; `reason` None as in a journal written before it."""
    task = short(task_id, site, retries, failure=f"lost: {reason}")
    if reason is not None:
        task["reason"] = reason
    return line("retried", at, task)


def completed(
    task_id: str, site: str | None, at: float, success: bool = True, retries: int = 0
) -> dict[str, Any]:
    more: dict[str, Any] = {"success": success}
    if not success:
        more["failure"] = "ValueError: bad input"
    return line("completed", at, short(task_id, site, retries, **more))


def delivered(
    task_id: str,
    site: str,
    sent: float,
    received: float,
    success: bool = True,
    retries: int = 0,
) -> dict[str, Any]:
    """A task's full record, as the federation journals it when the thinker
    takes it (10 ms after `received`)."""
    result = Result(task_id=task_id, method="sim", site=site, retries=retries,
                    success=success, routing=Routing(policy="failover"))  # fmt: skip
    if not success:
        result.failure = Failure(kind=FailureKind.USER, exception_type="ValueError",
                                 message="bad input")  # fmt: skip
    result.stamp(Stamp.CREATED, time_ns=at_ns(sent - 0.01))
    result.stamp(Stamp.SENT, time_ns=at_ns(sent))
    result.stamp(Stamp.RECEIVED, time_ns=at_ns(received))
    result.stamp(Stamp.DELIVERED, time_ns=at_ns(received + 0.01))
    return line("delivered", received + 0.01, result.journal_record())


def resumed(at: float, number: int = 1, **counts: Any) -> dict[str, Any]:
    task = {"client_host": "client2", "pid": 4242, "resumes": number,
            "delivered_before": 0, "redelivered": 0, "reattached": {}, "resent": 0,
            "unfinished": 0, **counts}  # fmt: skip
    return line("resumed", at, task)


def stopped(at: float, unfinished: int = 0) -> dict[str, Any]:
    return line("stopped", at, {"unfinished": unfinished})


def write_lines(run_dir: Path, lines: list[dict[str, Any]], torn: str = "") -> Path:
    run_dir.mkdir(parents=True)
    text = "".join(json.dumps(entry) + "\n" for entry in lines)
    (run_dir / "journal.jsonl").write_text(text + torn)
    return run_dir


def finished(task_id: str, site: str, at: float, success: bool = True) -> list[Any]:
    """A task sent at `at`, back 0.2 s later and taken by the thinker."""
    return [
        submitted(task_id, site, at),
        accepted(task_id, site, at + 0.01),
        completed(task_id, site, at + 0.2, success),
        delivered(task_id, site, at, at + 0.2, success),
    ]


def clean_run(run_dir: Path) -> Path:
    return write_lines(run_dir, [
        run_line(*RUN),
        *finished("t0", "a", 1.0),
        *finished("t1", "b", 1.5),
        stopped(2.0),
    ])  # fmt: skip


def crashed_run(run_dir: Path, extra: int = 0) -> Path:
    """Killed at about 3 s, with no stop: t0 done, t1 failed, t2 completed but
    never taken, t3 accepted at a, t4 lost at a and resent to b, t5 just sent.
    `extra` more tasks were sent to b and never heard of again."""
    lines = [
        run_line(*RUN),
        *finished("t0", "a", 1.0),
        *finished("t1", "a", 1.1, success=False),
        submitted("t2", "b", 1.2),
        accepted("t2", "b", 1.25),
        completed("t2", "b", 2.0),
        submitted("t3", "a", 1.3),
        accepted("t3", "a", 1.4),
        submitted("t4", "a", 1.5),
        retried("t4", "a", 2.0, "endpoint_lost"),
        submitted("t4", "b", 2.1, retries=1),
        submitted("t5", "b", 2.5),
        *(submitted(f"x{i:02d}", "b", 2.6) for i in range(extra)),
    ]
    return write_lines(run_dir, lines, torn='{"event": "compl')


def resumed_run(run_dir: Path) -> Path:
    """Killed at about 2 s and resumed at 3 s by another client, stopped at 6 s.

    t0 was done before the crash. t1 was accepted at a and reattached: it
    completes after the resume. t2 was sent to b and could not be found: it is
    resent (to a) for `client_restart`. t3 completed before the crash and is
    redelivered. t4 is new after the resume and still running at the stop, so
    the stop completes it as a failure that the thinker never takes.
    """
    return write_lines(run_dir, [
        run_line(*RUN),
        *finished("t0", "a", 1.0),
        submitted("t1", "a", 1.1),
        accepted("t1", "a", 1.15),
        submitted("t2", "b", 1.2),
        submitted("t3", "b", 1.3),
        completed("t3", "b", 1.9),
        resumed(3.0, delivered_before=1, redelivered=1, reattached={"a": 1},
                resent=1, unfinished=2),
        retried("t2", "b", 3.1, "client_restart"),
        submitted("t2", "a", 3.1, retries=1),
        delivered("t3", "b", 1.3, 3.2),
        submitted("t4", "b", 4.0),
        completed("t1", "a", 5.0),
        delivered("t1", "a", 1.1, 5.0),
        completed("t2", "a", 5.5, retries=1),
        delivered("t2", "a", 3.1, 5.5, retries=1),
        completed("t4", "b", 6.0, success=False),
        stopped(6.0, unfinished=1),
    ])  # fmt: skip


def old_run(run_dir: Path) -> Path:
    """A journal from before resumes, clean stops and `retried` reasons."""
    return write_lines(run_dir, [
        run_line(*RUN),
        submitted("t0", "a", 1.0),
        retried("t0", "a", 1.5, None),
        submitted("t0", "b", 1.6, retries=1),
        completed("t0", "b", 2.0, retries=1),
        delivered("t0", "b", 1.6, 2.0, retries=1),
        *finished("t1", "a", 1.1),
        line("processed", 2.5, {"task_id": "t1", "time_ns": at_ns(2.5)}),
    ])  # fmt: skip


def states(run_dir: Path) -> dict[str, tuple[Any, ...]]:
    """Task id -> (state, site, last event, last seen s, retries, resumed after)."""
    return {
        r.task_id: (r.state, r.site, r.last_event, round(r.last_seen_s, 6),
                    r.retries, r.resumed_after)
        for r in read_task_facts(run_dir).tasks
    }  # fmt: skip


# -- the rows ------------------------------------------------------------------------


def test_rows_of_a_clean_run(tmp_path: Path) -> None:
    facts = read_task_facts(clean_run(tmp_path / "run"))
    assert [(r.task_id, r.state, r.site, r.last_event) for r in facts.tasks] == [
        ("t0", OK, "a", "delivered"), ("t1", OK, "b", "delivered"),
    ]  # fmt: skip
    assert facts.sites == [
        SiteTasks("a", submitted=1, succeeded=1, failed=0, not_delivered=0,
                  unfinished=0),
        SiteTasks("b", 1, 1, 0, 0, 0),
        SiteTasks("idle", 0, 0, 0, 0, 0),
    ]  # fmt: skip
    life = facts.lifecycle
    assert life.clean and life.recorded and not life.resumes
    assert life.start_ns == START_NS
    assert life.stop is not None and life.stop.at_s == pytest.approx(2.0)
    assert not facts.interrupted and facts.undelivered == []


def test_rows_of_a_crashed_run(tmp_path: Path) -> None:
    run = crashed_run(tmp_path / "run")
    assert states(run) == {
        "t0": (OK, "a", "delivered", 1.21, 0, False),
        "t1": (FAILED, "a", "delivered", 1.31, 0, False),
        "t2": (NOT_DELIVERED, "b", "completed", 2.0, 0, False),
        "t3": (UNFINISHED, "a", "accepted", 1.4, 0, False),
        "t4": (UNFINISHED, "b", "submitted", 2.1, 1, False),
        "t5": (UNFINISHED, "b", "submitted", 2.5, 0, False),
    }
    facts = read_task_facts(run)
    # t4 was sent to both; it is unfinished at b, where it was sent last
    assert facts.sites[:2] == [
        SiteTasks("a", submitted=4, succeeded=1, failed=1, not_delivered=0,
                  unfinished=1),
        SiteTasks("b", submitted=3, succeeded=0, failed=0, not_delivered=1,
                  unfinished=2),
    ]  # fmt: skip
    assert [r.task_id for r in facts.undelivered] == ["t2", "t3", "t4", "t5"]
    not_delivered = facts.undelivered[0]
    assert not_delivered.success is True  # it completed well: only never taken
    life = facts.lifecycle
    assert facts.interrupted and not life.clean and not life.recorded
    assert life.end_s == pytest.approx(2.5)  # the torn line is left out
    assert ending_sentence(life).startswith(
        "The client stopped without a clean stop: crashed, killed, or still running"
    )


def test_rows_of_a_resumed_run(tmp_path: Path) -> None:
    run = resumed_run(tmp_path / "run")
    assert states(run) == {
        "t0": (OK, "a", "delivered", 1.21, 0, False),
        "t1": (OK, "a", "delivered", 5.01, 0, False),  # reattached, not resent
        "t2": (OK, "a", "delivered", 5.51, 1, True),
        "t3": (OK, "b", "delivered", 3.21, 0, False),  # redelivered
        "t4": (NOT_DELIVERED, "b", "completed", 6.0, 0, True),
    }
    facts = read_task_facts(run)
    assert facts.sites[:2] == [
        SiteTasks("a", submitted=3, succeeded=3, failed=0, not_delivered=0,
                  unfinished=0),
        SiteTasks("b", submitted=3, succeeded=1, failed=0, not_delivered=1,
                  unfinished=0),
    ]  # fmt: skip
    assert facts.undelivered[0].success is False
    life = facts.lifecycle
    (resume,) = life.resumes
    assert (resume.number, resume.client_host, resume.pid) == (1, "client2", 4242)
    assert resume.at_s == pytest.approx(3.0)
    assert (resume.reattached, resume.resent, resume.redelivered) == ({"a": 1}, 1, 1)
    assert (resume.delivered_before, resume.unfinished) == (1, 2)
    assert life.clean and life.stop is not None and life.stop.unfinished == 1
    assert lifecycle_sentences(life) == [
        "The run was resumed once.",
        "Resume 1 at 3.00 s (client host client2, pid 4242): 2 tasks unfinished, "
        "1 reattached (a 1), 1 resent, 1 redelivered; 1 delivered before it.",
        "The client stopped cleanly at 6.00 s, after its last resume; 1 task "
        "unfinished at the stop.",
    ]
    # a resend for the client's restart is no loss at the site
    lost = {(r.site, r.policy): r.lost for r in read_routing_facts(run).routing}
    assert lost == {("a", "failover"): 0, ("b", "failover"): 0}


def test_only_a_stop_after_the_last_resume_is_clean(tmp_path: Path) -> None:
    lines = [
        run_line(*RUN),
        submitted("t0", "a", 1.0),
        stopped(2.0, unfinished=1),
        resumed(3.0, unfinished=1, resent=1),
        retried("t0", "a", 3.0, "client_restart"),
        resumed(5.0, number=2, unfinished=1),
    ]
    facts = task_facts(lines)
    life = facts.lifecycle
    assert [r.number for r in life.resumes] == [1, 2]
    assert not life.clean and life.recorded
    assert "Journals older" not in ending_sentence(life)
    # resent after a restart, its new attempt not journaled before the next crash
    (task,) = facts.tasks
    assert (task.state, task.last_event, task.resumed_after) == (
        UNFINISHED, "retried", True,
    )  # fmt: skip


def test_rows_of_an_old_journal(tmp_path: Path) -> None:
    run = old_run(tmp_path / "run")
    assert states(run) == {
        "t0": (OK, "b", "delivered", 2.01, 1, False),
        "t1": (OK, "a", "delivered", 1.31, 0, False),
    }
    facts = read_task_facts(run)
    assert [(s.site, s.submitted, s.succeeded) for s in facts.sites] == [
        ("a", 2, 1), ("b", 1, 1), ("idle", 0, 0),
    ]  # fmt: skip
    life = facts.lifecycle
    assert not life.clean and not life.recorded and not facts.interrupted
    assert ending_sentence(life).endswith(
        "Journals older than clean stops never show one."
    )
    # an old resend is a loss at its site, as before
    lost = {(r.site, r.policy): r.lost for r in read_routing_facts(run).routing}
    assert lost[("a", "failover")] == 1


def test_a_journal_of_delivered_lines_alone(tmp_path: Path) -> None:
    """The oldest journals: no run line, no task lines but `delivered`."""
    lines = [delivered("t0", "a", 1.0, 1.2), delivered("t1", "a", 1.0, 1.5, False)]
    facts = task_facts(lines)
    assert [(r.state, r.last_seen_s) for r in facts.tasks] == [
        (OK, 0.0), (FAILED, pytest.approx(0.3)),
    ]  # fmt: skip
    assert facts.sites == [SiteTasks("a", 0, 1, 1, 0, 0)]
    assert facts.lifecycle.start_ns is None


def test_lines_it_cannot_read_are_left_out() -> None:
    lines = [
        run_line(*RUN),
        {"event": "submitted", "time_ns": "late", "task": short("t0", "a")},
        line("submitted", 1.0, {"site": "a"}),  # no task id
        line("completed", 1.5, short("t1", None, success=False)),  # never sent
        line("resumed", 2.0, {"pid": "x", "reattached": {"a": "two", "b": 2}}),
        line("stopped", 3.0, {}),
    ]
    facts = task_facts(lines)
    (task,) = facts.tasks
    assert (task.task_id, task.site, task.state) == ("t1", None, NOT_DELIVERED)
    assert facts.sites[-1] == SiteTasks(None, 0, 0, 0, 1, 0)
    (resume,) = facts.lifecycle.resumes
    assert (resume.number, resume.pid, resume.reattached) == (1, None, {"b": 2})
    assert facts.lifecycle.stop is not None
    assert facts.lifecycle.stop.unfinished is None


def test_the_reader_reads_what_the_dispatcher_writes() -> None:
    result = Result(task_id="t0", method="sim", site="b", retries=1,
                    routing=Routing(policy="fastest", predicted_s=0.3))  # fmt: skip
    sent = line("submitted", 1.0, brief(result))
    result.success = True
    done = line("completed", 2.0, brief(result))
    facts = task_facts([run_line(*RUN), sent, done])
    assert [(r.site, r.state, r.retries) for r in facts.tasks] == [
        ("b", NOT_DELIVERED, 1)
    ]


# -- `summary` -----------------------------------------------------------------------


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


def summary_of(run: Path, capsys: pytest.CaptureFixture[str], *more: str) -> str:
    assert main(["summary", str(run), *more]) == 0
    return capsys.readouterr().out


def table_rows(out: str, title: str) -> list[list[str]]:
    """The body rows of the rich table titled `title`, split into cells."""
    lines = out[out.index(title) :].splitlines()
    body = next(i for i, text in enumerate(lines) if text.startswith(("┡", "├")))
    rows = []
    for text in lines[body + 1 :]:
        if text.startswith("└"):
            break
        rows.append([cell.strip() for cell in text.strip("│").split("│")])
    return rows


@pytest.mark.usefixtures("wide")
def test_summary_of_a_clean_run_says_only_that_it_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = summary_of(clean_run(tmp_path / "run"), capsys)
    assert "round_trip" in out
    assert "Tasks per site" not in out and "not delivered" not in out
    assert "The client stopped cleanly at 2.00 s, after its start." in out


@pytest.mark.usefixtures("wide")
def test_summary_of_a_crashed_run_counts_every_task(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = summary_of(crashed_run(tmp_path / "run"), capsys)
    assert out.index("round_trip") < out.index("Tasks per site")
    assert table_rows(out, "Tasks per site") == [
        ["a", "4", "1", "1", "0", "1"],
        ["b", "3", "0", "0", "1", "2"],
        ["idle", "0", "0", "0", "0", "0"],
    ]
    assert table_rows(out, "Tasks not delivered (4)") == [
        ["t2", "sim", "b", "completed, not delivered", "completed", "2.00"],
        ["t3", "sim", "a", "unfinished", "accepted", "1.40"],
        ["t4", "sim", "b", "unfinished", "submitted", "2.10"],
        ["t5", "sim", "b", "unfinished", "submitted", "2.50"],
    ]
    assert "and 0 more" not in out
    assert "crashed, killed, or still running" in out


@pytest.mark.usefixtures("wide")
def test_summary_lists_twenty_tasks_and_counts_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = summary_of(crashed_run(tmp_path / "run", extra=30), capsys)
    assert len(table_rows(out, "Tasks not delivered (34)")) == 20
    assert "and 14 more" in out


@pytest.mark.usefixtures("wide")
def test_summary_of_a_resumed_run_says_what_each_resume_did(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = summary_of(resumed_run(tmp_path / "run"), capsys)
    assert table_rows(out, "Tasks per site")[:2] == [
        ["a", "3", "3", "0", "0", "0"],
        ["b", "3", "1", "0", "1", "0"],
    ]
    assert table_rows(out, "Tasks not delivered (1)") == [
        ["t4", "sim", "b", "completed, not delivered", "completed", "6.00"],
    ]
    text = " ".join(out.split())  # the console wraps long sentences
    assert "The run was resumed once." in text
    assert "Resume 1 at 3.00 s (client host client2, pid 4242)" in text
    assert "1 reattached (a 1), 1 resent, 1 redelivered" in text
    assert "The client stopped cleanly at 6.00 s, after its last resume" in text


@pytest.mark.usefixtures("wide")
def test_summary_of_an_old_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = summary_of(old_run(tmp_path / "run"), capsys)
    assert "round_trip" in out and "Tasks per site" not in out
    assert "Journals older than clean stops never show one." in " ".join(out.split())


# -- the report ----------------------------------------------------------------------


def headings(page: str) -> list[str]:
    return re.findall(r"<h2>([^<]*)</h2>", page)


def test_report_of_a_crashed_run_has_a_tasks_section(tmp_path: Path) -> None:
    page = write_report(crashed_run(tmp_path / "run")).read_text()
    assert headings(page)[0] == "Tasks"
    section = page[page.index("<h2>Tasks</h2>") : page.index("<h2>Where")]
    assert (
        '<td>b</td><td class="num">3</td><td class="num">0</td><td class="num">0</td>'
        '<td class="num">1</td><td class="num">2</td>'
    ) in section
    assert "4 tasks never reached the thinker" in section
    assert (
        "<td>t3</td><td>sim</td><td>a</td><td>unfinished</td><td>accepted</td>"
        '<td class="num">1.40</td><td></td>'
    ) in section
    assert "<td>completed, not delivered</td>" in section
    assert "crashed, killed, or still running" in page


def test_report_lists_a_hundred_tasks_and_counts_the_rest(tmp_path: Path) -> None:
    page = write_report(crashed_run(tmp_path / "run", extra=110)).read_text()
    assert "114 tasks never reached the thinker" in page
    listed = page[page.index("<th>sent after a resume</th>") :]
    assert listed[: listed.index("</table>")].count("<tr>") == 100
    assert "and 14 more: <code>colmena-fx summary --export</code>" in page


def test_report_of_a_resumed_run_shows_the_resume(tmp_path: Path) -> None:
    page = write_report(resumed_run(tmp_path / "run")).read_text()
    assert "The run was resumed once (see Tasks)." in page
    section = page[page.index("<h2>Tasks</h2>") : page.index("<h2>Where")]
    assert "Resume 1 at 3.00 s (client host client2, pid 4242)" in section
    assert "<td>t4</td>" in section and "<td>yes</td>" in section
    assert "stopped cleanly at 6.00 s" in page


def test_reports_of_clean_and_old_runs_have_no_tasks_section(tmp_path: Path) -> None:
    clean = write_report(clean_run(tmp_path / "clean")).read_text()
    assert "Tasks" not in headings(clean)
    assert "The client stopped cleanly at 2.00 s, after its start." in clean
    old = write_report(old_run(tmp_path / "old")).read_text()
    assert "Tasks" not in headings(old)
    assert "Journals older than clean stops never show one." in old


# -- the exported `tasks` table ------------------------------------------------------


@pytest.mark.usefixtures("wide")
@pytest.mark.parametrize("journal", [clean_run, crashed_run, resumed_run, old_run])
def test_export_writes_a_row_per_task(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], journal: Any
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    run = journal(tmp_path / "run")
    out = summary_of(run, capsys, "--export")
    latency = run / "latency"
    for name in ("hops", "summary", "clocks", "tasks"):
        for fmt in ("csv", "parquet"):
            assert f"wrote {latency / f'{name}.{fmt}'}" in out
    expected = read_task_facts(run).tasks
    with open(latency / "tasks.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [r["task_id"] for r in rows] == [t.task_id for t in expected]
    assert [r["state"] for r in rows] == [t.state.value for t in expected]
    assert list(rows[0]) == [
        "task_id", "method", "topic", "site", "state", "last_event", "last_seen_s",
        "retries", "resumed_after", "success",
    ]  # fmt: skip
    table = pq.read_table(latency / "tasks.parquet")
    assert table.num_rows == len(expected)
    columns = table.to_pydict()
    assert columns["state"] == [t.state.value for t in expected]
    assert columns["resumed_after"] == [t.resumed_after for t in expected]
    assert columns["last_seen_s"] == pytest.approx([t.last_seen_s for t in expected])
    assert str(table.schema.field("site").type) == "string"


def test_export_of_a_run_with_no_task_still_has_typed_columns(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    run = write_lines(
        tmp_path / "run",
        [
            run_line(*RUN),
            stopped(1.0),
        ],
    )
    assert main(["summary", str(run), "--export"]) == 0
    table = pq.read_table(run / "latency" / "tasks.parquet")
    assert table.num_rows == 0
    assert str(table.schema.field("retries").type) == "int64"
    with open(run / "latency" / "tasks.csv") as stream:
        assert stream.readline().startswith("task_id,method,topic,site,state")
