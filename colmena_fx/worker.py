"""The function that runs on a worker, inside Globus Compute's `execute_task`.

The engine runs `partial(execute, user_function)` on the serialized request. The
shim stamps the worker's events, fetches arguments sent by reference, runs the user
function, stores a large result by reference, and turns any exception
into a `Failure` carrying the traceback as printed on the worker, so the client
never has to unpickle a remote exception class it may not have.
"""

from __future__ import annotations

import inspect
import os
import pickle
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from collections.abc import Generator
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
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
from colmena_fx.models import Yielded
from colmena_fx.models import YieldTail
from colmena_fx.taskcontext import TaskContext
from colmena_fx.taskcontext import enter
from colmena_fx.taskcontext import leave
from colmena_fx.units import format_size

if TYPE_CHECKING:
    import zmq

#: Most milliseconds a worker waits to hand one item to the client's stream; then
#: it keeps the rest for its reply, so a client that went away never blocks it.
STREAM_SEND_TIMEOUT_MS = 5000
#: Milliseconds the items still queued may take to leave once the generator ended.
STREAM_LINGER_MS = 2000


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
    #: A generator's items: how many went live, and those kept in the reply.
    yields: YieldTail | None = None


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
            if inspect.isgenerator(value):
                value = _drain(value, context, policy, name, reply)
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
    data: bytes,
    policy: DataPolicy | None,
    name: str,
    events: list[Any],
    what: str | None = None,
) -> bytes:
    """`data`, or a proxy of it in the policy's store when it is large.

    Without a store, a value over the engine's result limit fails here, with the
    fix in the message, rather than in the engine with only the sizes.
    """
    what = what or f"the value returned by {name!r}"
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
            f"{what} serializes to "
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
            f"cannot store {what} "
            f"({format_size(len(data))}) in data store {policy.store_name!r}: "
            f"{type(exc).__name__}: {exc}",
            store=policy.store_name,
        ) from exc
    reference = serialize.dumps(proxy)
    events.append((Stamp.RESULT_PUT_ENDED.value, time.time_ns(), HOST))
    return reference


def _drain(
    generator: Generator[Any, Any, Any],
    context: TaskContext | None,
    policy: DataPolicy | None,
    name: str,
    reply: WorkerReply,
) -> Any:
    """Run `generator` to its end and return its return value.

    Each item goes to the thinker as it comes (`_Yields`); with the method's
    `stream: false`, the items become one list, the value, as in Colmena. The
    reply says what was yielded even when the generator raised, so that the items
    before the error still reach the thinker.
    """
    if context is not None and context.collect_yields:
        return list(generator)
    yields = _Yields(context, policy, name)
    try:
        while True:
            try:
                item = next(generator)
            except StopIteration as stop:
                return stop.value
            yields.add(item)
    finally:
        generator.close()  # its own `finally` runs here, not at garbage collection
        reply.yields = yields.close()


class _Yields:
    """Where a generator's items go: to the client's stream while it takes them,
    into the reply after that (and always where there is no stream).

    Items are stored by reference as results are. Kept items travel in one reply
    with the value, so their total must fit the engine's result limit.
    """

    def __init__(
        self, context: TaskContext | None, policy: DataPolicy | None, name: str
    ) -> None:
        self.task_id = context.task_id if context else ""
        self.token = uuid.uuid4().hex
        self.policy, self.name = policy, name
        self.streamed = 0
        self.kept: list[Yielded] = []
        self._kept_size = 0
        address = context.stream_to if context else None
        self._socket = _connect(address) if address else None

    def add(self, item: Any) -> None:
        index = self.streamed + len(self.kept)
        what = f"item {index} yielded by {self.name!r}"
        data = serialize.dumps(item, what=what)
        data = _by_reference(data, self.policy, self.name, [], what=what)
        entry = Yielded(index, time.time_ns(), HOST, data)
        if self._socket is not None and self._send(entry):
            self.streamed += 1
            return
        self._kept_size += len(data)
        limit = self.policy.result_limit if self.policy else RESULT_LIMIT_BYTES
        if serialize.encoded_size(self._kept_size) > limit:
            raise PayloadTooLargeError(
                f"the items yielded by {self.name!r} that travel in its reply (all "
                f"of them on a globus site) total {format_size(self._kept_size)} so "
                f"far, over the endpoint's result limit of {limit / 2**20:.0f} MiB: "
                f"yield fewer or smaller items, or store large ones by reference "
                f"(README, 'Large data')"
            )
        self.kept.append(entry)

    def _send(self, entry: Yielded) -> bool:
        """Hand `entry` to the stream; False, and no stream from now on, when the
        client has not taken one for `STREAM_SEND_TIMEOUT_MS`."""
        import zmq

        assert self._socket is not None
        frame = pickle.dumps((self.task_id, self.token, tuple(entry)), protocol=5)
        try:
            self._socket.send(frame, copy=False)
        except zmq.ZMQError:
            self._socket.close()  # what is queued may still leave (linger)
            self._socket = None
            return False
        return True

    def close(self) -> YieldTail:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        return YieldTail(self.token, self.streamed, self.kept)


def _connect(address: str) -> zmq.Socket[Any] | None:
    """A PUSH socket to the client's stream; None if its socket file is gone (a
    task of an earlier client, sent again after a restart)."""
    import zmq

    if address.startswith("ipc://") and not os.path.exists(address[6:]):
        return None
    # One context per process: a forked worker gets its own (`instance`).
    socket: zmq.Socket[Any] = zmq.Context.instance().socket(zmq.PUSH)
    socket.immediate = True  # queue only to a connected client, never blindly
    socket.sndtimeo = STREAM_SEND_TIMEOUT_MS
    socket.linger = STREAM_LINGER_MS
    try:
        socket.connect(address)
    except zmq.ZMQError:  # the items travel in the reply instead
        socket.close(linger=0)
        return None
    return socket
