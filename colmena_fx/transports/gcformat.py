"""Tasks and results in Globus Compute's own wire format.

A task is a messagepack `Task` whose buffer holds the serialized function, args and
kwargs, exactly as the Globus Compute SDK builds it; a result is the `Result` that
the engine's `execute_task` packs. Keeping the real format means the embedded
endpoint runs the same engine code path as a deployed endpoint.
"""

from __future__ import annotations

import base64
import functools
import pickle
import re
import uuid
from collections.abc import Callable
from typing import Any

from globus_compute_common import messagepack
from globus_compute_common.messagepack.message_types import Result as GCResult
from globus_compute_common.messagepack.message_types import Task
from globus_compute_sdk.serialize import ComputeSerializer
from globus_compute_sdk.serialize import DillDataBase64

from colmena_fx import serialize
from colmena_fx.exceptions import SerializationError
from colmena_fx.models import Failure
from colmena_fx.models import FailureKind
from colmena_fx.models import Result
from colmena_fx.models import Stamp
from colmena_fx.worker import WorkerReply
from colmena_fx.worker import execute

_SERDE = ComputeSerializer()
_DATA = DillDataBase64()  # type: ignore[no-untyped-call]
_NO_KWARGS = _SERDE.serialize({})
#: Exceptions the engine reports when the process running a task died.
_LOST_WORKER_MARKERS = ("WorkerLost", "ManagerLost", "BrokenProcessPool")
#: Sizes in the endpoint's MaxResultSizeExceeded report, as str() or repr() writes it.
_RESULT_SIZES = re.compile(
    r"of (\d+)B exceeded current limit of (\d+)B|MaxResultSizeExceeded\((\d+), (\d+)\)"
)
#: The last line of a printed traceback: `package.module.ExceptionType: message`.
_EXCEPTION_LINE = re.compile(r"^(?:\w+\.)*(?P<type>[A-Z]\w*): (?P<message>.*)$")


class FunctionCache:
    """The serialized worker shim of each user function, built once per function."""

    def __init__(self) -> None:
        self._buffers: dict[Callable[..., Any], str] = {}

    def buffer(self, function: Callable[..., Any]) -> str:
        try:
            return self._buffers[function]
        except KeyError:
            pass
        name = getattr(function, "__name__", repr(function))
        try:
            buffer = _SERDE.serialize(make_shim(function))
        except Exception as exc:
            raise SerializationError(
                f"cannot serialize function {name!r}: {exc}. Define it at the top "
                f"level of an importable module."
            ) from exc
        self._buffers[function] = buffer
        return buffer


def make_shim(function: Callable[..., Any]) -> Callable[[bytes], WorkerReply]:
    """What the worker runs: `execute(function, request)`, named after `function`."""
    shim = functools.partial(execute, function)
    # The engine logs the name, and the SDK registers the function under it.
    shim.__name__ = getattr(function, "__name__", repr(function))  # type: ignore[attr-defined]
    return shim


def _data_buffer(value: Any) -> str:
    """What `DillDataBase64` writes for `value`, through the C pickler.

    dill's pickler is pure Python; for plain data (here a tuple of bytes) the
    standard pickle is a valid dill stream, so the engine reads it unchanged.
    """
    return _DATA.identifier + base64.encodebytes(pickle.dumps(value)).decode()


def _read_data_buffer(payload: str) -> Any:
    """Inverse of `_data_buffer`, and of `DillDataBase64` for plain data."""
    if not payload.startswith(_DATA.identifier):
        return _SERDE.deserialize(payload)
    body = payload[len(_DATA.identifier) :].encode()
    return pickle.loads(base64.decodebytes(body))


def pack_task(task_id: str, function_buffer: str, request: bytes) -> bytes:
    """A packed Globus Compute `Task` that runs the shim on `request`."""
    task_buffer = _SERDE.pack_buffers(
        [function_buffer, _data_buffer((request,)), _NO_KWARGS]
    )
    return messagepack.pack(Task(task_id=uuid.UUID(task_id), task_buffer=task_buffer))


def unpack_result(packed: bytes, result: Result) -> None:
    """Fill `result` from a packed Globus Compute `Result`: value or failure, stamps."""
    message = messagepack.unpack(packed)
    if not isinstance(message, GCResult):
        raise SerializationError(
            f"expected a Result message, got {type(message).__name__}"
        )
    if message.is_error:
        details = message.error_details
        fail_from_engine(
            message.data or "",
            result,
            code=details.code if details else "",
            user_message=details.user_message if details else "",
        )
    else:
        apply_reply(_read_data_buffer(message.data), result)
        result.sizes.reply = len(packed)
    stamp_transitions(message.task_statuses, result)


def apply_reply(reply: WorkerReply, result: Result) -> None:
    """Copy what the shim sent back onto `result`: its stamps, a generator's items
    (for the federation to deliver first), then value or failure."""
    for name, time_ns, host in reply.events:
        result.stamp(name, host=host, time_ns=time_ns)
    result.tail = reply.yields
    if reply.success:
        result.sizes.value = len(reply.value)
        result.value = serialize.loads(reply.value)
        result.success = True
    else:
        result.fail(Failure.model_validate(reply.failure))


_TRANSITIONS = {"execution-start": Stamp.EXECUTION_STARTED,
                "execution-end": Stamp.EXECUTION_ENDED}  # fmt: skip


def stamp_transitions(transitions: list[Any] | None, result: Result) -> None:
    """Stamp the engine's task transitions, in the clock of the worker that ran it.

    The engine stamps them around the shim on the same worker, so they take the
    worker's host; for a task that never reached the shim that host is unknown
    (""), and clock correction leaves those stamps out.
    """
    worker = result.timeline.get(Stamp.WORKER_STARTED)
    host = worker.host if worker is not None else ""
    for transition in transitions or ():
        name = _TRANSITIONS.get(getattr(transition.state, "value", transition.state))
        if name is not None:
            result.stamp(name, host=host, time_ns=transition.timestamp)


def fail_from_engine(
    text: str, result: Result, code: str = "", user_message: str = ""
) -> None:
    """Fail `result` from an engine's error report: the shim never finished."""
    if "MaxResultSizeExceeded" in text:
        sizes = _RESULT_SIZES.search(text)
        numbers = [int(n) for n in sizes.groups() if n] if sizes else [0, 0]
        size, limit = numbers[0], numbers[1]
        result.fail(
            Failure(
                kind=FailureKind.USER,
                exception_type="PayloadTooLargeError",
                message=(
                    f"the result of {result.method!r} serializes to "
                    f"{size / 1e6:.1f} MB, over "
                    f"the endpoint's result limit of {limit / 2**20:.0f} MiB: "
                    f"declare a data store under 'data.stores' in the federation "
                    f"file so that large values go by reference"
                ),
                traceback=text,
                host=result.site or "",
            )
        )
        return
    lost = any(marker in text for marker in _LOST_WORKER_MARKERS)
    last = _last_line(text)
    match = _EXCEPTION_LINE.match(last)
    result.fail(
        Failure(
            kind=FailureKind.WORKER_LOST if lost else FailureKind.INFRASTRUCTURE,
            exception_type=match["type"] if match else (code or "RemoteError"),
            message=match["message"] if match else last or user_message,
            traceback=text,
            host=result.site or "",
        )
    )


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip("+-")]
    return lines[-1].strip() if lines else ""
