"""How the client reaches a site: one interface, one module per backend."""

from __future__ import annotations

from colmena_fx.transports.base import Transport
from colmena_fx.transports.base import TransportState
from colmena_fx.transports.base import TransportStatus

__all__ = ["Transport", "TransportState", "TransportStatus"]
