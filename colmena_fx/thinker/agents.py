"""Decorators that turn thinker methods into agents, as in Colmena.

Each decorator returns a function of the thinker that runs the agent's loop; the
loops poll `thinker.done` at least every `REACTION_S` seconds, so a finished or
crashed campaign stops every agent promptly.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any
from typing import TypeVar
from typing import overload

from colmena_fx.exceptions import UsageError
from colmena_fx.models import Result
from colmena_fx.thinker.protocols import AgentHost

#: Longest time an agent loop takes to notice that the campaign is done.
REACTION_S = 0.25

Method = TypeVar("Method", bound=Callable[..., Any])
Host = TypeVar("Host", bound=AgentHost)
#: A thinker method that an agent loop calls; what it returns is ignored.
Step = Callable[[Host], object]
#: A result processor's method.
Processor = Callable[[Host, Result], object]
#: The loop a decorator makes of a method: the thinker runs it in a thread.
Loop = Callable[[Host], None]

_AGENT = "_colmena_agent"
_STARTUP = "_colmena_startup"


def _mark(function: Method, startup: bool) -> Method:
    setattr(function, _AGENT, True)
    setattr(function, _STARTUP, startup)
    return function


def is_agent(function: object) -> bool:
    return bool(getattr(function, _AGENT, False))


def is_startup(function: object) -> bool:
    return bool(getattr(function, _STARTUP, False))


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
        return _mark(method, startup)

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
    """Call the method with every result of `topic` until the campaign is done."""

    def decorate(method: Processor[Host]) -> Loop[Host]:
        @functools.wraps(method)
        def loop(thinker: Host) -> None:
            while not thinker.done.is_set():
                result = thinker.federation.get_result(topic, timeout=REACTION_S)
                if result is not None:
                    method(thinker, result)
                    thinker.federation.processed(result)

        return _mark(loop, startup=False)

    return decorate if function is None else decorate(function)


@overload
def task_submitter(function: Step[Host]) -> Loop[Host]: ...
@overload
def task_submitter(
    *, task_type: str | None = None, n_slots: int = 1
) -> Callable[[Step[Host]], Loop[Host]]: ...
def task_submitter(
    function: Step[Host] | None = None,
    *,
    task_type: str | None = None,
    n_slots: int = 1,
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
            while not thinker.done.is_set():
                if rec.acquire(task_type, n_slots, cancel_if=thinker.done):
                    method(thinker)

        return _mark(loop, startup=False)

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
    max_slots: int | None = None,
) -> Loop[Host]: ...
@overload
def event_responder(
    *,
    event_name: str,
    reallocate_resources: bool = False,
    gather_from: str | None = None,
    gather_to: str | None = None,
    disperse_to: str | None = None,
    max_slots: int | None = None,
) -> Callable[[Step[Host]], Loop[Host]]: ...
def event_responder(
    function: Step[Host] | None = None,
    *,
    event_name: str,
    reallocate_resources: bool = False,
    gather_from: str | None = None,
    gather_to: str | None = None,
    disperse_to: str | None = None,
    max_slots: int | None = None,
) -> Loop[Host] | Callable[[Step[Host]], Loop[Host]]:
    """Call the method each time the thinker's `threading.Event` `event_name` is set.

    The event is cleared before the call, so the method may set it again. With
    `reallocate_resources`, slots move from `gather_from` to `gather_to` (up to
    `max_slots`) in the background while the method runs, and the slots gathered go
    to `disperse_to` once it returns.
    """

    def decorate(method: Step[Host]) -> Loop[Host]:
        @functools.wraps(method)
        def loop(thinker: Host) -> None:
            event = getattr(thinker, event_name, None)
            if not isinstance(event, threading.Event):
                raise UsageError(
                    f"event_responder {method.__name__!r} waits on "
                    f"self.{event_name}, which is not a threading.Event"
                )
            while not thinker.done.is_set():
                if not event.wait(REACTION_S):
                    continue
                event.clear()
                if not reallocate_resources:
                    method(thinker)
                    continue
                gatherer = _Gatherer(thinker, gather_from, gather_to, max_slots)
                gatherer.start()
                try:
                    method(thinker)
                finally:
                    moved = gatherer.finish()
                if moved and thinker.rec is not None:
                    thinker.rec.reallocate(
                        gather_to, disperse_to, moved, cancel_if=thinker.done
                    )

        return _mark(loop, startup=False)

    return decorate if function is None else decorate(function)


class _Gatherer(threading.Thread):
    """Moves slots one at a time into a pool while an event responder runs."""

    def __init__(
        self,
        thinker: AgentHost,
        source: str | None,
        target: str | None,
        max_slots: int | None,
    ) -> None:
        super().__init__(name="cfx-gather", daemon=True)
        if thinker.rec is None:
            raise UsageError("reallocate_resources needs a ResourceCounter")
        self.rec = thinker.rec
        self.done = thinker.done
        self.source, self.target, self.max_slots = source, target, max_slots
        self.moved = 0
        self._stop_gathering = threading.Event()

    def run(self) -> None:
        while not (self._stop_gathering.is_set() or self.done.is_set()):
            if self.max_slots is not None and self.moved >= self.max_slots:
                return
            if self.rec.allocated_slots(self.source) == 0:
                self._stop_gathering.wait(REACTION_S)
                continue
            try:
                moved = self.rec.reallocate(
                    self.source, self.target, 1, timeout=REACTION_S,
                    cancel_if=self._stop_gathering,
                )  # fmt: skip
            except UsageError:  # another thread emptied the pool meanwhile
                continue
            self.moved += int(moved)

    def finish(self) -> int:
        """Stop gathering; the number of slots moved."""
        self._stop_gathering.set()
        self.join()
        return self.moved
