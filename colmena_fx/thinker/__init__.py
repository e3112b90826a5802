"""The thinker: Colmena-style agents that steer a campaign through a federation."""

from __future__ import annotations

from colmena_fx.thinker.agents import agent
from colmena_fx.thinker.agents import event_responder
from colmena_fx.thinker.agents import result_processor
from colmena_fx.thinker.agents import task_submitter
from colmena_fx.thinker.base import AgentError
from colmena_fx.thinker.base import BaseThinker
from colmena_fx.thinker.protocols import TaskClient
from colmena_fx.thinker.resources import ResourceCounter

__all__ = [
    "AgentError",
    "BaseThinker",
    "ResourceCounter",
    "TaskClient",
    "agent",
    "event_responder",
    "result_processor",
    "task_submitter",
]
