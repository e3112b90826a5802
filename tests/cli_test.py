"""The `colmena-fx` command line, run as a user would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from colmena_fx.cli import main
from colmena_fx.endpoint import wire
from colmena_fx.federation import Federation
from testing.sites import THREAD_POOL
from testing.sites import write_site
from testing.wait import wait_until

COLMENA_FX = [sys.executable, "-m", "colmena_fx.cli"]
REPO = Path(__file__).resolve().parents[1]


def test_endpoint_start_runs_until_interrupted(tmp_path: Path) -> None:
    site = write_site(tmp_path, "solo", THREAD_POOL)
    run_dir = tmp_path / "ep"
    proc = subprocess.Popen(
        [*COLMENA_FX, "endpoint", "start", str(site), "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        connection = run_dir / "connection.json"

        def ready() -> bool:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            return connection.exists()

        wait_until(ready, 60, "the endpoint writing its connection file")
        info = wire.ConnectionInfo.read(connection)
        assert info.site == "solo"
        assert info.pid == proc.pid
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert "ready; connection file" in output
    assert not connection.exists()


def test_endpoint_start_with_bad_file_says_why(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("engine: {type: ThreadPoolEngine}\nlocal: {link: carrier-pigeon}\n")
    done = subprocess.run(
        [*COLMENA_FX, "endpoint", "start", str(bad), "--run-dir", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "bad.yaml: key 'local.link'" in done.stderr


def test_summary_prints_the_table_of_a_run(
    cpu_federation: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(3):
        cpu_federation.submit("add", i)
    for _ in range(3):
        assert cpu_federation.get_result(timeout=60) is not None
    cpu_federation.stop()
    assert main(["summary", str(cpu_federation.run_dir)]) == 0
    out = capsys.readouterr().out
    assert "cpu" in out and "add" in out and "3/0" in out
    assert "round_trip" in out and "compute" in out


def test_summary_of_a_directory_without_journal(tmp_path: Path) -> None:
    assert main(["summary", str(tmp_path)]) == 2


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "colmena-fx"
    assert script.exists()
    done = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, env=os.environ
    )
    assert done.returncode == 0 and "endpoint" in done.stdout


def test_endpoint_validate_prints_one_line_per_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "engine:\n  type: GlobusComputeEngine\n"
        "  provider: {type: SlurmProvider, partion: debug}\n"
    )
    polaris = REPO / "endpoints" / "polaris.yaml"
    assert main(["endpoint", "validate", str(polaris), str(bad)]) == 2
    first, second = capsys.readouterr().out.splitlines()
    assert first.startswith(f"OK    {polaris}: GlobusComputeEngine, PBSProProvider")
    assert "address_by_interface(ifname='hsn0') stood in by 127.0.0.1" in first
    assert second.startswith(f"FAIL  {bad}: key 'engine.provider.partion': ")


def test_endpoint_validate_of_good_files_succeeds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = [str(REPO / "endpoints" / f"{n}.yaml") for n in ("aurora", "local-cpu")]
    assert main(["endpoint", "validate", *files]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["OK", f"{files[0]}:"],
        ["OK", f"{files[1]}:"],
    ]


def test_endpoint_render_writes_the_files_and_says_what_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    site = REPO / "endpoints" / "perlmutter-gpu.yaml"
    assert main(["endpoint", "render", str(site)]) == 0
    out = capsys.readouterr().out
    written = sorted(p.name for p in (tmp_path / "endpoint-perlmutter-gpu").iterdir())
    assert written == [
        "config.yaml",
        "user_config_schema.json",
        "user_config_template.yaml.j2",
    ]
    assert "wrote endpoint-perlmutter-gpu/user_config_template.yaml.j2" in out
    assert "fill in first: engine.provider.account, engine.provider.worker_init" in out
    assert (
        "  globus-compute-endpoint configure perlmutter-gpu"
        " --core-config endpoint-perlmutter-gpu/config.yaml"
    ) in out
    assert "  globus-compute-endpoint start perlmutter-gpu" in out

    assert main(["endpoint", "render", str(site), "--out", "elsewhere"]) == 0
    assert (tmp_path / "elsewhere" / "config.yaml").exists()


def test_endpoint_render_of_a_broken_file_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("engine: {type: GlobusComputeEngine, address: hsn0}\n")
    assert main(["endpoint", "render", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "bad.yaml: key 'engine.address'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_endpoint_list_shows_the_demo_sites_and_their_methods(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["endpoint", "list"]) == 0
    out = capsys.readouterr().out
    rows = {
        line.split()[0]: line.split() for line in out.splitlines() if "local-" in line
    }
    assert set(rows) == {"local-cpu", "local-gpu"}
    assert rows["local-cpu"][1:5] == ["local", "-", "GlobusComputeEngine", "simulate"]
    assert rows["local-gpu"][1:6] == [
        "local",
        "-",
        "GlobusComputeEngine",
        "train,",
        "infer",
    ]
    assert "Simulation site" in out and "Training site" in out
