"""Clock knowledge a user supplies: `clocks:` in the federation and site files, the
plan a run journals, and `summary`/`report --clocks` re-correcting a finished run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from colmena_fx.cli import main
from colmena_fx.clockplan import EVERY_SITE
from colmena_fx.clockplan import ClockPlan
from colmena_fx.clockplan import clock_overrides
from colmena_fx.clocksetting import ClockSetting
from colmena_fx.config import SiteConfig
from colmena_fx.configfiles import load_federation
from colmena_fx.exceptions import ConfigError
from colmena_fx.latency.recorder import LatencyRecorder
from colmena_fx.models import Stamp
from testing.journals import START_NS
from testing.sites import THREAD_POOL
from testing.sites import write_federation
from testing.sites import write_site

MS = 1_000_000
#: The made-up site's clock, ahead of the client's.
OFFSET_NS = 40 * MS


def test_a_setting_is_a_word_or_a_mapping() -> None:
    assert ClockSetting.model_validate("synchronized").mode == "synchronized"
    bounded = ClockSetting.model_validate({"mode": "synchronized", "within_ms": 1})
    assert bounded.describe() == "synchronized within 1 ms"
    split = ClockSetting.model_validate({"link_out_ms": 17, "link_back_ms": 41})
    assert split.describe() == ("estimate, least one-way delays 17 ms out, 41 ms back")
    with pytest.raises(ValidationError, match="write 'mode: synchronized'"):
        ClockSetting.model_validate({"within_ms": 1})
    with pytest.raises(ValidationError, match="refine an estimate"):
        ClockSetting.model_validate({"mode": "synchronized", "link_out_ms": 3})
    with pytest.raises(ValidationError):
        ClockSetting.model_validate("ntp")


def test_a_site_file_overrides_the_federation(tmp_path: Path) -> None:
    near = write_site(tmp_path, "near", THREAD_POOL,
                      clocks={"mode": "synchronized", "within_ms": 0.5})  # fmt: skip
    far = write_site(tmp_path, "far", THREAD_POOL)
    path = write_federation(
        tmp_path, [near, far], {"echo": {"site": "far", "function": "x:y"}},
        clocks={"link_out_ms": 2, "link_back_ms": 3},
    )  # fmt: skip
    config, sites = load_federation(path)
    plan = ClockPlan.of(config, sites)
    assert plan.for_site("near").describe() == "synchronized within 0.5 ms"
    assert plan.for_site("far").link_back_ms == 3
    assert ClockPlan.from_json(json.loads(json.dumps(plan.to_json()))) == plan
    assert plan.describe() == (
        "estimate, least one-way delays 2 ms out, 3 ms back; near: synchronized "
        "within 0.5 ms"
    )
    with pytest.raises(ValidationError, match="clocks"):
        SiteConfig.model_validate({"name": "x", "engine": THREAD_POOL,
                                   "clocks": {"mode": "exact"}})  # fmt: skip


def test_clock_options_parse_and_name_the_fix() -> None:
    overrides = clock_overrides(["synchronized:2", "far=estimate"])
    assert overrides[EVERY_SITE].within_ms == 2
    assert overrides["far"].mode == "estimate"
    plan = ClockPlan(sites={"near": ClockSetting(mode="synchronized")})
    # a new default replaces every site's own setting; a named site only its own
    assert plan.overridden(overrides).for_site("near").within_ms == 2
    assert plan.overridden({"far": ClockSetting()}).for_site("near").mode == (
        "synchronized"
    )
    with pytest.raises(ConfigError, match="SITE=synchronized:1"):
        clock_overrides(["far=sync"])
    with pytest.raises(ConfigError, match="within"):
        clock_overrides(["far=synchronized:x"])


def _run_declaring_synchronized(run_dir: Path) -> Path:
    """A run whose site `far` was declared synchronized, its clock 40 ms ahead."""
    run_dir.mkdir()
    plan = ClockPlan(sites={"far": ClockSetting(mode="synchronized")}).to_json()
    lines = [{"event": "run", "time_ns": START_NS, "task": {
        "federation": "made-up", "client_host": "client", "clocks": plan,
        "sites": {"far": "local"}}}]  # fmt: skip
    for i in range(10):
        sent = START_NS + i * 100 * MS
        events = [
            [Stamp.CREATED, sent - MS, "client"],
            [Stamp.SENT, sent, "client"],
            [Stamp.ENDPOINT_RECEIVED, sent + 2 * MS + OFFSET_NS, "node"],
            [Stamp.ENDPOINT_SENT, sent + 12 * MS + OFFSET_NS, "node"],
            [Stamp.RECEIVED, sent + 14 * MS, "client"],
            [Stamp.DELIVERED, sent + 15 * MS, "client"],
        ]
        lines.append({"event": "delivered", "time_ns": sent + 15 * MS, "task": {
            "task_id": f"t{i}", "method": "m", "topic": "default", "site": "far",
            "success": True, "timeline": {"events": events}}})  # fmt: skip
    (run_dir / "journal.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in lines)
    )
    return run_dir


def test_a_contradicted_declaration_warns_and_is_estimated(tmp_path: Path) -> None:
    run_dir = _run_declaring_synchronized(tmp_path / "run")
    recorder = LatencyRecorder.from_run(run_dir)
    (clock,) = recorder.offsets()
    assert clock.warning.startswith("site 'far' (host node) declares its clock "
                                    "synchronized, but a round trip proves it at "
                                    "least 38.000 ms ahead")  # fmt: skip
    assert abs(clock.offset_s - OFFSET_NS / 1e9) <= clock.uncertainty_s
    links = {row.hop: row for row in recorder.summary()}
    assert 0 <= links["link_out"].median_s <= 0.004  # not 42 ms


def test_summary_recorrects_a_finished_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # the whole table, on one line per row
    run_dir = _run_declaring_synchronized(tmp_path / "run")
    assert main(["summary", str(run_dir)]) == 0
    declared = capsys.readouterr().out
    assert "declares its clock" in declared and "+40" in declared
    assert main(["summary", str(run_dir), "--clocks", "far=estimate"]) == 0
    estimated = capsys.readouterr().out
    assert "declares its clock" not in estimated and "+40" in estimated
    assert main(["summary", str(run_dir), "--clocks", "far=synchronized:50"]) == 0
    trusted = capsys.readouterr().out
    assert "synchronized within 50 ms" in trusted and "+0.000" in trusted
    assert main(["summary", str(run_dir), "--clocks", "far=precise"]) == 2
    assert "SITE=estimate" in capsys.readouterr().err
    out = tmp_path / "report"
    assert main(["report", str(run_dir), "--out", str(out),
                 "--clocks", "far=estimate"]) == 0  # fmt: skip
    page = (out / "report.html").read_text()
    assert "Clock offsets" in page and "drift ppm" in page
