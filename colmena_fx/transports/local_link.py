"""The client's side of the link protocol (`endpoint.wire`): sessions, sockets,
connection files, and results read off the link.

A transport's link is one session: a random id said in the HELLO of both sockets,
with the client's run, so that the endpoint serves this client and no other at a
time, and hands the run's unacknowledged results to whichever of its sessions
attaches next (the same campaign, restarted).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import Literal

import psutil
import zmq

from colmena_fx.config import SiteConfig
from colmena_fx.endpoint import wire
from colmena_fx.exceptions import EndpointError
from colmena_fx.models import HOST
from colmena_fx.models import FailureKind
from colmena_fx.models import Result
from colmena_fx.models import Stamp
from colmena_fx.transports import gcformat
from colmena_fx.transports.pending import transport_failure

log = logging.getLogger(__name__)

#: How long a stopping client's BYE may wait to leave, in milliseconds.
BYE_LINGER_MS = 500


def run_identity(run_dir: Path) -> str:
    """The client's run, from a site's run directory `<run dir>/sites/<site>`:
    a campaign restarted in the same run directory is the same run."""
    return str(Path(run_dir).resolve().parent.parent)


@dataclass(frozen=True)
class LinkSession:
    """One link's session: the messages that name it."""

    run: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def hello(self, role: Literal["rx", "tx"]) -> list[bytes]:
        header = wire.HelloHeader(
            client_host=HOST,
            session=self.id,
            role=role,
            run=self.run,
            client_pid=os.getpid(),
        )
        return wire.encode(wire.Kind.HELLO, header)

    def ping(self) -> list[bytes]:
        return wire.encode(wire.Kind.PING, wire.PingHeader(time_ns=time.time_ns()))

    def ack(self, task_ids: list[str]) -> list[bytes]:
        return wire.encode(wire.Kind.ACK, wire.AckHeader(task_ids=task_ids))

    def bye(self) -> list[bytes]:
        return wire.encode(wire.Kind.BYE, wire.ByeHeader(session=self.id))


def connect(
    ctx: zmq.Context[zmq.Socket[Any]], info: wire.ConnectionInfo, via: str | None
) -> zmq.Socket[Any]:
    """A DEALER with the run's client key, connected to the endpoint.

    Through a tunnel or proxy (`via`), the client dials its near end; the CURVE
    keys are the endpoint's all the same, as the middle only forwards bytes.
    """
    sock = ctx.socket(zmq.DEALER)
    sock.curve_serverkey = info.server_public_key.encode()
    sock.curve_publickey = info.client_public_key.encode()
    sock.curve_secretkey = info.client_secret_key.encode()
    sock.linger = 0
    address = f"tcp://{via}" if via else info.address
    if address.startswith("tcp://["):
        sock.ipv6 = True
    sock.connect(address)
    return sock


def read_connection_file(path: Path, site: SiteConfig) -> wire.ConnectionInfo:
    """The connection file `local.attach` names, or an `EndpointError` that says how
    to start the endpoint that writes it."""
    start = f"`colmena-fx endpoint start {site.source or '<site file>'}`"
    try:
        info = wire.ConnectionInfo.read(path)
    except FileNotFoundError:
        raise EndpointError(
            f"site {site.name!r}: no connection file {path} (local.attach): start "
            f"the endpoint first with {start}, which writes it"
        ) from None
    except (OSError, ValueError) as exc:
        raise EndpointError(
            f"site {site.name!r}: cannot read the connection file {path} "
            f"(local.attach): {exc}; start the endpoint again with {start}"
        ) from None
    if site.local.connect_via is None and not psutil.pid_exists(info.pid):
        raise EndpointError(
            f"site {site.name!r}: the endpoint of connection file {path} (pid "
            f"{info.pid}) is not running: it was killed; start it again with {start}"
        )
    if info.site != site.name:
        log.warning(
            "site %s attaches to %s, the endpoint of site %s",
            site.name,
            path,
            info.site,
        )
    return info


def fill_result(
    result: Result,
    entry: wire.ResultEntry,
    payload: bytes,
    header: wire.ResultHeader,
    received_ns: int,
) -> None:
    """Fill `result` from one entry of a RESULT message: value or failure, and the
    endpoint's, worker's and client's stamps."""
    result.stamp(Stamp.ENDPOINT_RECEIVED, host=header.host, time_ns=entry.received_ns)
    try:
        gcformat.unpack_result(payload, result)  # adds the worker's stamps
    except Exception as exc:
        message = f"cannot read the result: {exc}"
        result.fail(transport_failure(FailureKind.INFRASTRUCTURE, message, ""))
    result.stamp(Stamp.ENDPOINT_SENT, host=header.host, time_ns=header.sent_ns)
    result.stamp(Stamp.RECEIVED, time_ns=received_ns)
    result.stamp(Stamp.DESERIALIZED)
