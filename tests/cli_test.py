"""The `colmena-fx` command line, run as a user would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from colmena_fx.cli import main
from colmena_fx.endpoint import wire
from colmena_fx.federation import Federation
from testing.sites import THREAD_POOL
from testing.sites import write_site

COLMENA_FX = [sys.executable, "-m", "colmena_fx.cli"]


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
        deadline = time.monotonic() + 60
        while not connection.exists() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.1)
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
