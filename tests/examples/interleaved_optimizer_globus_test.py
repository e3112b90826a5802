"""The demo campaign, unchanged, with its training site behind Globus Compute.

The training site's file is the shipped one with `transport: globus`: its engine
block runs in a real endpoint process fed by the stand-in web service and RabbitMQ,
and the thinker reaches it through the SDK's Executor. The simulation site stays
local, so one campaign spans both transports.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from colmena_fx.configfiles import load_site
from colmena_fx.journal import final_records
from colmena_fx.journal import read_journal
from examples.interleaved_optimizer.run import main
from testing.gcservice.fixtures import EndpointFactory
from testing.gcservice.fixtures import write_globus_site
from testing.gcservice.service import ComputeServiceStandIn

REPO = Path(__file__).resolve().parents[2]
BUDGET = 16


@pytest.mark.usefixtures("globus_credentials")
def test_demo_runs_with_the_training_site_on_globus_compute(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
) -> None:
    shipped = load_site(REPO / "endpoints" / "local-gpu.yaml")
    assert shipped.engine is not None
    endpoint = start_endpoint("local-gpu", shipped.engine)
    gpu_site = write_globus_site(tmp_path, "local-gpu", compute_service, endpoint)
    federation = yaml.safe_load((REPO / "endpoints" / "federation.yaml").read_text())
    federation["sites"] = [str(REPO / "endpoints" / "local-cpu.yaml"), str(gpu_site)]
    federation_file = tmp_path / "federation.yaml"
    federation_file.write_text(yaml.safe_dump(federation))

    monkeypatch.chdir(REPO)  # the workers import the demo's functions from here
    code = main(
        [
            "--federation", str(federation_file),
            "--run-dir", str(tmp_path / "runs"),
            "--budget", str(BUDGET),
            "--cost", "0.05",
            "--seed", "5",
            "--quiet",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    (run_dir,) = (tmp_path / "runs").iterdir()
    records = final_records(run_dir)
    by_method = Counter((r["method"], r["site"], r["success"]) for r in records)
    assert by_method[("simulate", "local-cpu", True)] == BUDGET, by_method
    assert by_method[("train", "local-gpu", True)] >= 1, by_method
    assert all(r["success"] for r in records), by_method
    gpu_records = [r for r in records if r["site"] == "local-gpu"]
    assert all(r["remote_id"] in compute_service.tasks for r in gpu_records)
    accepted = {e["task"]["task_id"] for e in read_journal(run_dir)
                if e["event"] == "accepted"}  # fmt: skip
    assert {r["task_id"] for r in gpu_records} <= accepted
    assert "local-gpu" in out and "Best value" in out
