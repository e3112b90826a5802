"""Decorators that turn thinker methods into agents, with Colmena's signatures.

Each decorator returns a function of the thinker that runs the agent's loop and
registers it with an `AgentSpec`, which `BaseThinker` reads to start the agents.
The loops poll `thinker.done` at least every `REACTION_S` seconds, so a finished
or crashed campaign stops every agent promptly. Counts given as strings
(`n_slots="batch_size"`, `max_slots="ml_slots"`) name an attribute of the thinker,
read when the agent starts.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import Literal
from typing import TypeVar
from typing import overload

from colmena_fx.exceptions import UsageError
from colmena_fx.thinker.protocols import AgentHost
from colmena_fx.thinker.reallocator import ReallocatorThread

#: Longest time an agent loop takes to notice that the campaign is done.
REACTION_S = 0.25

Kind = Literal["agent", "result_processor", "task_submitter", "event_responder"]
Method = TypeVar("Method", bound=Callable[..., Any])
Host = TypeVar("Host", bound=AgentHost)
#: A thinker method that an agent loop calls; what it returns is ignored.
Step = Callable[[Host], object]
#: A result processor's method; it receives the thinker's kind of result.
Processor = Callable[[Host, Any], object]
#: The loop a decorator makes of a method: the thinker runs it in a thread.
Loop = Callable[[Host], None]
#: A count, or the name of the thinker's attribute that holds it.
Count = int | str

_SPEC = "__colmena_fx_agent__"


@dataclass(frozen=True)
class AgentSpec:
    """How the thinker runs one agent."""

    kind: Kind
    #: A startup agent may return without ending the campaign.
    startup: bool = False
    #: An event responder's event: its responders answer each set together.
    event_name: str | None = None


def _register(function: Method, spec: AgentSpec) -> Method:
    setattr(function, _SPEC, spec)
    return function


def agent_spec(function: object) -> AgentSpec | None:
    """The spec of a decorated method, or None for any other attribute."""
    spec = getattr(function, _SPEC, None)
    return spec if isinstance(spec, AgentSpec) else None


def resolve_count(thinker: object, count: Count | None, what: str) -> int | None:
    """`count`, or the integer attribute of the thinker that it names."""
    if count is None or isinstance(count, int):
        return count
    value = getattr(thinker, count, None)
    if not isinstance(value, int) or isinstance(value, bool):
        raise UsageError(
            f"{what}={count!r} names an attribute of {type(thinker).__name__}, "
            f"which must hold a whole number; it holds {value!r}"
        )
    return value


@overload
def agent(function: Method) -> Method: ...
@overload
def agent(*, startup: bool = False) -> Callable[[Method], Method]: ...
def agent(
    function: Method | None = None, *, startup: bool = False
) -> Method | Callable[[Method], Method]:
    """Run a method in its own thread when the thinker starts.

    The campaign ends (`done` is set) when any non-startup agent returns; a startup
    agent may return early, e.g. after seeding the first tasks.
    """

    def decorate(method: Method) -> Method:
        return _register(method, AgentSpec("agent", startup=startup))

    return decorate if function is None else decorate(function)


@overload
def result_processor(function: Processor[Host]) -> Loop[Host]: ...
@overload
def result_processor(
    *, topic: str = "default"
) -> Callable[[Processor[Host]], Loop[Host]]: ...
def result_processor(
    function: Processor[Host] | None = None, *, topic: str = "default"
) -> Loop[Host] | Callable[[Processor[Host]], Loop[Host]]:
    """Call the method with every result of `topic`.

    Once the campaign is done it goes on with the results still to come (tasks
    in flight, and those the task submitters send before they notice), as
    Colmena's do; a crash or Ctrl-C stops it at once.
    """

    def decorate(method: Processor[Host]) -> Loop[Host]:
        @functools.wraps(method)
        def loop(thinker: Host) -> None:
            while not thinker.done.is_set() or thinker.keep_draining(topic):
                result = thinker.next_result(topic, REACTION_S)
                if result is None:
                    continue
                started = time.perf_counter()
                method(thinker, result)
                thinker.result_processed(result)
                thinker.logger.debug(
                    "processed a result of topic %r in %.3f s",
                    topic, time.perf_counter() - started,
                )  # fmt: skip

        return _register(loop, AgentSpec("result_processor"))

    return decorate if function is None else decorate(function)


@overload
def task_submitter(function: Step[Host]) -> Loop[Host]: ...
@overload
def task_submitter(
    *, task_type: str | None = None, n_slots: Count = 1
) -> Callable[[Step[Host]], Loop[Host]]: ...
def task_submitter(
    function: Step[Host] | None = None,
    *,
    task_type: str | None = None,
    n_slots: Count = 1,
) -> Loop[Host] | Callable[[Step[Host]], Loop[Host]]:
    """Call the method each time `n_slots` of `task_type` are free (it submits a task).

    The slots are acquired before the call; whoever processes the task's result
    releases them with `self.rec.release(task_type, n_slots)`.
    """

    def decorate(method: Step[Host]) -> Loop[Host]:
        @functools.wraps(method)
        def loop(thinker: Host) -> None:
            rec = thinker.rec
            if rec is None:
                raise UsageError(
                    f"task_submitter {method.__name__!r} needs a ResourceCounter: pass "
                    f"resource_counter= to the thinker"
                )
            count = resolve_count(thinker, n_slots, "n_slots")
            assert count is not None
            while not thinker.done.is_set():
                if rec.acquire(task_type, count, cancel_if=thinker.done):
                    method(thinker)

        return _register(loop, AgentSpec("task_submitter"))

    return decorate if function is None else decorate(function)


@overload
def event_responder(
    function: Step[Host],
    *,
    event_name: str,
    reallocate_resources: bool = False,
    gather_from: str | None = None,
    gather_to: str | None = None,
    disperse_to: str | None = None,
    max_slots: Count | None = None,
    slot_step: int = 1,
) -> Loop[Host]: ...
@overload
def event_responder(
    *,
    event_name: str,
    reallocate_resources: bool = False,
    gather_from: str | None = None,
    gather_to: str | None = None,
    disperse_to: str | None = None,
    max_slots: Count | None = None,
    slot_step: int = 1,
) -> Callable[[Step[Host]], Loop[Host]]: ...
def event_responder(
    function: Step[Host] | None = None,
    *,
    event_name: str,
    reallocate_resources: bool = False,
    gather_from: str | None = None,
    gather_to: str | None = None,
    disperse_to: str | None = None,
    max_slots: Count | None = None,
    slot_step: int = 1,
) -> Loop[Host] | Callable[[Step[Host]], Loop[Host]]:
    """Call the method each time the thinker's `threading.Event` `event_name` is set.

    Every responder of the event answers each set once: they start together, and
    the event is cleared as they start, so a method may set it again. With
    `reallocate_resources`, a `ReallocatorThread` moves slots from `gather_from`
    to `gather_to` (until that pool holds `max_slots`, `slot_step` at a time)
    while the method runs, then every slot of `gather_to` to `disperse_to`.
    """
    if reallocate_resources and gather_from == gather_to:
        raise UsageError(
            f"event_responder on {event_name!r}: gather_from and gather_to are both "
            f"{gather_from!r}; slots must move between two pools"
        )

    def decorate(method: Step[Host]) -> Loop[Host]:
        @functools.wraps(method)
        def loop(thinker: Host) -> None:
            event = getattr(thinker, event_name, None)
            if not isinstance(event, threading.Event):
                raise UsageError(
                    f"event_responder {method.__name__!r} waits on "
                    f"self.{event_name}, which is not a threading.Event"
                )
            cap = resolve_count(thinker, max_slots, "max_slots")
            round_ = thinker.event_round(event_name)
            while not thinker.done.is_set():
                if not event.wait(REACTION_S) or not round_.join(thinker.done):
                    continue
                if not reallocate_resources:
                    method(thinker)
                    continue
                if thinker.rec is None:
                    raise UsageError("reallocate_resources needs a ResourceCounter")
                mover = ReallocatorThread(
                    thinker.rec, gather_from, gather_to, disperse_to,
                    max_slots=cap, slot_step=slot_step, cancel_if=thinker.done,
                    logger_name=f"{thinker.logger.name}.allocate",
                )  # fmt: skip
                mover.start()
                try:
                    method(thinker)
                finally:
                    mover.stop_event.set()
                    mover.join()

        return _register(loop, AgentSpec("event_responder", event_name=event_name))

    return decorate if function is None else decorate(function)
