"""Colmena's `colmena.queue.redis`: `RedisQueues`, here a view of the federation."""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from colmena_fx.colmena.queue.base import ColmenaQueues

log = logging.getLogger(__name__)


class RedisQueues(ColmenaQueues):
    """Colmena's Redis queues: the federation carries the tasks, so no Redis server
    is needed; the address is accepted and not used."""

    def __init__(
        self,
        hostname: str = "127.0.0.1",
        port: int = 6379,
        prefix: str | None = None,
        topics: Collection[str] = (),
        **options: Any,
    ) -> None:
        super().__init__(topics, **options)
        log.info(
            "RedisQueues(%s:%s): the federation carries tasks and results; no "
            "Redis server is used",
            hostname, port,
        )  # fmt: skip
