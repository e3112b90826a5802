"""The live site panel on real endpoint processes: its figures, and when it draws."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table
from rich.text import Text

from colmena_fx.exceptions import UsageError
from colmena_fx.federation import Federation
from colmena_fx.live import LiveView
from colmena_fx.live import site_table
from testing.sites import PROCESS_POOL
from testing.sites import THREAD_POOL
from testing.sites import FederationFactory
from testing.wait import wait_until

COLUMNS = ["transport", "health", "in flight", "done", "failed", "p50", "p95"]


def _rows(table: Table) -> dict[str, dict[str, str]]:
    """The table as a terminal shows it, one dict of cells per site."""
    console = Console(record=True, width=120, force_terminal=True)
    console.print(table)
    rows = {}
    for line in console.export_text().splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 1 + len(COLUMNS) and cells[0] not in ("site", ""):
            rows[cells[0]] = dict(zip(COLUMNS, cells[1:], strict=True))
    return rows


def _results(federation: Federation, count: int) -> list[object]:
    results = [federation.get_result(timeout=60) for _ in range(count)]
    assert all(r is not None for r in results)
    return results


@pytest.fixture
def two_sites(make_federation: FederationFactory) -> Federation:
    return make_federation(
        {
            "echo": {"site": "cpu", "function": "testing.tasks:echo"},
            "fail_with": {"site": "cpu", "function": "testing.tasks:fail_with"},
            "add": {"site": "threads", "function": "testing.tasks:add"},
        },
        sites={"cpu": PROCESS_POOL, "threads": THREAD_POOL},
    )


def test_table_counts_done_failed_and_in_flight_per_site(two_sites: Federation) -> None:
    before = _rows(site_table(two_sites))
    assert set(before) == {"cpu", "threads"}  # every site, before any task
    assert before["cpu"] == {
        "transport": "local", "health": "up", "in flight": "0", "done": "0",
        "failed": "0", "p50": "-", "p95": "-",
    }  # fmt: skip

    for value in range(3):
        two_sites.submit("echo", value)
    two_sites.submit("fail_with", "on purpose")
    two_sites.submit("add", 1, 2)
    _results(two_sites, 5)

    rows = _rows(site_table(two_sites))
    assert (rows["cpu"]["done"], rows["cpu"]["failed"]) == ("3", "1")
    assert (rows["threads"]["done"], rows["threads"]["failed"]) == ("1", "0")
    for row in rows.values():
        assert row["in flight"] == "0"
        assert float(row["p50"]) > 0
        assert float(row["p95"]) >= float(row["p50"])


def test_table_shows_a_lost_site_with_its_reason(
    make_federation: FederationFactory,
) -> None:
    federation = make_federation(
        {"echo": {"site": "cpu", "function": "testing.tasks:echo"}},
        local={"heartbeat_s": 0.2, "restart": {"attempts": 0}},
    )
    federation.transports["cpu"].process.kill()  # type: ignore[attr-defined]
    health = federation.transports["cpu"].health
    wait_until(lambda: health.health == "lost", 10, "the site declared lost")
    cell = _rows(site_table(federation))["cpu"]["health"]
    assert cell.startswith("lost ") and "exited" in cell


def test_table_shows_tasks_in_flight(cpu_federation: Federation) -> None:
    cpu_federation.submit("sleep_then", 2.0)
    cpu_federation.submit("sleep_then", 2.0)
    assert _rows(site_table(cpu_federation))["cpu"]["in flight"] == "2"
    _results(cpu_federation, 2)
    row = _rows(site_table(cpu_federation))["cpu"]
    assert (row["in flight"], row["done"]) == ("0", "2")


def test_view_writes_nothing_off_a_terminal(
    cpu_federation: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):  # they make any file a terminal
        monkeypatch.delenv(name, raising=False)
    out = io.StringIO()
    console = Console(file=out)
    assert not console.is_terminal
    with LiveView(cpu_federation, console, refresh_s=0.1) as view:
        assert not view.active
        cpu_federation.submit("sleep_then", 0.3)
        _results(cpu_federation, 1)
    assert out.getvalue() == ""


def test_view_redraws_the_table_on_a_terminal_while_tasks_run(
    cpu_federation: Federation,
) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with LiveView(
        cpu_federation, console, refresh_s=0.2, extra=Text("the bar")
    ) as view:
        assert view.active
        cpu_federation.submit("sleep_then", 1.0)
        wait_until(lambda: "cpu" in out.getvalue(), 10, "the view drawing the site")
        assert "the bar" in out.getvalue()
        _results(cpu_federation, 1)
        # Redrawn on its own while the task ran, not only when the view started.
        assert out.getvalue().count("Sites") >= 2
    assert not view.active
    assert out.getvalue().endswith("\x1b[?25h")  # the cursor is given back


def test_view_stops_cleanly_on_an_exception_and_enters_once(
    cpu_federation: Federation,
) -> None:
    out = io.StringIO()
    view = LiveView(cpu_federation, Console(file=out, force_terminal=True))
    with pytest.raises(KeyError), view:
        raise KeyError("boom")
    assert not view.active
    assert out.getvalue().endswith("\x1b[?25h")
    with pytest.raises(UsageError, match="entered once"), view:
        pass


def test_refresh_period_must_be_positive(cpu_federation: Federation) -> None:
    with pytest.raises(UsageError, match="refresh_s"):
        LiveView(cpu_federation, refresh_s=0)
