"""What a run keeps on disk so that another client can resume it.

The journal says what happened to each task; it holds neither a task's arguments
nor its value. This store holds both, as framed records beside the journal:

- `requests.records`: each task's serialized request as `submit` packed it (its
  inputs, with a proxy in place of every argument that went by reference), written
  before `submit` sends it; and each remote id a site's service gave a task, as soon
  as it is known;
- `results.records`: each finished task's record and value, written before the
  result is queued for the thinker, and a mark when the thinker takes it.

Every record is flushed to the operating system before the call returns, so it
survives the client being killed; the journal's writer thread fsyncs both files
with the journal, at most `SYNC_S` apart, so they survive a power loss then.
"""

from __future__ import annotations

from pathlib import Path

from colmena_fx import serialize
from colmena_fx.models import Result
from colmena_fx.records import RecordFile

REQUESTS_NAME = "requests.records"
RESULTS_NAME = "results.records"


class TaskStore:
    """The requests and results of one run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.requests = RecordFile(Path(run_dir) / REQUESTS_NAME)
        self.results = RecordFile(Path(run_dir) / RESULTS_NAME)

    @property
    def files(self) -> list[RecordFile]:
        return [self.requests, self.results]

    def open(self) -> None:
        self.requests.open()
        try:
            self.results.open()
        except BaseException:
            self.requests.close()
            raise

    def close(self) -> None:
        for records in self.files:
            records.close()

    @property
    def error(self) -> Exception | None:
        return self.requests.error or self.results.error

    def request(
        self, result: Result, candidates: list[str], timeout_s: float | None
    ) -> None:
        """Keep the task's request, exactly as it will be sent (raises on failure)."""
        header = {
            "kind": "request",
            "task_id": result.task_id,
            "method": result.method,
            "topic": result.topic,
            "resources": result.resources.model_dump(mode="json"),
            "task_info": result.task_info,
            "timeout_s": timeout_s,
            "candidates": candidates,
            "keep_inputs": result.keep_inputs,
            "max_retries": result.max_retries,
            "retry_on": result.retry_on,
            # The client's stamps so far (`created`, the stores' puts, `serialized`).
            "events": [list(event) for event in result.timeline.events],
        }
        self.requests.append(header, result.inputs)

    def accepted(self, result: Result) -> None:
        """Keep the id the site's service gave the task: resuming looks it up."""
        self.requests.append(
            {"kind": "accepted", "task_id": result.task_id, "site": result.site,
             "remote_id": result.remote_id, "remote_group": result.remote_group,
             "retries": result.retries},
        )  # fmt: skip

    def result(self, result: Result) -> None:
        """Keep the finished task with its value, for redelivery after a crash."""
        value = b"" if result.value is None else serialize.dumps(result.value)
        # Encoded by pydantic in one step: a third of the cost of a dict's dump.
        header = b'{"kind":"result","record":' + result.journal_json().encode() + b"}"
        self.results.append(header, value)

    def taken(self, result: Result) -> None:
        """Mark the result as taken by the thinker: never delivered again."""
        self.results.append({"kind": "taken", "task_id": result.task_id})
