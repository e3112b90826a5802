"""`colmena-fx probe` on a federation of two real local sites."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from colmena_fx.cli import main
from colmena_fx.exceptions import ConfigError
from colmena_fx.probe import probe_federation
from colmena_fx.probe import probe_tables
from testing.sites import PROCESS_POOL
from testing.sites import THREAD_POOL
from testing.sites import write_federation
from testing.sites import write_site


@pytest.fixture
def two_sites(tmp_path: Path) -> Path:
    sites = [
        write_site(tmp_path, "threads", THREAD_POOL),
        write_site(tmp_path, "processes", PROCESS_POOL, local={"link": "tcp"}),
    ]
    # the campaign's own methods do not matter to the probe
    return write_federation(
        tmp_path, sites, {"add": {"site": "threads", "function": "testing.tasks:add"}}
    )


def test_every_site_size_and_mode_is_measured_side_by_side(two_sites: Path) -> None:
    report = probe_federation(two_sites, sizes=[0, 100_000], repeats=3)
    keys = {(row.site, row.size_bytes, row.mode) for row in report.rows}
    assert keys == {
        (site, size, mode)
        for site in ("threads", "processes")
        for size in (0, 100_000)
        for mode in ("serial", "burst")
    }
    for row in report.rows:
        assert (row.tasks, row.failed, row.failure) == (3, 0, "")
        assert row.round_trip_median_s is not None and row.round_trip_median_s > 0
        assert row.tasks_per_s is not None and row.tasks_per_s > 0
        assert {"link_out", "compute", "link_back"} <= set(row.hop_medians_s)
        assert min(row.hop_medians_s.values()) >= 0
    assert {offset.site for offset in report.offsets} == {"threads", "processes"}
    assert (report.run_dir / "journal.jsonl").exists()
    assert (report.run_dir / "latency" / "hops.parquet").exists()
    titles = [str(table.title) for table in probe_tables(report)]
    assert titles[0] == "0 B payload, one in flight (3 tasks per site)"
    assert len(titles) == 4


def test_json_output_and_a_payload_over_the_result_limit(
    two_sites: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # echoing 8 MB returns over 10 MiB once Globus Compute has base64-encoded it
    code = main(["probe", str(two_sites), "--sites", "threads", "--sizes", "1KB,8MB",
                 "-n", "1", "--modes", "serial", "--json"])  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    rows = {row["size_bytes"]: row for row in out["rows"]}
    assert rows[1000]["failed"] == 0 and rows[1000]["round_trip_median_ms"] > 0
    assert rows[8_000_000]["failed"] == 1
    assert "over the endpoint's result limit of 10 MiB" in rows[8_000_000]["failure"]
    assert out["clock_offsets"][0]["site"] == "threads"


def test_unknown_sites_are_named(two_sites: Path) -> None:
    with pytest.raises(ConfigError, match=r"no site named \['gpu'\]"):
        probe_federation(two_sites, sites=["gpu"])
