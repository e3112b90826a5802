"""The function that runs on a worker, inside Globus Compute's `execute_task`.

The engine runs `partial(execute, user_function)` on the serialized request. The
shim stamps the worker's events, fetches arguments sent by reference, runs the user
function, stores a large result by reference, and turns any exception
into a `Failure` carrying the traceback as printed on the worker, so the client
never has to unpickle a remote exception class it may not have.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from colmena_fx import serialize
from colmena_fx.data.policy import DataPolicy
from colmena_fx.data.policy import argument_name
from colmena_fx.exceptions import DataStoreError
from colmena_fx.exceptions import PayloadTooLargeError
from colmena_fx.limits import RESULT_LIMIT_BYTES
from colmena_fx.models import HOST
from colmena_fx.models import Failure
from colmena_fx.models import FailureKind
from colmena_fx.models import Stamp
from colmena_fx.taskcontext import TaskContext
from colmena_fx.taskcontext import enter
from colmena_fx.taskcontext import leave
from colmena_fx.units import format_size


class TaskTimeoutError(Exception):
    """Raised inside a function that ran past its task's `timeout_s`."""


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
    """Run `function` on the (args, kwargs, policy) serialized in `request`."""
    events = [(Stamp.WORKER_STARTED.value, time.time_ns(), HOST)]
    reply = WorkerReply(success=False, events=events)
    name = getattr(function, "__name__", "the function")
    try:
        args, kwargs, policy, *rest = serialize.loads(request)
        context: TaskContext | None = rest[0] if rest else None
        args, kwargs = _fetch_inputs(args, kwargs, name, events)
    except Exception as exc:
        reply.failure = _failure(exc, FailureKind.INFRASTRUCTURE)
        events.append((Stamp.WORKER_ENDED.value, time.time_ns(), HOST))
        return reply

    events.append((Stamp.COMPUTE_STARTED.value, time.time_ns(), HOST))
    token = enter(context)
    try:
        with _time_limit(context.timeout_s if context else None, name):
            value = function(*args, **kwargs)
    except TaskTimeoutError as exc:
        events.append((Stamp.COMPUTE_ENDED.value, time.time_ns(), HOST))
        reply.failure = _failure(exc, FailureKind.TIMEOUT)
    except (
        BaseException
    ) as exc:  # a user's SystemExit must not kill the worker silently
        events.append((Stamp.COMPUTE_ENDED.value, time.time_ns(), HOST))
        reply.failure = _failure(exc)
    else:
        events.append((Stamp.COMPUTE_ENDED.value, time.time_ns(), HOST))
        try:
            data = serialize.dumps(value, what=f"the value returned by {name}")
            reply.value = _by_reference(data, policy, name, events)
            reply.success = True
        except Exception as exc:
            reply.failure = _failure(exc)
    finally:
        leave(token)
    events.append((Stamp.WORKER_ENDED.value, time.time_ns(), HOST))
    return reply


@contextmanager
def _time_limit(seconds: float | None, name: str) -> Iterator[None]:
    """Stop the function after `seconds`, so that its worker is free again.

    Only where a signal can reach it: a function on a process's main thread (the
    process pool and Parsl engines). On a thread pool the client still fails the
    task at its deadline, but the function runs on to its end (README).
    """
    if (
        not seconds
        or threading.current_thread() is not threading.main_thread()
        or not hasattr(signal, "setitimer")
    ):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise TaskTimeoutError(
            f"{name!r} was stopped on its worker after timeout_s={seconds:g} s"
        )

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _fetch_inputs(
    args: tuple[Any, ...], kwargs: dict[str, Any], name: str, events: list[Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Arguments with colmena-fx's proxies replaced by their values.

    Fetched before the function starts, so that their transfer is timed as the
    `input_data` hop rather than hidden in `compute`, and the function receives
    plain objects (C extensions and `isinstance` checks need them). Users' own
    proxies stay proxies.
    """
    if "proxystore.proxy" not in sys.modules:
        return args, kwargs  # unpickling the request would have imported it
    from colmena_fx.data.stores import own_proxies

    found = [*own_proxies(list(args)), *own_proxies(kwargs)]
    if not found:
        return args, kwargs
    events.append((Stamp.INPUT_DATA_STARTED.value, time.time_ns(), HOST))
    values: dict[str, Any] = {}
    for where, factory in found:
        try:
            values[where] = factory()
        except DataStoreError as exc:
            raise DataStoreError(
                f"{argument_name(where, name)}: {exc}", store=exc.store, key=exc.key
            ) from None
    events.append((Stamp.INPUT_DATA_ENDED.value, time.time_ns(), HOST))
    positional = [_swap(value, str(i), values) for i, value in enumerate(args)]
    keywords = {key: _swap(value, key, values) for key, value in kwargs.items()}
    return tuple(positional), keywords


def _swap(value: Any, where: str, values: dict[str, Any]) -> Any:
    """`value`, or its fetched target, one level into containers as well."""
    from proxystore.proxy import Proxy  # imported: the request held a proxy

    if where in values:
        return values[where]
    if isinstance(value, Proxy):  # a user's own: isinstance below would resolve it
        return value
    if isinstance(value, list | tuple):
        items = [values.get(f"{where}[{i!r}]", v) for i, v in enumerate(value)]
        return type(value)(items) if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {k: values.get(f"{where}[{k!r}]", v) for k, v in value.items()}
    return value


def _by_reference(
    data: bytes, policy: DataPolicy | None, name: str, events: list[Any]
) -> bytes:
    """`data`, or a proxy of it in the policy's store when it is large.

    Without a store, a value over the engine's result limit fails here, with the
    fix in the message, rather than in the engine with only the sizes.
    """
    if policy is None or policy.store is None or len(data) < policy.threshold:
        sent = serialize.encoded_size(len(data))
        limit = policy.result_limit if policy is not None else RESULT_LIMIT_BYTES
        if sent <= limit:
            return data
        fix = (
            f"lower the threshold ({format_size(policy.threshold)}, 'data.threshold' "
            f"or the method's 'data.threshold') below the limit"
            if policy is not None and policy.store is not None
            else "declare a data store under 'data.stores' in the federation file "
            "so that large values go by reference (README, 'Large data')"
        )
        raise PayloadTooLargeError(
            f"the value returned by {name!r} serializes to "
            f"{format_size(len(data))} ({format_size(sent)} as sent), over the "
            f"endpoint's result limit of {limit / 2**20:.0f} MiB: {fix}"
        )
    from proxystore.store import get_or_create_store

    from colmena_fx.data.stores import put_serialized

    events.append((Stamp.RESULT_PUT_STARTED.value, time.time_ns(), HOST))
    try:
        store = get_or_create_store(policy.store, register=True)
        proxy = put_serialized(store, data, policy.store_name)
    except Exception as exc:
        raise DataStoreError(
            f"cannot store the value returned by {name!r} "
            f"({format_size(len(data))}) in data store {policy.store_name!r}: "
            f"{type(exc).__name__}: {exc}",
            store=policy.store_name,
        ) from exc
    reference = serialize.dumps(proxy)
    events.append((Stamp.RESULT_PUT_ENDED.value, time.time_ns(), HOST))
    return reference
