"""Headless Chromium, to check that a page renders as a person would see it.

Debian's `chromium` runs with a private profile directory, no sandbox (tests may
run as root) and no GPU. Chromium starts helper processes; each run gets its own
session so that a hung one is killed whole.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

CHROMIUM = "chromium"


class BrowserUnavailable(RuntimeError):
    """Chromium is not installed or did not render the page."""


def installed() -> bool:
    return shutil.which(CHROMIUM) is not None


def _run(args: list[str], profile: Path, timeout_s: float) -> str:
    """Chromium's stdout for `args`, headless; its whole session killed after."""
    if not installed():
        raise BrowserUnavailable(
            "chromium is not installed (Debian: apt-get install chromium; "
            "`make test` does this when run as root)"
        )
    profile.mkdir(parents=True, exist_ok=True)
    command = [
        CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
        "--hide-scrollbars", "--no-first-run", f"--user-data-dir={profile}", *args,
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise BrowserUnavailable(f"chromium hung for {timeout_s} s: {command}") from exc
    finally:
        # helpers outliving the browser, or all of them after a hang
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    if process.returncode != 0:
        raise BrowserUnavailable(
            f"chromium exited {process.returncode}:\n{err[-2000:]}"
        )
    return out


def screenshot(
    page: Path,
    out: Path,
    profile: Path,
    size: tuple[int, int] = (1200, 4000),
    timeout_s: float = 90.0,
) -> Path:
    """A PNG of `page` in a window of `size` pixels."""
    _run(
        [f"--screenshot={out}", f"--window-size={size[0]},{size[1]}",
         page.resolve().as_uri()],
        profile, timeout_s,
    )  # fmt: skip
    if not out.is_file():
        raise BrowserUnavailable(f"chromium wrote no screenshot of {page}")
    return out


def dump_dom(page: Path, profile: Path, timeout_s: float = 90.0) -> str:
    """The page's DOM as serialized after it loaded (scripts run)."""
    return _run(["--dump-dom", page.resolve().as_uri()], profile, timeout_s)
