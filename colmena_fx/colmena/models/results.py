"""Colmena's `Result` and `ResourceRequirements`, with Colmena's field names and
`json()` schema, so that a thinker's code and the analysis notebooks that read
its result files keep working.

A `Result` here is a view of a colmena-fx `Result`, made when the thinker takes
it (`convert.to_colmena`): times in seconds since the epoch on the client's
clock (remote stamps corrected), spans in seconds. The full record, with every
hop, stays reachable as `result.native`.
"""

from __future__ import annotations

import json
from enum import StrEnum
from math import nan
from typing import Any
from uuid import uuid4

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import PrivateAttr

from colmena_fx.models import ResourceRequirements as NativeResources
from colmena_fx.models import Result as NativeResult


class SerializationMethod(StrEnum):
    """Kept for Colmena's signatures: colmena-fx always pickles (then dill)."""

    JSON = "json"
    PICKLE = "pickle"


class FailureInformation(BaseModel):
    """Why a task failed: the exception as `repr` and its remote traceback."""

    exception: str
    traceback: str | None = None


class WorkerInformation(BaseModel):
    """Where the task ran: the worker's host, and the colmena-fx site."""

    model_config = ConfigDict(extra="allow")

    hostname: str | None = None


class ResourceRequirements(BaseModel):
    """Colmena's names for a task's resources (RADICAL-Pilot's conventions)."""

    node_count: int = Field(1, ge=1, description="Total number of nodes")
    cpu_processes: int = Field(1, ge=1, description="MPI ranks per node")
    cpu_threads: int = Field(1, ge=1, description="Threads per process")

    @property
    def total_ranks(self) -> int:
        return self.node_count * self.cpu_processes

    def to_native(self) -> NativeResources:
        """colmena-fx's resources; Colmena's defaults stay unset. Each site's
        engine is sent what it accepts (`transports.resourcespec`); the task's
        function sees them all, `cpu_threads` under `extra`."""
        return NativeResources(
            num_nodes=None if self.node_count == 1 else self.node_count,
            ranks_per_node=None if self.cpu_processes == 1 else self.cpu_processes,
            num_ranks=None if self.total_ranks == 1 else self.total_ranks,
            extra={} if self.cpu_threads == 1 else {"cpu_threads": self.cpu_threads},
        )


class Timestamps(BaseModel):
    """When each step happened, in seconds since the epoch (client's clock)."""

    created: float = nan
    input_received: float = nan
    compute_started: float = nan
    compute_ended: float = nan
    result_sent: float = nan
    result_received: float = nan
    start_task_submission: float = nan
    task_received: float = nan


class TimeSpans(BaseModel):
    """How long steps took, in seconds; `additional` holds colmena-fx's spans."""

    running: float = nan
    serialize_inputs: float = nan
    deserialize_inputs: float = nan
    serialize_results: float = nan
    deserialize_results: float = nan
    async_resolve_proxies: float = nan
    proxy: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    additional: dict[str, float] = Field(default_factory=dict)


class Result(BaseModel):
    """One task's inputs, value and timings, as Colmena's thinker sees them."""

    task_id: str = Field(default_factory=lambda: str(uuid4()))
    inputs: tuple[tuple[Any, ...], dict[str, Any]] | str = ((), {})
    value: Any = None
    method: str | None = None
    success: bool | None = None
    complete: bool | None = None
    task_info: dict[str, Any] | None = Field(default_factory=dict)
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    failure_info: FailureInformation | None = None
    worker_info: WorkerInformation | None = None
    message_sizes: dict[str, int] = Field(default_factory=dict)
    timestamp: Timestamps = Field(default_factory=Timestamps)
    time: TimeSpans = Field(default_factory=TimeSpans)
    serialization_method: SerializationMethod = SerializationMethod.PICKLE
    keep_inputs: bool = True
    proxystore_name: str | None = None
    proxystore_config: dict[str, Any] | None = None
    proxystore_threshold: int | None = None
    topic: str | None = None
    max_retries: int = 0
    retries: int = 0

    _native: NativeResult | None = PrivateAttr(default=None)

    def __init__(
        self,
        inputs: tuple[tuple[Any, ...], dict[str, Any]] | str = ((), {}),
        **fields: Any,
    ) -> None:
        super().__init__(inputs=inputs, **fields)

    @classmethod
    def from_args_and_kwargs(
        cls,
        fn_args: tuple[Any, ...] | list[Any],
        fn_kwargs: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Result:
        return cls(inputs=(tuple(fn_args), fn_kwargs or {}), **fields)

    @property
    def args(self) -> tuple[Any, ...]:
        return tuple(self.inputs[0])

    @property
    def kwargs(self) -> dict[str, Any]:
        kwargs = self.inputs[1]
        assert isinstance(kwargs, dict)
        return kwargs

    @property
    def native(self) -> NativeResult | None:
        """The colmena-fx record this view was made from (every hop's stamps)."""
        return self._native

    def json(self, **options: Any) -> str:
        """Colmena's JSON of the result; `inputs` and `value` as JSON themselves.

        Takes `model_dump`'s options (`exclude={'inputs', 'value'}` as Colmena's
        demos write their result files). Arrays become lists; any other value
        JSON cannot hold raises `TypeError`, as in Colmena.
        """
        exclude = options.pop("exclude", None) or set()
        if isinstance(exclude, dict):  # nested excludes go on to `model_dump`
            dropped = {key for key, drop in exclude.items() if drop is True}
            exclude = {**exclude, "inputs": True, "value": True}
        else:
            dropped = set(exclude)
            exclude = {*exclude, "inputs", "value"}
        data = self.model_dump(exclude=exclude, **options)
        for name in ("inputs", "value"):
            if name not in dropped:
                data[name] = getattr(self, name)
        return json.dumps(data, default=_jsonable)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    raise TypeError(
        f"a {type(value).__name__} cannot be written as JSON: exclude it "
        f"(json(exclude={{'inputs', 'value'}})) or convert it first"
    )
