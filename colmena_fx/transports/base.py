"""The interface every transport offers the federation.

A transport owns the link to one site. `submit` never raises for anything that goes
wrong after the task left the caller: the returned future always completes with the
task's `Result`, successful or failed, so no task is ever lost in a transport.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from enum import StrEnum
from typing import Any
from typing import Protocol
from typing import runtime_checkable

from pydantic import BaseModel

from colmena_fx.models import Failure
from colmena_fx.models import Result
from colmena_fx.transports.health import Health
from colmena_fx.transports.health import HealthTracker


class TransportState(StrEnum):
    NEW = "new"
    RUNNING = "running"
    LOST = "lost"  # the site went away; new tasks fail at once
    STOPPED = "stopped"


class TransportStatus(BaseModel):
    site: str
    transport: str
    state: TransportState
    in_flight: int
    remote_host: str | None = None
    #: Seconds since the site was last heard from.
    last_heard_s: float | None = None
    detail: str = ""
    health: Health = Health.RECOVERING
    #: Why the site has its health, and since when (seconds since the epoch).
    health_reason: str = ""
    health_since: float | None = None
    #: Tasks the site can run at once (its workers), when it reports them.
    capacity: int | None = None


@runtime_checkable
class Transport(Protocol):
    site: str
    #: Kept current by the transport; the federation listens to it.
    health: HealthTracker

    def start(self) -> None:
        """Bring the link up; raises `EndpointError` if the site cannot be reached."""

    def stop(self) -> None:
        """Bring the link down; tasks still in flight complete as failures."""

    def submit(self, result: Result, function: Callable[..., Any]) -> Future[Result]:
        """Send the task described by `result` (inputs already serialized)."""

    def reattach(self, results: list[Result]) -> dict[str, Future[Result]]:
        """Take back tasks sent before the client restarted, without sending them again.

        Returns a future for each task this site still has (running, or finished while
        the client was away); the others must be sent again. Called once, after
        `start`.
        """

    def cancel(self, task_id: str, failure: Failure) -> bool:
        """Complete task `task_id` now with `failure` and ask the site to drop it.

        Returns False when the task is no longer in flight here (it finished, or was
        failed already): whoever completes a task first wins, exactly once.
        """

    def status(self) -> TransportStatus: ...
