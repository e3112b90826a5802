"""A colmena-fx `Result` seen as Colmena's: field by field (docs/from-colmena.md).

Remote stamps (a worker's compute start and end) are put on the client's clock
with the federation's current estimate of that clock's offset, so that Colmena's
`timestamp.*` can be subtracted from one another as Colmena's analysis does.
"""

from __future__ import annotations

from collections.abc import Callable
from math import nan
from typing import Any

import numpy as np

from colmena_fx.colmena.models.results import FailureInformation
from colmena_fx.colmena.models.results import ResourceRequirements
from colmena_fx.colmena.models.results import Result
from colmena_fx.colmena.models.results import TimeSpans
from colmena_fx.colmena.models.results import Timestamps
from colmena_fx.colmena.models.results import WorkerInformation
from colmena_fx.latency.recorder import LatencyRecorder
from colmena_fx.models import Result as NativeResult
from colmena_fx.models import Stamp

#: Seconds since the epoch of a stamp, on the client's clock; nan if missing.
Clock = Callable[[str], float]


def _client_clock(native: NativeResult, latency: LatencyRecorder | None) -> Clock:
    events = {event.name: event for event in native.timeline.events}
    sent = events.get(Stamp.SENT)

    def seconds(name: str) -> float:
        event = events.get(name)
        if event is None:
            return nan
        time_ns = event.time_ns
        if (
            latency is not None
            and native.site is not None
            and sent is not None
            and event.host
            and event.host != sent.host
        ):
            correction = latency.clocks.correct(
                native.site, event.host,
                np.array([time_ns], dtype=np.int64),
                np.array([sent.time_ns], dtype=np.int64),
            )  # fmt: skip
            if correction is not None:
                time_ns -= int(correction.offset_ns[0])
        return time_ns / 1e9

    return seconds


def _span(clock: Clock, start: str, end: str) -> float:
    return clock(end) - clock(start)


def to_colmena(
    native: NativeResult,
    resources: ResourceRequirements | None = None,
    latency: LatencyRecorder | None = None,
) -> Result:
    """Colmena's view of `native`; `resources` as the task was sent, if known."""
    at = _client_clock(native, latency)
    failure = native.failure
    compute = native.timeline.get(Stamp.COMPUTE_STARTED)
    worker: dict[str, Any] = {"hostname": compute.host if compute else None}
    if native.site is not None:
        worker["site"] = native.site
    result = Result(
        inputs=(native.args, native.kwargs) if native.keep_inputs else ((), {}),
        task_id=native.task_id,
        value=native.value,
        method=native.method,
        success=native.success,
        complete=native.complete,
        task_info=native.task_info,
        resources=resources or _resources(native),
        failure_info=None
        if failure is None
        else FailureInformation(
            exception=f"{failure.exception_type}({failure.message!r})",
            traceback=failure.traceback or None,
        ),
        worker_info=WorkerInformation(**worker),
        message_sizes={"inputs": native.sizes.inputs, "value": native.sizes.value},
        timestamp=Timestamps(
            created=at(Stamp.CREATED),
            input_received=at(Stamp.SERIALIZED),
            start_task_submission=at(Stamp.SENT),
            compute_started=at(Stamp.COMPUTE_STARTED),
            compute_ended=at(Stamp.COMPUTE_ENDED),
            task_received=at(Stamp.RECEIVED),
            result_sent=at(Stamp.DESERIALIZED),
            result_received=at(Stamp.DELIVERED),
        ),
        time=TimeSpans(
            running=_span(at, Stamp.COMPUTE_STARTED, Stamp.COMPUTE_ENDED),
            serialize_inputs=_span(at, Stamp.CREATED, Stamp.SERIALIZED),
            deserialize_inputs=_span(at, Stamp.WORKER_STARTED, Stamp.COMPUTE_STARTED),
            serialize_results=_span(at, Stamp.COMPUTE_ENDED, Stamp.WORKER_ENDED),
            deserialize_results=_span(at, Stamp.RECEIVED, Stamp.DESERIALIZED),
            additional={"round_trip": _span(at, Stamp.SENT, Stamp.RECEIVED)},
        ),
        keep_inputs=native.keep_inputs,
        topic=native.topic,
        max_retries=native.max_retries or 0,
        retries=native.retries,
    )
    result._native = native
    return result


def _resources(native: NativeResult) -> ResourceRequirements:
    spec = native.resources
    return ResourceRequirements(
        node_count=spec.num_nodes or 1, cpu_processes=spec.ranks_per_node or 1
    )
