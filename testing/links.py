"""Links with known truth, to check latency figures against: a site whose clock is off
by a known offset (its endpoint and workers under libfaketime) and a link with a known
one-way delay (a `DelayProxy` between client and endpoint).

Both are plain `local:` settings of a site file, so any federation can use them. The
fixtures here are registered for the suite in `tests/conftest.py`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import ExitStack
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from colmena_fx.federation import Federation
from colmena_fx.models import Result
from testing.delayproxy import DelayProxy
from testing.faketime import ClockControl
from testing.faketime import faketime_env
from testing.sites import THREAD_POOL
from testing.sites import write_federation
from testing.sites import write_site


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` now (someone else may take it before it is used)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def shifted_clock(
    offset_s: float = 0.0, *, control: ClockControl | None = None, **local: Any
) -> dict[str, Any]:
    """`local:` settings of a site whose endpoint and workers see the wall clock
    `offset_s` seconds off the client's, or run `control`'s drifting, steppable
    clock (over tcp unless `local` says otherwise)."""
    if control is not None:
        clock = faketime_env(control=control)
    else:
        clock = faketime_env(offset_s)
    env = {**local.pop("env", {}), **clock}
    return {"link": "tcp", **local, "env": env}


@dataclass
class DelayedLink:
    """A proxy adding `delay_s` out (client to endpoint) and `back_delay_s` back
    (endpoint to client), and the `local:` settings that use it."""

    proxy: DelayProxy
    delay_s: float
    #: The endpoint's own port (`tcp_port`); the client connects to the proxy's.
    endpoint_port: int
    local: dict[str, Any]

    @property
    def back_delay_s(self) -> float:
        return self.proxy.back_delay_s


@contextmanager
def delayed_link(
    delay_s: float, back_delay_s: float | None = None, **local: Any
) -> Iterator[DelayedLink]:
    """A running delay proxy in front of a fixed endpoint port, stopped at the end:
    `delay_s` out (client to endpoint), `back_delay_s` back (`delay_s` unless given)."""
    port = free_port()
    with DelayProxy("127.0.0.1", port, delay_s, back_delay_s=back_delay_s) as proxy:
        settings = {
            "link": "tcp",
            **local,
            "tcp_port": port,
            "connect_via": f"127.0.0.1:{proxy.port}",
        }
        yield DelayedLink(proxy, delay_s, port, settings)


#: The `make_delayed_link` fixture: `delay_s`, `back_delay_s` and more `local:`
#: settings in.
DelayedLinkFactory = Callable[..., DelayedLink]


@pytest.fixture
def make_delayed_link() -> Iterator[DelayedLinkFactory]:
    """Start delay proxies for site links; every one is stopped after the test."""
    with ExitStack() as stack:

        def make(
            delay_s: float, back_delay_s: float | None = None, **local: Any
        ) -> DelayedLink:
            return stack.enter_context(delayed_link(delay_s, back_delay_s, **local))

        yield make


#: The `make_clock_control` fixture: `ClockControl`'s arguments in.
ClockControlFactory = Callable[..., ClockControl]


@pytest.fixture
def make_clock_control() -> Iterator[ClockControlFactory]:
    """Start drifting, steppable site clocks; every one is closed after the test.
    A site started after its clock closed would take its own drift origin."""
    with ExitStack() as stack:

        def make(
            offset_s: float = 0.0, drift_ppm: float = 0.0, steppable: bool = True
        ) -> ClockControl:
            return stack.enter_context(ClockControl(offset_s, drift_ppm, steppable))

        yield make


def echo_federation(
    directory: Path,
    local: dict[str, Any],
    engine: dict[str, Any] = THREAD_POOL,
    site: str = "far",
) -> Federation:
    """A federation (not started) of one site with `local` settings running
    `testing.tasks.echo` and `testing.tasks.getenv`."""
    site_file = write_site(directory, site, engine, local=local)
    methods = {
        name: {"site": site, "function": f"testing.tasks:{name}"}
        for name in ("echo", "getenv")
    }
    return Federation.from_file(write_federation(directory, [site_file], methods))


def echo_one_at_a_time(federation: Federation, count: int) -> list[Result]:
    """Echo 0..count-1 with one task in flight at a time; each result is checked and
    marked processed, as a thinker would, before the next is sent."""
    results = []
    for i in range(count):
        federation.submit("echo", i)
        result = federation.get_result(timeout=60)
        assert result is not None and result.success, result
        assert result.value == i
        federation.processed(result)
        results.append(result)
    return results
