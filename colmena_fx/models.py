"""The record of one task: what was asked, where it ran, what came back, and when.

A `Result` travels with its task from `Federation.submit` to the thinker. Every hop
stamps a named `Event` on its `Timeline`, in the clock of the host that stamped it,
so that latency can later be split per hop and corrected per clock.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from enum import StrEnum
from typing import Any
from typing import NamedTuple

from pydantic import ConfigDict
from pydantic import Field
from pydantic import PrivateAttr
from pydantic import model_validator

from colmena_fx import serialize
from colmena_fx.exceptions import UsageError
from colmena_fx.schema import StrictModel

#: The name of this host, stamped on every event as its clock domain: its hostname,
#: or `COLMENA_FX_HOST` where hostnames say nothing about clocks (containers that
#: all call themselves `localhost`, nodes that share one PTP clock).
HOST = os.environ.get("COLMENA_FX_HOST") or socket.gethostname()


class Stamp(StrEnum):
    """Event names, in the order a task normally meets them."""

    # client: the thinker's process
    CREATED = "created"
    SERIALIZED = "serialized"
    SENT = "sent"
    # endpoint: the process that owns the engine
    ENDPOINT_RECEIVED = "endpoint_received"
    # worker: the process that runs the user function; the engine's own transitions
    # (Globus Compute `task_statuses`) wrap the shim's stamps
    EXECUTION_STARTED = "execution_started"
    WORKER_STARTED = "worker_started"
    COMPUTE_STARTED = "compute_started"
    COMPUTE_ENDED = "compute_ended"
    WORKER_ENDED = "worker_ended"
    EXECUTION_ENDED = "execution_ended"
    # endpoint, on the way back
    ENDPOINT_SENT = "endpoint_sent"
    # client, on the way back
    RECEIVED = "received"
    DESERIALIZED = "deserialized"
    DELIVERED = "delivered"
    # thinker: its result processor returned
    PROCESSED = "processed"
    # large values by reference, each step on the host that takes it: the client
    # stores arguments, the worker fetches them, stores the result, and the client
    # fetches that when the thinker first uses it
    INPUT_PUT_STARTED = "input_put_started"
    INPUT_PUT_ENDED = "input_put_ended"
    INPUT_DATA_STARTED = "input_data_started"
    INPUT_DATA_ENDED = "input_data_ended"
    RESULT_PUT_STARTED = "result_put_started"
    RESULT_PUT_ENDED = "result_put_ended"
    RESULT_DATA_STARTED = "result_data_started"
    RESULT_DATA_ENDED = "result_data_ended"


class Event(NamedTuple):
    """One stamp: what happened, when (ns since the epoch), by whose clock.

    A tuple, not a model: a task gets a dozen of these on its hot path, and a tuple
    costs a tenth of a model to build. It reads back as `[name, time_ns, host]`.
    """

    name: str
    time_ns: int
    host: str


class Timeline(StrictModel):
    """The events of one task in the order they were recorded."""

    events: list[Event] = Field(default_factory=list)

    def stamp(self, name: str, host: str = HOST, time_ns: int | None = None) -> Event:
        """Record `name` now (or at `time_ns`) in the clock of `host`."""
        event = Event(str(name), time.time_ns() if time_ns is None else time_ns, host)
        self.events.append(event)
        return event

    def get(self, name: str) -> Event | None:
        """The last event called `name`, or None if it never happened."""
        for event in reversed(self.events):
            if event.name == name:
                return event
        return None


class ResourceRequirements(StrictModel):
    """What a task needs from its site; becomes Globus Compute's resource_specification.

    Fields left unset are not sent, so that engines which accept no specification
    (thread and process pools) still run tasks with the defaults.
    """

    num_nodes: int | None = Field(default=None, ge=1)
    ranks_per_node: int | None = Field(default=None, ge=1)
    num_ranks: int | None = Field(default=None, ge=1)
    priority: int | None = None
    #: Passed through as-is for engine-specific keys.
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _colmena_names(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for colmena, ours in _COLMENA_RESOURCES.items():
                if colmena in data:
                    raise ValueError(
                        f"{colmena!r} is Colmena's name: write {ours} (or use "
                        f"colmena_fx.colmena.models.ResourceRequirements, which "
                        f"takes Colmena's names)"
                    )
        return data

    def to_resource_specification(self) -> dict[str, Any]:
        spec = self.model_dump(exclude={"extra"}, exclude_none=True)
        spec.update(self.extra)
        return spec


_COLMENA_RESOURCES = {
    "node_count": "'num_nodes'",
    "cpu_processes": "'ranks_per_node'",
    "cpu_threads": "the threads in the site's 'local.env' (OMP_NUM_THREADS)",
}


class FailureKind(StrEnum):
    """Who is at fault for a failed task: decides whether a retry can help."""

    USER = "user"  # the user function raised
    WORKER_LOST = "worker_lost"  # the process running it died
    ENDPOINT_LOST = "endpoint_lost"  # the endpoint went away
    INFRASTRUCTURE = "infrastructure"  # the engine or transport failed the task
    TIMEOUT = "timeout"  # the task's deadline (`timeout_s`) passed before its result


class Failure(StrictModel):
    """Why a task failed, with the traceback as it was printed where it failed."""

    kind: FailureKind
    exception_type: str
    message: str
    traceback: str = ""
    host: str = ""

    def __str__(self) -> str:
        where = f" on {self.host}" if self.host else ""
        return f"{self.exception_type}{where}: {self.message}"


class Sizes(StrictModel):
    """Bytes of each message of the task, as sent on its link."""

    inputs: int = 0
    request: int = 0
    value: int = 0
    reply: int = 0


class Routing(StrictModel):
    """Why a task went to its site: the policy, and what it predicted there."""

    policy: str
    #: The candidate sites usable at that moment, in the method's order.
    usable: list[str] = Field(default_factory=list)
    #: `fastest`: the predicted seconds to the result at the chosen site.
    predicted_s: float | None = None
    reason: str = ""


class Yielded(NamedTuple):
    """One item a task's generator yielded, serialized (or a proxy of it)."""

    #: Its place among the items of its attempt, from 0.
    position: int
    #: When the generator yielded it, in the clock of `host` (the worker's).
    time_ns: int
    host: str
    data: bytes


