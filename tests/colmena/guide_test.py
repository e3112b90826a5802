"""The migration guide's port is true: its diff applies to Colmena's program, and
the result runs on a local federation, to the same answer."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "from-colmena.md"
ORIGINAL = Path(__file__).with_name("data") / "simple-optimization.py.txt"


def _block(language: str) -> str:
    found = re.search(rf"```{language}\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    assert found, f"the guide has no {language} block"
    return found.group(1)


def apply_diff(original: str, diff: str) -> str:
    """`original` with the unified diff's hunks applied, checking their context."""
    lines = original.splitlines()
    out: list[str] = []
    at = 0
    for hunk in re.split(r"^@@ .*@@$\n", diff, flags=re.MULTILINE)[1:]:
        body = [line for line in hunk.splitlines() if line[:1] in {" ", "-", "+"}]
        old = [line[1:] for line in body if line[0] in " -"]
        start = next(i for i in range(at, len(lines)) if lines[i : i + len(old)] == old)
        out += lines[at:start] + [line[1:] for line in body if line[0] in " +"]
        at = start + len(old)
    return "\n".join(out + lines[at:]) + "\n"


def test_the_guides_port_of_colmenas_example_runs(tmp_path: Path) -> None:
    ported = apply_diff(ORIGINAL.read_text(), _block("diff"))
    assert "colmena." not in ported.replace("colmena_fx.colmena.", "")
    assert "parsl" not in ported
    (tmp_path / "simple-optimization.py").write_text(ported)
    federation = yaml.safe_load(_block("yaml"))
    federation["sites"] = [str(REPO / site) for site in federation["sites"]]
    (tmp_path / "federation.yaml").write_text(yaml.safe_dump(federation))

    done = subprocess.run(
        [sys.executable, "simple-optimization.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO),
             "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    answer = re.search(r"Answer: f\((.+)\) = (.+)", done.stdout)
    assert answer, done.stdout
    # The best value is the function's at the argument kept with its result.
    x, best = float(answer.group(1)), float(answer.group(2))
    assert best == pytest.approx(-(x**2) + 4, abs=0.01 * abs(x) + 0.01)  # rounding
    assert best > -96  # better than the first guess, f(-10)
