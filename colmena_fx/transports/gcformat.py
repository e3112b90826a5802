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
from colmena_fx.worker import WorkerReply
from colmena_fx.worker import execute

_SERDE = ComputeSerializer()
_DATA = DillDataBase64()
_NO_KWARGS = _SERDE.serialize({})
#: Exceptions the engine reports when the process running a task died.
_LOST_WORKER_MARKERS = ("WorkerLost", "ManagerLost", "BrokenProcessPool")
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
            shim = functools.partial(execute, function)
            shim.__name__ = name  # type: ignore[attr-defined]  # execute_task logs it
            buffer = _SERDE.serialize(shim)
        except Exception as exc:
            raise SerializationError(
                f"cannot serialize function {name!r}: {exc}. Define it at the top "
                f"level of an importable module."
            ) from exc
        self._buffers[function] = buffer
        return buffer


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
        # The shim never ran to completion: the engine or worker failed the task.
        text = message.data or ""
        lost = any(marker in text for marker in _LOST_WORKER_MARKERS)
        details = message.error_details
        last = _last_line(text)
        match = _EXCEPTION_LINE.match(last)
        result.fail(
            Failure(
                kind=FailureKind.WORKER_LOST if lost else FailureKind.INFRASTRUCTURE,
                exception_type=match["type"]
                if match
                else (details.code if details else "RemoteError"),
                message=match["message"]
                if match
                else last or (details.user_message if details else ""),
                traceback=text,
                host=result.site or "",
            )
        )
        return
    reply: WorkerReply = _read_data_buffer(message.data)
    for name, time_ns, host in reply.events:
        result.stamp(name, host=host, time_ns=time_ns)
    result.sizes.reply = len(packed)
    if reply.success:
        result.sizes.value = len(reply.value)
        result.value = serialize.loads(reply.value)
        result.success = True
    else:
        result.fail(Failure.model_validate(reply.failure))


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip("+-")]
    return lines[-1].strip() if lines else ""
