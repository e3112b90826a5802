"""Colmena's task servers (`colmena.task_server`): a federation file instead."""

from __future__ import annotations

from colmena_fx.colmena.task_server.base import FederationTaskServer
from colmena_fx.colmena.task_server.base import ParslTaskServer

__all__ = ["FederationTaskServer", "ParslTaskServer"]
