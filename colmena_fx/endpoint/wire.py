"""Typed messages and the connection file of the client-endpoint link.

Every message is ZeroMQ frames: a kind, a JSON header (a pydantic model) and opaque
payloads (Globus Compute's packed `Task`, or one packed `Result` per entry of a
result batch: results ready together travel together). The link runs over
CurveZMQ: the endpoint accepts only the client key written in the connection file,
so a peer without the per-run secret never gets a frame through, let alone one that
is deserialized.

A client link is a *session*: both of its sockets say HELLO with the session's id,
`rx` (results and heartbeats come to it) and `tx` (tasks go from it). The endpoint
serves one session at a time and keeps each result until the client acknowledges it
(ACK), so a client that restarts takes back, from the WELCOME on, what finished
while it was away.
"""

from __future__ import annotations

import os
import uuid
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from typing import Any
from typing import Literal
from typing import cast

import zmq
from pydantic import AfterValidator
from pydantic import Field

from colmena_fx.schema import StrictModel


class Kind(StrEnum):
    HELLO = "hello"  # client -> endpoint: this socket belongs to my session
    TASK = "task"  # client -> endpoint
    CANCEL = "cancel"  # client -> endpoint: drop this task, send no result
    ACK = "ack"  # client -> endpoint: these results are safe with me: forget them
    PING = "ping"  # client -> endpoint: I am alive (every heartbeat_s)
    BYE = "bye"  # client -> endpoint: I stop: detach me, drop my run's results
    WELCOME = "welcome"  # endpoint -> client: attached; the tasks held for your run
    REFUSED = "refused"  # endpoint -> client: another client is attached
    RESULT = "result"  # endpoint -> client
    HEARTBEAT = "heartbeat"  # endpoint -> client


#: What a client sends once its session is attached.
SESSION_KINDS = frozenset({Kind.TASK, Kind.CANCEL, Kind.ACK, Kind.PING, Kind.BYE})


def _canonical_uuid(value: str) -> str:
    # The engine turns task ids into UUIDs deep in its own threads, where a bad
    # one would be an exception nobody handles: refuse it here, at the door.
    try:
        canonical = str(uuid.UUID(value))
    except ValueError:
        raise ValueError(f"task_id must be a UUID, got {value[:60]!r}") from None
    if canonical != value:
        raise ValueError(f"task_id must be a lowercase UUID like {canonical!r}")
    return value


#: A task id as the engine needs it: a UUID in its canonical text form.
TaskId = Annotated[str, AfterValidator(_canonical_uuid)]


class TaskHeader(StrictModel):
    task_id: TaskId
    resource_specification: dict[str, Any] = Field(default_factory=dict)


class CancelHeader(StrictModel):
    task_id: TaskId


class ResultEntry(StrictModel):
    task_id: str
    #: When the endpoint received the task, in its clock.
    received_ns: int


class ResultHeader(StrictModel):
    """Results sent together, one payload frame each, in the order listed."""

    results: list[ResultEntry]
    sent_ns: int
    host: str


class HeartbeatHeader(StrictModel):
    host: str
    pid: int
    time_ns: int
    in_flight: int
    engine: str
    #: Tasks the engine can run at once, where it says (`engine_workers`).
    workers: int | None = None


class HelloHeader(StrictModel):
    client_host: str
    #: A random id per link of a transport: both its sockets say the same.
    session: str = Field(min_length=1, max_length=64)
    #: `rx` receives results and heartbeats; `tx` sends tasks.
    role: Literal["rx", "tx"]
    #: The client's run (its federation run directory): the results of a run's
    #: tasks go to sessions of that run only.
    run: str
    client_pid: int


class AckHeader(StrictModel):
    """Results the client has (its callbacks persisted them): the endpoint forgets."""

    task_ids: list[TaskId]


class PingHeader(StrictModel):
    time_ns: int


class ByeHeader(StrictModel):
    session: str


class WelcomeHeader(StrictModel):
    """The session is attached; what the endpoint holds for its run.

    The finished ones follow as RESULT messages (the handover), then come the
    running ones as they finish.
    """

    session: str
    run: str
    host: str
    pid: int
    #: Tasks the engine can run at once, as in heartbeats: known from the start.
    workers: int | None = None
    #: Received and not finished yet.
    running: list[str]
    #: Finished and not acknowledged: sent again right after this message.
    finished: list[str]


class RefusedHeader(StrictModel):
    """Why the endpoint will not serve this client, naming the one it serves."""

    reason: str
    #: The attached client, if any: its host, pid, run, and since when (epoch ns).
    host: str | None = None
    pid: int | None = None
    run: str | None = None
    since_ns: int | None = None


HEADERS: dict[Kind, type[StrictModel]] = {
    Kind.HELLO: HelloHeader,
    Kind.TASK: TaskHeader,
    Kind.CANCEL: CancelHeader,
    Kind.ACK: AckHeader,
    Kind.PING: PingHeader,
    Kind.BYE: ByeHeader,
    Kind.WELCOME: WelcomeHeader,
    Kind.REFUSED: RefusedHeader,
    Kind.RESULT: ResultHeader,
    Kind.HEARTBEAT: HeartbeatHeader,
}


class WireError(ValueError):
    """A message that is not one of ours: wrong frame count, kind or header."""


def readable(socket: zmq.Socket[Any]) -> bool:
    """Whether a message waits on `socket`, without a poll: cheap in a drain loop."""
    return bool(cast(int, socket.get(zmq.EVENTS)) & zmq.POLLIN)


def encode(kind: Kind, header: StrictModel, *payloads: bytes) -> list[bytes]:
    return [kind.value.encode(), header.model_dump_json().encode(), *payloads]


def decode(frames: list[bytes]) -> tuple[Kind, Any, list[bytes]]:
    """The kind, validated header and payloads of a message."""
    if len(frames) < 2:
        raise WireError(f"expected at least 2 frames, got {len(frames)}")
    raw_kind, raw_header, *payloads = frames
    try:
        kind = Kind(raw_kind.decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireError(f"unknown message kind {raw_kind[:20]!r}") from exc
    try:
        header = HEADERS[kind].model_validate_json(raw_header)
    except ValueError as exc:  # pydantic's ValidationError, too
        raise WireError(f"bad {kind} header: {exc}") from exc
    if isinstance(header, ResultHeader):
        expected = len(header.results)
    else:
        expected = int(kind is Kind.TASK)
    if len(payloads) != expected:
        raise WireError(
            f"a {kind} message needs {expected} payloads, not {len(payloads)}"
        )
    return kind, header, payloads


class ConnectionInfo(StrictModel):
    """How to reach one running endpoint, and the keys that prove who may.

    Written by the endpoint once it is ready to accept tasks, readable by its owner
    only: whoever can read it holds the client secret and may submit tasks.
    """

    site: str
    address: str
    pid: int
    server_public_key: str
    client_public_key: str
    client_secret_key: str

    def write(self, path: Path) -> None:
        """Write atomically with mode 0600, so a reader never sees half a file."""
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as stream:
            stream.write(self.model_dump_json(indent=2))
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path) -> ConnectionInfo:
        return cls.model_validate_json(Path(path).read_text())


def new_keypair() -> tuple[str, str]:
    """A CurveZMQ (public, secret) pair in Z85 text."""
    public, secret = zmq.curve_keypair()
    return public.decode(), secret.decode()


def error_file(connection_file: Path) -> Path:
    """Where an endpoint that cannot start leaves the reason, for its starter."""
    return connection_file.with_suffix(".error")
