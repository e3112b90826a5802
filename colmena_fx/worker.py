"""The function that runs on a worker, inside Globus Compute's `execute_task`.

The engine runs `partial(execute, user_function)` on the serialized request. The
shim stamps the worker's events, runs the user function, and turns any exception
into a `Failure` carrying the traceback as printed on the worker, so the client
never has to unpickle a remote exception class it may not have.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from colmena_fx import serialize
from colmena_fx.models import HOST
from colmena_fx.models import Failure
from colmena_fx.models import FailureKind
from colmena_fx.models import Stamp


@dataclass
class WorkerReply:
    """What the worker sends back: the serialized value or the failure, and stamps."""

    success: bool
    value: bytes = b""
    failure: dict[str, Any] | None = None
    #: (event name, time_ns, host) in the worker's clock.
    events: list[tuple[str, int, str]] = field(default_factory=list)


def _failure(
    exc: BaseException, kind: FailureKind = FailureKind.USER
) -> dict[str, Any]:
    return Failure(
        kind=kind,
        exception_type=type(exc).__name__,
        message=str(exc),
        traceback="".join(traceback.format_exception(exc)),
        host=HOST,
    ).model_dump()


def execute(function: Callable[..., Any], request: bytes) -> WorkerReply:
    """Run `function` on the (args, kwargs) serialized in `request`."""
    events = [(Stamp.WORKER_STARTED.value, time.time_ns(), HOST)]
    reply = WorkerReply(success=False, events=events)
    try:
        args, kwargs = serialize.loads(request)
    except Exception as exc:
        reply.failure = _failure(exc, FailureKind.INFRASTRUCTURE)
        events.append((Stamp.WORKER_ENDED.value, time.time_ns(), HOST))
        return reply

    events.append((Stamp.COMPUTE_STARTED.value, time.time_ns(), HOST))
    try:
        value = function(*args, **kwargs)
    except (
        BaseException
    ) as exc:  # a user's SystemExit must not kill the worker silently
        events.append((Stamp.COMPUTE_ENDED.value, time.time_ns(), HOST))
        reply.failure = _failure(exc)
    else:
        events.append((Stamp.COMPUTE_ENDED.value, time.time_ns(), HOST))
        name = getattr(function, "__name__", "the function")
        try:
            reply.value = serialize.dumps(value, what=f"the value returned by {name}")
            reply.success = True
        except Exception as exc:
            reply.failure = _failure(exc)
    events.append((Stamp.WORKER_ENDED.value, time.time_ns(), HOST))
    return reply
