"""Colmena's reallocation demo, ported by its imports, runs end to end: its
result files have Colmena's schema, and the slots it borrows come back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from colmena_fx.colmena.models import Result
from colmena_fx.journal import final_records
from examples.colmena_port.run import FEDERATION
from examples.colmena_port.run import main
from testing.colmena import COLMENA_FIELDS

REPO = Path(__file__).resolve().parents[2]


def test_the_ported_program_runs_and_writes_colmena_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)  # the sites' workers import the functions from here
    federation = yaml.safe_load(FEDERATION.read_text())
    federation["sites"] = [str((FEDERATION.parent / s).resolve())
                           for s in federation["sites"]]  # fmt: skip
    federation["run_dir"] = str(tmp_path / "runs")
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(federation))

    out = main(["--federation", str(path), "--out", str(tmp_path / "out"),
                "-n", "16", "--retrain-wait", "6", "--runtime", "0.02",
                "--opt-delay", "0.1"])  # fmt: skip

    results = [json.loads(line) for line in (out / "results.json").open()]
    assert len(results) >= 16
    assert set(results[0]) == COLMENA_FIELDS - {"inputs"}
    assert all(r["success"] and r["method"] == "ackley" for r in results)
    for record in results:  # the steps of each task, in order, on one clock
        at = record["timestamp"]
        assert (at["created"] <= at["start_task_submission"] <= at["compute_started"]
                <= at["compute_ended"] <= at["task_received"]
                <= at["result_received"])  # fmt: skip
        assert 0 < record["time"]["running"] < 10
        assert record["worker_info"]["site"] == "local-cpu"
    retrains = (out / "retrain.json").read_text().splitlines()
    assert retrains, "the event responder never re-ranked the queue"
    retrain = Result.model_validate_json(retrains[0])
    assert retrain.method == "reprioritize_queue" and retrain.success
    assert retrain.worker_info is not None
    assert retrain.worker_info.model_extra == {"site": "local-gpu"}
    # Every task the thinker sent was delivered to it, the last ones included.
    (run_dir,) = (tmp_path / "runs").iterdir()
    records = final_records(run_dir)
    assert len(records) == len(results) + len(retrains)
    assert "simulations, best" in capsys.readouterr().out
