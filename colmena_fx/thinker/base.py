"""`BaseThinker`: runs a campaign's agents and ends them together, even on a crash.

Colmena's thinker logs an agent's crash and exits as if nothing happened; here the
crash is logged with its traceback, `done` is set so every other agent exits, and
`run()` (or `join()`, after `start()`) raises `AgentError` chained to the original
exception, so the program exits with an error.
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
from typing import Any

from colmena_fx.exceptions import ColmenaFXError
from colmena_fx.thinker.agents import REACTION_S
from colmena_fx.thinker.agents import AgentSpec
from colmena_fx.thinker.agents import agent_spec
from colmena_fx.thinker.protocols import TaskClient
from colmena_fx.thinker.resources import ResourceCounter
from colmena_fx.thinker.rounds import EventRound

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


class _AgentData(threading.local):
    """The name and logger of the agent whose thread reads them."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.name: str | None = None


#: (attribute name, bound loop, spec) of one agent of a thinker.
Agent = tuple[str, Callable[[], None], AgentSpec]


class BaseThinker(threading.Thread):
    """Subclass it and decorate methods with `@agent`, `@result_processor`, ...

    Call `run()` from the main thread: it returns when the campaign is done, or
    raises `AgentError` if an agent crashed. `start()` and then `join()` works as
    in Colmena; `join()` raises the `AgentError`.
    """

    def __init__(
        self,
        federation: TaskClient,
        resource_counter: ResourceCounter | None = None,
        daemon: bool = True,
        logger_name: str | None = None,
        **thread_options: Any,
    ) -> None:
        thread_options.setdefault("name", type(self).__name__)
        super().__init__(daemon=daemon, **thread_options)
        self.federation = federation
        self.rec = resource_counter
        self.logger_name = logger_name
        #: Set to end the campaign; every agent stops soon after.
        self.done = threading.Event()
        #: Set once every task submitter has returned.
        self.submitters_done = threading.Event()
        self.exception: AgentError | None = None
        self._local = _AgentData(self.make_logger())
        self._failures: list[tuple[str, BaseException]] = []
        self._lock = threading.Lock()
        self._submitters = 0
        self._rounds: dict[str, EventRound] = {}
        #: Set on a crash or Ctrl-C: result processors stop without draining.
        self._abandon = threading.Event()

    # -- per agent ---------------------------------------------------------------

    @property
    def logger(self) -> logging.Logger:
        """The calling agent's logger (`<module>.<Thinker>.<agent>`)."""
        return self._local.logger

    @property
    def agent_name(self) -> str | None:
        """The name of the agent whose thread calls this; None outside agents."""
        return self._local.name

    def make_logger(self, name: str | None = None) -> logging.Logger:
        """The thinker's logger, or its child `name`."""
        base = self.logger_name or f"{type(self).__module__}.{type(self).__name__}"
        return logging.getLogger(base if name is None else f"{base}.{name}")

    def prepare_agent(self) -> None:
        """Runs in each agent's thread before the agent: override to set it up."""

    def tear_down_agent(self) -> None:
        """Runs in each agent's thread after the agent, even if it crashed."""

    # -- what the agent loops use ------------------------------------------------

    def next_result(self, topic: str, timeout: float) -> Any | None:
        """The next result of `topic` for a result processor, or None."""
        return self.federation.get_result(topic, timeout=timeout)

    def result_processed(self, result: Any) -> None:
        self.federation.processed(result)

    def keep_draining(self, topic: str) -> bool:
        """Whether a result processor of `topic` waits on once `done` is set."""
        if self._abandon.is_set():
            return False
        return (
            not self.submitters_done.is_set() or self.federation.outstanding(topic) > 0
        )

    def event_round(self, event_name: str) -> EventRound:
        return self._rounds[event_name]

    # -- agents ------------------------------------------------------------------

    @classmethod
    def list_agents(cls) -> list[Callable[..., Any]]:
        """Every agent method of the class (Colmena's name)."""
        return [
            member
            for _, member in inspect.getmembers(cls)
            if agent_spec(member) is not None
        ]

    def agents(self) -> list[Agent]:
        """(name, bound loop, spec) of every agent of this thinker."""
        found = []
        for name, member in inspect.getmembers(type(self)):
            spec = agent_spec(member)
            if spec is not None:
                found.append((name, member.__get__(self), spec))
        return found

    def _run_agent(self, name: str, loop: Callable[[], None], spec: AgentSpec) -> None:
        self._local.name = name
        self._local.logger = self.make_logger(name)
        failed = False
        try:
            self.prepare_agent()
            self.logger.debug("agent %s started", name)
            loop()
        except BaseException as exc:
            failed = True
            self.logger.error(
                "agent %s crashed; stopping the campaign", name, exc_info=exc
            )
            with self._lock:
                self._failures.append((name, exc))
            self._abandon.set()
            self.done.set()
        finally:
            self._agent_ended(spec)
            try:
                self.tear_down_agent()
            except BaseException as exc:
                self.logger.error("tear_down_agent of %s raised", name, exc_info=exc)
                with self._lock:
                    self._failures.append((name, exc))
        if not failed:
            self.logger.debug("agent %s finished", name)
            if not spec.startup:
                self.done.set()

    def _agent_ended(self, spec: AgentSpec) -> None:
        if spec.kind != "task_submitter":
            return
        with self._lock:
            self._submitters -= 1
            if self._submitters == 0:
                self.submitters_done.set()

    def _prepare(self, agents: list[Agent]) -> None:
        """Rounds for event responders; the count of task submitters."""
        members: dict[str, int] = {}
        for _, _, spec in agents:
            if spec.event_name is not None:
                members[spec.event_name] = members.get(spec.event_name, 0) + 1
        self._rounds = {
            name: EventRound(getattr(self, name, threading.Event()), count)
            for name, count in members.items()
        }
        self._submitters = sum(spec.kind == "task_submitter" for _, _, spec in agents)
        if self._submitters == 0:
            self.submitters_done.set()

    def run(self) -> None:
        agents = self.agents()
        if not agents:
            raise ColmenaFXError(
                f"{type(self).__name__} has no agents: decorate methods"
            )
        self._prepare(agents)
        threads = [
            threading.Thread(
                target=self._run_agent,
                args=agent,
                name=f"agent-{agent[0]}",
                daemon=True,
            )
            for agent in agents
        ]
        ctrl_c = _CtrlC()
        with ctrl_c:
            try:
                self._run_threads(threads, agents, ctrl_c)
            finally:  # also on Ctrl-C: agents stop before the caller stops sites
                if ctrl_c.received:
                    self._abandon.set()
                self.done.set()
                self._join(threads, agents, ctrl_c)
        if ctrl_c.received:
            raise KeyboardInterrupt
        if self._failures:
            name, error = self._failures[0]
            self.exception = AgentError(name, error)
            if threading.current_thread() is self:  # `join()` raises it
                return
            raise self.exception from error

    def _run_threads(
        self, threads: list[threading.Thread], agents: list[Agent], ctrl_c: _CtrlC
    ) -> None:
        main = [t for t, a in zip(threads, agents, strict=True) if not a[2].startup]
        for thread in threads:
            thread.start()
        while not (self.done.is_set() or ctrl_c.received) and any(
            t.is_alive() for t in main
        ):
            self.done.wait(REACTION_S)

    def _join(
        self, threads: list[threading.Thread], agents: list[Agent], ctrl_c: _CtrlC
    ) -> None:
        """Wait for the agents; result processors as long as they drain."""
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        for thread, (_, _, spec) in zip(threads, agents, strict=True):
            if thread.ident is None:  # never started
                continue
            while spec.kind == "result_processor" and thread.is_alive():
                if ctrl_c.received:
                    self._abandon.set()
                if self._abandon.is_set():
                    break
                thread.join(REACTION_S)
                deadline = time.monotonic() + JOIN_TIMEOUT_S
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            self.logger.warning(
                "agents still running after the campaign ended: %s", stuck
            )

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread (as `Thread.join`); raise `AgentError` if an agent
        crashed, so that `start(); join()` does not exit 0 after a crash."""
        super().join(timeout)
        if not self.is_alive() and self.exception is not None:
            raise self.exception from self.exception.error
