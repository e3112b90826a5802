"""The interleaved optimizer end to end, as `make demo` runs it but smaller.

It starts the real demo federation (two embedded endpoints running the real
GlobusComputeEngine), runs the thinker through `main`, and then checks the run by
what it left behind: the journal (every task, where it ran, whether it succeeded)
and the optimizer's own history file (the values found).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest

from colmena_fx.journal import final_records
from examples.interleaved_optimizer.functions import ackley
from examples.interleaved_optimizer.report import HISTORY_NAME
from examples.interleaved_optimizer.run import main

REPO = Path(__file__).resolve().parents[2]
BUDGET = 16


@pytest.fixture
def campaign(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, Path, str]:
    """Exit code, run directory and printed output of one small campaign."""
    # The sites' workers import the task functions from the client's directory.
    monkeypatch.chdir(REPO)
    code = main(
        [
            "--federation", str(REPO / "endpoints" / "federation.yaml"),
            "--run-dir", str(tmp_path),
            "--budget", str(BUDGET),
            "--cost", "0.1",  # time for the surrogate to choose some points
            "--seed", "3",
            "--quiet",
        ]
    )  # fmt: skip
    (run_dir,) = tmp_path.iterdir()
    return code, run_dir, capsys.readouterr().out


def test_campaign_runs_every_simulation_and_retrains_on_the_gpu_site(
    campaign: tuple[int, Path, str],
) -> None:
    code, run_dir, out = campaign
    assert code == 0, out
    records = final_records(run_dir)
    by_method = Counter((r["method"], r["site"], r["success"]) for r in records)
    assert by_method[("simulate", "local-cpu", True)] == BUDGET, by_method
    assert by_method[("simulate", "local-cpu", False)] == 0, by_method
    assert by_method[("train", "local-gpu", True)] >= 1, by_method
    assert by_method[("infer", "local-gpu", True)] >= 1, by_method
    assert all(r["success"] for r in records), by_method

    history = json.loads((run_dir / HISTORY_NAME).read_text())
    values = history["values"]
    assert len(values) == BUDGET
    # The values are the objective's at the points recorded: nothing got mixed up.
    for x, y in zip(history["points"], values, strict=True):
        assert y == pytest.approx(ackley(x))
    best = history["best"]["value"]
    assert math.isfinite(best)
    assert best == min(values)
    assert best < values[0]
    assert history["simulations"]["chosen_by_surrogate"] >= 1
    assert len(history["retrainings"]) >= 1

    # What the user reads: progress lines, the latency table, the best, the run.
    assert f"simulations {BUDGET}/{BUDGET}" in out
    assert "Per-hop latency" in out and "local-gpu" in out
    assert f"Best value {best:.4f}" in out
    assert "Simulation workers busy" in out
    assert str(run_dir) in out


def test_bad_arguments_exit_with_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--budget", "0"])
    assert exit_info.value.code == 2
    assert "--budget must be at least 1" in capsys.readouterr().err


def test_missing_federation_file_is_reported_not_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--federation", str(tmp_path / "nowhere.yaml"), "--quiet"])
    assert code == 2
    assert "error: cannot read" in capsys.readouterr().err
