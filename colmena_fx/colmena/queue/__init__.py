"""Colmena's queues (`colmena.queue`), bound to a federation by the task server."""

from __future__ import annotations

from colmena_fx.colmena.queue.base import ColmenaQueues
from colmena_fx.colmena.queue.python import PipeQueues
from colmena_fx.colmena.queue.redis import RedisQueues

__all__ = ["ColmenaQueues", "PipeQueues", "RedisQueues"]
