"""What a thinker needs from the federation, so tests and other clients can stand in."""

from __future__ import annotations

from typing import Any
from typing import Protocol
from typing import runtime_checkable

from colmena_fx.models import Result


@runtime_checkable
class TaskClient(Protocol):
    def submit(
        self,
        method: str,
        *args: Any,
        topic: str = "default",
        resources: Any = None,
        task_info: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> str: ...

    def get_result(
        self, topic: str = "default", timeout: float | None = None
    ) -> Result | None: ...

    def processed(self, result: Result) -> None:
        """Called once a result processor has returned: the thinker hop ends."""
