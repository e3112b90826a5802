"""Colmena's thinker (`colmena.thinker`): `BaseThinker(queues, ...)` and its
decorators, over colmena-fx's thinker.

The agents are colmena-fx's: a crash stops the campaign and `join()` raises it;
event responders of one event answer each set together; result processors
drain the results still in flight once `done` is set.
"""

from __future__ import annotations

import threading
from typing import Any

from colmena_fx.colmena.exceptions import TimeoutException
from colmena_fx.colmena.queue.base import ColmenaQueues
from colmena_fx.colmena.thinker.resources import ResourceCounter
from colmena_fx.thinker import BaseThinker as NativeThinker
from colmena_fx.thinker.agents import agent
from colmena_fx.thinker.agents import event_responder
from colmena_fx.thinker.agents import result_processor
from colmena_fx.thinker.agents import task_submitter
from colmena_fx.thinker.reallocator import ReallocatorThread
from colmena_fx.thinker.resources import ResourceCounter as NativeCounter

__all__ = [
    "BaseThinker",
    "ReallocatorThread",
    "ResourceCounter",
    "agent",
    "event_responder",
    "result_processor",
    "task_submitter",
]


class BaseThinker(NativeThinker):
    """A thinker over Colmena's queues: `self.queues`, and Colmena's `Result`s."""

    def __init__(
        self,
        queue: ColmenaQueues,
        resource_counter: NativeCounter | None = None,
        daemon: bool = True,
        logger_name: str | None = None,
        **thread_options: Any,
    ) -> None:
        super().__init__(
            queue.client, resource_counter, daemon, logger_name, **thread_options
        )
        self.queues = queue
        self.queues.set_role("client")

    @property
    def local_details(self) -> threading.local:
        """Colmena's store of the calling agent's own objects: what an agent (or
        `prepare_agent` in its thread) sets here only that agent sees."""
        return self._local

    def next_result(self, topic: str, timeout: float) -> Any | None:
        try:
            return self.queues.get_result(topic, timeout=timeout)
        except TimeoutException:
            return None

    def result_processed(self, result: Any) -> None:
        self.queues.processed(result)
