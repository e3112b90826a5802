"""The model hand-off example end to end: a 32 MiB model trained on the GPU site
reaches the screening tasks on the CPU site by reference, never the thinker."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from colmena_fx.journal import final_records
from colmena_fx.latency.recorder import LatencyRecorder
from examples.model_handoff.run import FEDERATION
from examples.model_handoff.run import main

REPO = Path(__file__).resolve().parents[2]


def test_the_model_goes_from_training_to_screening_by_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)  # the sites' workers import the functions from here
    federation = yaml.safe_load(FEDERATION.read_text())
    federation["sites"] = [str((FEDERATION.parent / s).resolve())
                           for s in federation["sites"]]  # fmt: skip
    federation["data"]["stores"]["shared"]["path"] = str(tmp_path / "store")
    federation["run_dir"] = str(tmp_path / "runs")
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(federation))

    assert main(["--federation", str(path), "--rounds", "1", "--batches", "3"]) == 0

    printed = capsys.readouterr().out
    assert "values still held in the data stores after the campaign: {'shared': 0}" in (
        " ".join(printed.split())
    )
    assert list((tmp_path / "store").iterdir()) == []
    (run_dir,) = (tmp_path / "runs").iterdir()
    records = final_records(run_dir)
    assert all(record["success"] for record in records)
    train = [r for r in records if r["method"] == "train"]
    screen = [r for r in records if r["method"] == "screen"]
    assert len(train) == 1 and len(screen) == 3
    assert train[0]["sizes"]["reply"] < 100_000  # the model did not come inline
    assert all(r["sizes"]["request"] < 1_000_000 for r in screen)
    hops = {(row.method, row.hop): row for row in
            LatencyRecorder.from_run(run_dir).summary(by=("method",))}  # fmt: skip
    assert ("train", "result_put") in hops
    assert ("train", "result_data") not in hops  # the thinker never read the model
    assert hops["screen", "input_data"].count == 3
