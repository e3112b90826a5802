"""How the client reaches a site: one interface, one module per backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from colmena_fx.config import SiteConfig
from colmena_fx.methodroute import MethodRoute
from colmena_fx.models import Result
from colmena_fx.transports.base import Transport
from colmena_fx.transports.base import TransportState
from colmena_fx.transports.base import TransportStatus

__all__ = ["Transport", "TransportState", "TransportStatus", "make_transport"]


def make_transport(
    site: SiteConfig,
    run_dir: Path,
    routes: dict[str, MethodRoute],
    on_accepted: Callable[[Result], None],
) -> Transport:
    """The transport the site file names; `on_accepted` hears of remote task ids."""
    if site.transport == "globus":
        from colmena_fx.transports.globus import GlobusTransport

        return GlobusTransport(site, run_dir, routes=routes, on_accepted=on_accepted)
    from colmena_fx.transports.local import LocalTransport

    return LocalTransport(site, run_dir)
