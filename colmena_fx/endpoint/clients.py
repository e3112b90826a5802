"""Who may talk to an endpoint: the run's CURVE key, then one session at a time.

The key keeps out anyone without the connection file. The session rule keeps two
clients that both have it (a restarted campaign and the one it replaces, or two
campaigns pointed at one endpoint) from sharing tasks and results: the endpoint
serves the attached session and refuses every other until that one is gone: it
said BYE, its process no longer exists (on this host), or it has been silent for
longer than the endpoint's `local.heartbeat_timeout_s`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from dataclasses import field

import psutil

from colmena_fx.endpoint import wire
from colmena_fx.models import HOST

log = logging.getLogger(__name__)


class _OnlyClientKey:
    """ZAP credentials check: the one client key of this run, nobody else."""

    def __init__(self, client_public_key: str) -> None:
        self._allowed = client_public_key.encode()

    def callback(self, domain: str, key: bytes) -> bool:
        if key == self._allowed:
            return True
        log.warning("rejected a peer with an unknown CURVE key %s", key.decode())
        return False


@dataclass
class Session:
    """One client link: its two sockets' identities, and when it was last heard."""

    id: str
    run: str
    host: str
    pid: int
    since_ns: int = field(default_factory=time.time_ns)
    last_heard: float = field(default_factory=time.monotonic)
    rx: bytes | None = None
    tx: bytes | None = None
    #: The silence was logged once already.
    silence_logged: bool = False

    def owns(self, identity: bytes) -> bool:
        return identity in (self.rx, self.tx)

    def heard(self) -> None:
        self.last_heard = time.monotonic()
        self.silence_logged = False

    def silence_s(self) -> float:
        return time.monotonic() - self.last_heard

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since_ns / 1e9))
        return (
            f"the client pid {self.pid} on {self.host} of run {self.run}, attached "
            f"since {since} and last heard {self.silence_s():.1f} s ago"
        )

    def gone(self, timeout_s: float) -> str | None:
        """Why this client no longer counts, or None while it may still talk."""
        if self.silence_s() > timeout_s:
            return f"silent for {self.silence_s():.1f} s (over {timeout_s:g} s)"
        if self.host == HOST and not _running(self.pid):
            return f"its process {self.pid} no longer exists"
        return None


def _running(pid: int) -> bool:
    """Whether `pid` is a live process: a zombie (killed, not yet reaped) is not."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # it exists, but is not ours to look at
        return True


class Clients:
    """The attached session, and the decision on each HELLO."""

    def __init__(self, site: str, timeout_s: float) -> None:
        self.site = site
        self.timeout_s = timeout_s
        self.attached: Session | None = None
        #: Identities and sessions already logged as refused: logged once each.
        self._refusals_logged: set[bytes | str] = set()

    def session_of(self, identity: bytes) -> Session | None:
        attached = self.attached
        return attached if attached is not None and attached.owns(identity) else None

    def hello(
        self, identity: bytes, header: wire.HelloHeader
    ) -> tuple[Session, bool] | wire.RefusedHeader:
        """(the session, whether it is new) if the client is served, else why not."""
        attached = self.attached
        if attached is not None and attached.id == header.session:
            _register(attached, identity, header.role)
            attached.heard()
            return attached, False
        if attached is not None:
            why_gone = attached.gone(self.timeout_s)
            if why_gone is None:
                return self.refusal(identity, header.session, "its HELLO")
            log.info("replacing %s: %s", attached.describe(), why_gone)
        session = Session(
            header.session, header.run, header.client_host, header.client_pid
        )
        _register(session, identity, header.role)
        self.attached = session
        log.info(
            "client pid %d on %s attached (run %s, session %s)",
            session.pid,
            session.host,
            session.run,
            session.id,
        )
        return session, True

    def bye(self, session: Session) -> None:
        if self.attached is session:
            self.attached = None

    def refusal(
        self, identity: bytes, session: str | None = None, what: str = "a message"
    ) -> wire.RefusedHeader:
        """The REFUSED answer for a peer that is not the attached session; logged
        once per session (or socket), as a refused client keeps trying."""
        attached = self.attached
        if attached is None:
            reason = (
                f"site {self.site!r}: this socket is of no attached session "
                f"(a client says HELLO on both its sockets first)"
            )
            refused = wire.RefusedHeader(reason=reason)
        else:
            reason = (
                f"site {self.site!r}: the endpoint (pid {os.getpid()} on {HOST}) "
                f"serves {attached.describe()}; stop that client, or wait until it "
                f"is gone (it stops, its process exits, or it is silent for "
                f"{self.timeout_s:g} s, local.heartbeat_timeout_s)"
            )
            refused = wire.RefusedHeader(
                reason=reason,
                host=attached.host,
                pid=attached.pid,
                run=attached.run,
                since_ns=attached.since_ns,
            )
        key: bytes | str = session if session is not None else identity
        if key not in self._refusals_logged:
            self._refusals_logged.add(key)
            log.warning("refused %s of a client: %s", what, reason)
        return refused


def _register(session: Session, identity: bytes, role: str) -> None:
    if role == "rx":
        session.rx = identity
    else:
        session.tx = identity