class YieldTail(NamedTuple):
    """What one attempt of a generator yielded, as its worker's reply tells it.

    The reply and the items streamed live travel separately, so the reply says
    how many went live (under `token`, the attempt's own) for the client to
    deliver them all before the final result; `kept` are the items that travel
    in the reply itself (all of them on a globus site).
    """

    token: str
    streamed: int
    kept: list[Yielded]


def new_task_id() -> str:
    return str(uuid.uuid4())


class Result(StrictModel):
    """One task, from submission to delivery; the thinker receives it back."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    task_id: str = Field(default_factory=new_task_id)
    method: str
    topic: str = "default"
    site: str | None = None
    #: The task's id at its site's service (a Globus Compute task id), once known.
    remote_id: str | None = None
    #: The group its service filed it under (a Globus Compute task group), whose
    #: result queue a client that restarted watches again.
    remote_group: str | None = None
    #: The serialized request; cleared on delivery unless `keep_inputs`.
    inputs: bytes = b""
    #: Whether `args` and `kwargs` stay readable on the delivered result.
    keep_inputs: bool = False
    value: Any = None
    success: bool | None = None
    #: False on the intermediate results a generator method yields as it runs.
    complete: bool = True
    failure: Failure | None = None
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    task_info: dict[str, Any] = Field(default_factory=dict)
    retries: int = 0
    #: This task's own `max_retries` and `retry_on`; None: its method's.
    max_retries: int | None = None
    retry_on: list[FailureKind] | None = None
    #: An intermediate's position among the items its attempt yielded, from 0.
    index: int | None = None
    #: A generator's items still to be delivered before this result, from the
    #: worker's reply until the federation delivers them; never journaled.
    tail: YieldTail | None = Field(default=None, exclude=True)
    #: How the site of the last attempt was chosen.
    routing: Routing | None = None
    sizes: Sizes = Field(default_factory=Sizes)
    timeline: Timeline = Field(default_factory=Timeline)

    #: The arguments as submitted, while `keep_inputs` keeps them.
    _kept: tuple[tuple[Any, ...], dict[str, Any]] | None = PrivateAttr(default=None)

    def keep(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Hold the arguments for `args`/`kwargs` (the objects, not copies)."""
        self.keep_inputs = True
        self._kept = (tuple(args), dict(kwargs))

    def _inputs(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if self._kept is None and self.inputs:  # a resumed run's request
            args, kwargs, *_ = serialize.loads(self.inputs)
            self._kept = (tuple(args), dict(kwargs))
        if self._kept is None:
            raise UsageError(
                f"the inputs of task {self.task_id} were not kept: submit it with "
                f"keep_inputs=True, or set 'keep_inputs: true' on method "
                f"{self.method!r} in the federation file"
            )
        return self._kept

    @property
    def args(self) -> tuple[Any, ...]:
        """The positional arguments of the task (needs `keep_inputs`)."""
        return self._inputs()[0]

    @property
    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments of the task (needs `keep_inputs`)."""
        return self._inputs()[1]

    def stamp(self, name: str, host: str = HOST, time_ns: int | None = None) -> Event:
        return self.timeline.stamp(name, host=host, time_ns=time_ns)

    def fail(self, failure: Failure) -> None:
        self.success = False
        self.failure = failure
        self.value = None

    def journal_record(self) -> dict[str, Any]:
        """The record without its payloads, as the journal keeps it."""
        return self.model_dump(mode="json", exclude=_PAYLOADS)

    def journal_json(self) -> str:
        """`journal_record` encoded as JSON, in one step."""
        return self.model_dump_json(exclude=_PAYLOADS)


_PAYLOADS = {"inputs", "value"}
