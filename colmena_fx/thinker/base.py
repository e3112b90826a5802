"""`BaseThinker`: runs a campaign's agents and ends them together, even on a crash.

Colmena's thinker hangs when an agent raises; here the crash is logged with its
traceback, `done` is set so every other agent exits, and `run()` raises
`AgentError` chained to the original exception.
"""

from __future__ import annotations

import inspect
import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from types import TracebackType

from colmena_fx.exceptions import ColmenaFXError
from colmena_fx.thinker.agents import REACTION_S
from colmena_fx.thinker.agents import is_agent
from colmena_fx.thinker.agents import is_startup
from colmena_fx.thinker.protocols import TaskClient
from colmena_fx.thinker.resources import ResourceCounter

#: How long `run()` waits for agents to notice `done` before giving up on them.
JOIN_TIMEOUT_S = 30.0


class AgentError(ColmenaFXError, RuntimeError):
    """An agent of the thinker raised; the campaign was stopped."""

    def __init__(self, agent: str, error: BaseException) -> None:
        super().__init__(f"agent {agent!r} failed: {type(error).__name__}: {error}")
        self.agent = agent
        self.error = error


class _CtrlC:
    """Notes Ctrl-C while a thinker runs in the main thread, raising nothing.

    Python raises `KeyboardInterrupt` wherever the main thread is when it handles
    the signal; if that is a finalizer (a weakref callback the garbage collector
    runs, a `__del__`), the exception is printed and dropped, and the campaign runs
    on. This handler only sets a flag (no lock: it may run while the main thread
    holds one), which `run()` polls and turns into a `KeyboardInterrupt` itself.
    A handler the program installed itself is left in place.
    """

    def __init__(self) -> None:
        self.received = False
        self._installed = False

    def __enter__(self) -> _CtrlC:
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            signal.signal(signal.SIGINT, self._note)
            self._installed = True
        return self

    def _note(self, _signum: int, _frame: FrameType | None) -> None:
        self.received = True

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self._installed = False


class BaseThinker(threading.Thread):
    """Subclass it and decorate methods with `@agent`, `@result_processor`, ...

    Call `run()` from the main thread: it returns when the campaign is done, or
    raises `AgentError` if an agent crashed. (`start()` + `join()` also works; then
    read `exception` after the join.)
    """

    def __init__(
        self,
        federation: TaskClient,
        resource_counter: ResourceCounter | None = None,
        daemon: bool = True,
    ) -> None:
        super().__init__(daemon=daemon, name=type(self).__name__)
        self.federation = federation
        self.rec = resource_counter
        self.done = threading.Event()
        self.logger = logging.getLogger(
            f"{type(self).__module__}.{type(self).__name__}"
        )
        self.exception: AgentError | None = None
        self._failures: list[tuple[str, BaseException]] = []
        self._failures_lock = threading.Lock()

    def agents(self) -> list[tuple[str, Callable[[], None], bool]]:
        """(name, bound loop, is_startup) of every agent of this class."""
        found = []
        for name, member in inspect.getmembers(type(self)):
            if is_agent(member):
                found.append((name, member.__get__(self), is_startup(member)))
        return found

    def _run_agent(self, name: str, loop: Callable[[], None], startup: bool) -> None:
        self.logger.debug("agent %s started", name)
        try:
            loop()
        except BaseException as exc:
            self.logger.error(
                "agent %s crashed; stopping the campaign", name, exc_info=exc
            )
            with self._failures_lock:
                self._failures.append((name, exc))
            self.done.set()
            return
        self.logger.debug("agent %s finished", name)
        if not startup:
            self.done.set()

    def run(self) -> None:
        agents = self.agents()
        if not agents:
            raise ColmenaFXError(
                f"{type(self).__name__} has no agents: decorate methods"
            )
        threads = [
            threading.Thread(
                target=self._run_agent,
                args=agent,
                name=f"agent-{agent[0]}",
                daemon=True,
            )
            for agent in agents
        ]
        main = [
            t for t, (_, _, startup) in zip(threads, agents, strict=True) if not startup
        ]
        ctrl_c = _CtrlC()
        try:
            with ctrl_c:
                for thread in threads:
                    thread.start()
                while not (self.done.is_set() or ctrl_c.received) and any(
                    t.is_alive() for t in main
                ):
                    self.done.wait(REACTION_S)
        finally:  # also on Ctrl-C: agents stop before the caller stops the sites
            self.done.set()
            deadline = time.monotonic() + JOIN_TIMEOUT_S
            for thread in threads:
                if thread.ident is not None:  # started
                    thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            self.logger.warning(
                "agents still running after the campaign ended: %s", stuck
            )
        if ctrl_c.received:
            raise KeyboardInterrupt
        if self._failures:
            name, error = self._failures[0]
            self.exception = AgentError(name, error)
            raise self.exception from error
