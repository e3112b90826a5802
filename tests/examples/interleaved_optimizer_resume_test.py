"""The demo campaign killed with kill -9 half-way, then resumed with `--resume`.

The killed campaign is a real process (`python -m examples.interleaved_optimizer.run`)
on the real demo federation; the resumed one runs through `main` here. It must end
with exactly the budget of simulations, none redone that had finished before.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from colmena_fx.journal import read_journal
from colmena_fx.replay import read_run
from examples.interleaved_optimizer.functions import ackley
from examples.interleaved_optimizer.report import HISTORY_NAME
from examples.interleaved_optimizer.run import main

REPO = Path(__file__).resolve().parents[2]
BUDGET = 20
FEDERATION = REPO / "endpoints" / "federation.yaml"


def _kill_half_way(run_parent: Path) -> Path:
    """Run the campaign until half its simulations are back, then kill -9 it."""
    command = [
        sys.executable, "-m", "examples.interleaved_optimizer.run",
        "--federation", str(FEDERATION), "--run-dir", str(run_parent),
        "--budget", str(BUDGET), "--cost", "0.1", "--quiet",
    ]  # fmt: skip
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    client = subprocess.Popen(
        command, cwd=REPO, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert client.stdout is not None
    output = []
    for line in client.stdout:
        output.append(line)
        if f"simulations {BUDGET // 2}/{BUDGET}" in line:
            break
    client.send_signal(signal.SIGKILL)
    client.wait()
    client.stdout.close()
    runs = list(run_parent.iterdir())
    assert len(runs) == 1 and client.returncode == -signal.SIGKILL, "".join(output)
    return runs[0]


def test_a_killed_campaign_resumes_to_its_budget_redoing_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _kill_half_way(tmp_path)
    # Kept before each reached the thinker: all that it had counted, and more.
    finished = read_run(run_dir).results.values()
    done_before = {r.task_id for r in finished if r.method == "simulate"}
    assert len(done_before) >= BUDGET // 2

    monkeypatch.chdir(REPO)
    code = main(["--federation", str(FEDERATION), "--resume", str(run_dir),
                 "--quiet"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Resumed:" in out

    history = json.loads((run_dir / HISTORY_NAME).read_text())
    assert history["simulations"]["finished"] == BUDGET
    assert len(history["values"]) == BUDGET
    for x, y in zip(history["points"], history["values"], strict=True):
        assert y == pytest.approx(ackley(x))

    events = list(read_journal(run_dir))
    resumed_at = next(i for i, e in enumerate(events) if e["event"] == "resumed")
    sims = {
        e["task"]["task_id"] for e in events
        if e["event"] == "submitted" and e["task"]["method"] == "simulate"
    }  # fmt: skip
    assert len(sims) == BUDGET  # the same number of simulations, no more
    sent_after = Counter(
        e["task"]["task_id"] for e in events[resumed_at:] if e["event"] == "submitted"
    )
    assert not done_before & set(sent_after)  # none that had finished was redone
    completed = Counter(e["task"]["task_id"] for e in events
                        if e["event"] == "completed")  # fmt: skip
    assert all(completed[task] == 1 for task in sims)  # each finished once
    assert events[-1]["event"] == "stopped"
