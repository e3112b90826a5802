"""What a thinker needs from the federation, and what an agent needs from its
thinker: so that tests and other clients can stand in, and the agent loops need
not import the thinker that runs them."""

from __future__ import annotations

import logging
import threading
from typing import Any
from typing import Protocol
from typing import runtime_checkable

from colmena_fx.models import Result
from colmena_fx.thinker.resources import ResourceCounter
from colmena_fx.thinker.rounds import EventRound


@runtime_checkable
class TaskClient(Protocol):
    def submit(
        self,
        method: str,
        *args: Any,
        kwargs: dict[str, Any] | None = None,
        topic: str = "default",
        resources: Any = None,
        task_info: dict[str, Any] | None = None,
        timeout_s: float | None = None,
        keep_inputs: bool | None = None,
        max_retries: int | None = None,
    ) -> str: ...

    def get_result(
        self, topic: str = "default", timeout: float | None = None
    ) -> Result | None: ...

    def processed(self, result: Result) -> None:
        """Called once a result processor has returned: the thinker hop ends."""

    def outstanding(self, topic: str | None = None) -> int:
        """Tasks of `topic` (None: any) submitted whose result is not yet taken."""


class AgentHost(Protocol):
    """The parts of a thinker that its agents' loops use."""

    federation: TaskClient
    rec: ResourceCounter | None
    done: threading.Event
    submitters_done: threading.Event

    @property
    def logger(self) -> logging.Logger: ...

    def next_result(self, topic: str, timeout: float) -> Any | None: ...

    def result_processed(self, result: Any) -> None: ...

    def keep_draining(self, topic: str) -> bool: ...

    def event_round(self, event_name: str) -> EventRound: ...
