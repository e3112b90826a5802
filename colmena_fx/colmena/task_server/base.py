"""The task server of a Colmena program, replaced by a federation file.

Colmena starts a task-server process that runs the methods on Parsl; here
`FederationTaskServer` starts the federation the file describes in the
thinker's process and binds the queues to it, with Colmena's lifecycle:
`start()`, then `join()` after `queues.send_kill_signal()`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Collection
from pathlib import Path
from typing import Any

from colmena_fx.colmena.queue.base import ColmenaQueues
from colmena_fx.exceptions import UsageError
from colmena_fx.federation import Federation

log = logging.getLogger(__name__)

#: A method as Colmena's task servers take it: a function, or (function, options).
MethodSpec = Callable[..., Any] | tuple[Callable[..., Any], dict[str, Any]]


def _function(spec: MethodSpec) -> Callable[..., Any]:
    if not isinstance(spec, tuple):
        return spec
    function, options = spec
    if options:
        raise UsageError(
            f"method {getattr(function, '__name__', function)!r} comes with "
            f"options {sorted(options)}: route it in the federation file instead "
            f"('methods.<name>.site' or 'sites' picks where it runs; 'resources' "
            f"what it needs)"
        )
    return function


class FederationTaskServer:
    """Runs `methods` on the sites of `federation` (a file, or a `Federation`)."""

    def __init__(
        self,
        methods: Collection[MethodSpec],
        queues: ColmenaQueues,
        federation: str | Path | Federation,
    ) -> None:
        self.queues = queues
        if isinstance(federation, Federation):
            self.federation = federation
        else:
            functions = [_function(spec) for spec in methods]
            self.federation = Federation.from_file(federation, methods=functions)
        missing = self.queues.topics - set(self.federation.config.topics) - {"default"}
        if self.federation.config.topics and missing:
            raise UsageError(
                f"the queues' topics {sorted(missing)} are not declared in the "
                f"federation file's 'topics': add them there"
            )
        if not self.federation.config.topics:  # Colmena's queues declare them
            self.federation.declare_topics(self.queues.topics)

    def start(self) -> None:
        """Start every site, then bind the queues (returns once sites are up)."""
        self.federation.start()
        self.queues.bind(self.federation)
        self.queues.on_kill.append(self.stop)

    def join(self, timeout: float | None = None) -> None:
        """Wait until `queues.send_kill_signal()` has stopped the federation."""
        self.queues.killed.wait(timeout)

    def stop(self) -> None:
        """Stop every site now; tasks still running are failed as stopped."""
        self.federation.stop()

    def is_alive(self) -> bool:
        return self.federation.run_dir is not None and not self.queues.killed.is_set()

    def __enter__(self) -> FederationTaskServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ParslTaskServer:
    """Colmena's Parsl task server has no place here: the sites are the
    federation file's. Constructing one says what to write instead."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise UsageError(
            "ParslTaskServer(methods, queues, parsl_config) becomes "
            "FederationTaskServer(methods, queues, 'federation.yaml'): the "
            "federation file names the sites (each a Globus Compute endpoint "
            "with its Parsl engine) and routes each method to one "
            "(docs/from-colmena.md)"
        )
