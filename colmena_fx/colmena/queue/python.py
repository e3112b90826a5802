"""Colmena's `colmena.queue.python`: `PipeQueues`, here a view of the federation."""

from __future__ import annotations

from colmena_fx.colmena.queue.base import ColmenaQueues


class PipeQueues(ColmenaQueues):
    """Colmena's default queues; the same federation view here."""
