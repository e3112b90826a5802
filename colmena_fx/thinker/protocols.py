"""What a thinker needs from the federation, and what an agent needs from its
thinker: so that tests and other clients can stand in, and the agent loops need
not import the thinker that runs them."""

from __future__ import annotations

import threading
from typing import Any
from typing import Protocol
from typing import runtime_checkable

from colmena_fx.models import Result
from colmena_fx.thinker.resources import ResourceCounter


@runtime_checkable
class TaskClient(Protocol):
    def submit(
        self,
        method: str,
        *args: Any,
        topic: str = "default",
        resources: Any = None,
        task_info: dict[str, Any] | None = None,
        timeout_s: float | None = None,
        **kwargs: Any,
    ) -> str: ...

    def get_result(
        self, topic: str = "default", timeout: float | None = None
    ) -> Result | None: ...

    def processed(self, result: Result) -> None:
        """Called once a result processor has returned: the thinker hop ends."""


class AgentHost(Protocol):
    """The parts of a thinker that its agents' loops use."""

    federation: TaskClient
    rec: ResourceCounter | None
    done: threading.Event
