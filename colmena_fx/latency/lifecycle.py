"""The client's lifecycle in a run: its start, each resume, and whether a clean
stop followed the last of them, as rows and in words.

A resumed client continues the same journal: it writes a `resumed` line (what it
found and did) instead of a second `run` line, and a clean `Federation.stop()`
writes `stopped`. A journal that ends without a `stopped` after its last start
or resume belongs to a client that crashed, was killed, or still runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Resume:
    """A client that took the run over after the previous one ended (its
    `resumed` line; each count as that line gives it)."""

    #: 1 for the first resume.
    number: int
    #: Seconds since the run started.
    at_s: float
    client_host: str
    pid: int | None
    #: Tasks the thinker had taken before this resume.
    delivered_before: int
    #: Results completed before it, handed to the thinker again.
    redelivered: int
    #: Site -> tasks already there that it followed again without resending.
    reattached: dict[str, int]
    #: Tasks it sent again.
    resent: int
    #: Tasks not finished when it resumed.
    unfinished: int


@dataclass(frozen=True)
class Stop:
    """A clean `Federation.stop()`."""

    at_s: float
    #: Tasks it delivered as failures because they had not finished.
    unfinished: int | None


@dataclass(frozen=True)
class Lifecycle:
    """The starts, resumes and stops of the client, from the journal."""

    #: When the run started (its `run` line), client clock, ns since the epoch;
    #: None for journals written before runs had a `run` line.
    start_ns: int | None
    resumes: list[Resume]
    #: The clean stop after the last start or resume; None when none followed.
    stop: Stop | None
    #: The journal's last line, seconds since the start.
    end_s: float
    #: Whether the journal has any `resumed` or `stopped` line: without one it
    #: may predate them, and no clean stop proves no crash.
    recorded: bool

    @property
    def clean(self) -> bool:
        return self.stop is not None


def count_of(value: object) -> int | None:
    """`value` if it is an int (a bool is not), else None: lines may be old."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def resume_row(index: int, at_s: float, line: dict[str, Any]) -> Resume:
    """A `resumed` line as a row; a field it lacks counts as 0 (or unknown)."""
    given = line.get("reattached")
    reattached = {
        str(site): n
        for site, n in (given.items() if isinstance(given, dict) else ())
        if isinstance(n, int) and not isinstance(n, bool)
    }
    return Resume(
        number=count_of(line.get("resumes")) or index,
        at_s=at_s,
        client_host=str(line.get("client_host") or "?"),
        pid=count_of(line.get("pid")),
        delivered_before=count_of(line.get("delivered_before")) or 0,
        redelivered=count_of(line.get("redelivered")) or 0,
        reattached=reattached,
        resent=count_of(line.get("resent")) or 0,
        unfinished=count_of(line.get("unfinished")) or 0,
    )


# -- in words, for `summary` and the report ------------------------------------------


def resume_sentence(resume: Resume) -> str:
    """What one resume did, in one sentence."""
    pid = f", pid {resume.pid}" if resume.pid is not None else ""
    reattached = sum(resume.reattached.values())
    where = ", ".join(f"{site} {n}" for site, n in resume.reattached.items())
    return (
        f"Resume {resume.number} at {resume.at_s:.2f} s (client host "
        f"{resume.client_host}{pid}): {_tasks(resume.unfinished)} unfinished, "
        f"{reattached} reattached{f' ({where})' if where else ''}, "
        f"{resume.resent} resent, {resume.redelivered} redelivered; "
        f"{resume.delivered_before} delivered before it."
    )


def ending_sentence(life: Lifecycle) -> str:
    """Whether the client stopped cleanly after its last start or resume."""
    if life.stop is not None:
        left = life.stop.unfinished
        after = "its last resume" if life.resumes else "its start"
        return (
            f"The client stopped cleanly at {life.stop.at_s:.2f} s, after {after}"
            + (f"; {_tasks(left)} unfinished at the stop." if left else ".")
        )
    sentence = (
        "The client stopped without a clean stop: crashed, killed, or still "
        f"running (the journal's last line is at {life.end_s:.2f} s)."
    )
    if not life.recorded:
        sentence += " Journals older than clean stops never show one."
    return sentence


def _tasks(count: int) -> str:
    return f"{count} task{'' if count == 1 else 's'}"


def lifecycle_sentences(life: Lifecycle) -> list[str]:
    """How often the run was resumed, what each resume did, and how it ended."""
    out = []
    if life.resumes:
        times = "once" if len(life.resumes) == 1 else f"{len(life.resumes)} times"
        out.append(f"The run was resumed {times}.")
        out.extend(resume_sentence(resume) for resume in life.resumes)
    out.append(ending_sentence(life))
    return out
