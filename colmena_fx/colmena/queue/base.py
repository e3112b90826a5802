"""Colmena's queues (`colmena.queue`) as a view of a federation.

In Colmena the queues carry task requests from the thinker to a task-server
process and results back. Here the federation lives in the thinker's process, so
a queues object is bound to it by `FederationTaskServer.start()` and forwards:
`send_inputs` is `Federation.submit`, `get_result` is `Federation.get_result`
with Colmena's `TimeoutException` and `Result`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from collections.abc import Collection
from typing import Any

from colmena_fx.colmena.exceptions import TimeoutException
from colmena_fx.colmena.models.convert import to_colmena
from colmena_fx.colmena.models.results import ResourceRequirements
from colmena_fx.colmena.models.results import Result
from colmena_fx.colmena.models.results import SerializationMethod
from colmena_fx.exceptions import UsageError
from colmena_fx.federation import Federation
from colmena_fx.models import FailureKind
from colmena_fx.models import Result as NativeResult

log = logging.getLogger(__name__)

#: Colmena retries a failed task whatever failed; colmena-fx never retries one
#: that ran past its deadline.
_COLMENA_RETRY_ON = [kind for kind in FailureKind if kind is not FailureKind.TIMEOUT]


class ColmenaQueues:
    """Colmena's queue methods over the federation the task server starts."""

    def __init__(
        self,
        topics: Collection[str] = (),
        serialization_method: str | SerializationMethod = SerializationMethod.PICKLE,
        keep_inputs: bool = True,
        proxystore_name: str | dict[str, str] | None = None,
        proxystore_threshold: int | dict[str, int] | None = None,
    ) -> None:
        if proxystore_name is not None or proxystore_threshold is not None:
            raise UsageError(
                "proxystore_name/proxystore_threshold: colmena-fx moves large "
                "values through the data stores of the federation file; declare "
                "one under 'data.stores' with a 'threshold' (README, 'Large data')"
            )
        self.topics = {*topics, "default"}
        self.serialization_method = SerializationMethod(serialization_method)
        self.keep_inputs = keep_inputs
        self.role = "any"
        self.federation: Federation | None = None
        #: Set by `send_kill_signal`, once it has called `on_kill`'s callbacks
        #: (the task server's `stop`).
        self.killed = threading.Event()
        self.on_kill: list[Callable[[], None]] = []
        #: Colmena's resources of each task in flight, returned on its result.
        self._resources: dict[str, ResourceRequirements] = {}
        self._lock = threading.Lock()

    # -- binding ---------------------------------------------------------------

    def bind(self, federation: Federation) -> None:
        """Send through `federation` (the task server does this as it starts)."""
        self.federation = federation

    def _bound(self) -> Federation:
        if self.federation is None:
            raise UsageError(
                "these queues are not connected to a federation yet: start the "
                "task server (FederationTaskServer(methods, queues, "
                "'federation.yaml').start()) before sending tasks"
            )
        return self.federation

    @property
    def client(self) -> _BoundClient:
        """The bound federation as a thinker's `TaskClient`."""
        return _BoundClient(self)

    def set_role(self, role: str) -> None:
        """Kept for Colmena's thinker; roles change nothing here."""
        if role not in {"any", "client", "server"}:
            raise UsageError(f"role must be 'any', 'client' or 'server', not {role!r}")
        self.role = role

    # -- tasks -----------------------------------------------------------------

    def _check_topic(self, topic: str) -> None:
        if topic not in self.topics:
            raise UsageError(
                f"unknown topic {topic!r}: the queues have {sorted(self.topics)} "
                f"(add it to topics=[...])"
            )

    def send_inputs(
        self,
        *input_args: Any,
        method: str | None = None,
        input_kwargs: dict[str, Any] | None = None,
        keep_inputs: bool | None = None,
        resources: ResourceRequirements | dict[str, Any] | None = None,
        topic: str = "default",
        task_info: dict[str, Any] | None = None,
        max_retries: int = 0,
    ) -> str:
        """Submit `method(*input_args, **input_kwargs)`; returns the task id."""
        federation = self._bound()
        self._check_topic(topic)
        if method is None:
            if len(federation.methods) != 1:
                raise UsageError(
                    f"send_inputs needs method=: the federation has "
                    f"{federation.methods}"
                )
            method = federation.methods[0]
        if isinstance(resources, dict):
            resources = ResourceRequirements.model_validate(resources)
        resources = resources or ResourceRequirements()
        native = resources.to_native()
        task_id = federation.submit(
            method,
            *input_args,
            kwargs=input_kwargs,
            topic=topic,
            resources=None if resources == ResourceRequirements() else native,
            task_info=task_info,
            keep_inputs=self.keep_inputs if keep_inputs is None else keep_inputs,
            max_retries=max_retries or None,
            retry_on=_COLMENA_RETRY_ON if max_retries else None,
        )
        with self._lock:
            self._resources[task_id] = resources
        return task_id

    def get_result(
        self, topic: str = "default", timeout: float | None = None
    ) -> Result:
        """The next result of `topic`; `TimeoutException` after `timeout` seconds."""
        self._check_topic(topic)
        native = self._bound().get_result(topic, timeout=timeout)
        if native is None:
            raise TimeoutException(f"no result on topic {topic!r} within {timeout} s")
        return self.to_colmena(native)

    def to_colmena(self, native: NativeResult) -> Result:
        with self._lock:
            if native.complete:
                resources = self._resources.pop(native.task_id, None)
            else:
                resources = self._resources.get(native.task_id)
        latency = self.federation.latency if self.federation is not None else None
        return to_colmena(native, resources, latency)

    def processed(self, result: Result) -> None:
        """Stamp the end of the thinker's hop on the task's colmena-fx record."""
        if result.native is not None and self.federation is not None:
            self.federation.processed(result.native)

    @property
    def active_count(self) -> int:
        """Tasks sent whose results have not been taken yet."""
        return 0 if self.federation is None else self.federation.outstanding()

    def wait_until_done(self, timeout: float | None = None) -> bool:
        """Wait until every task sent has had its result taken."""
        return (
            True
            if self.federation is None
            else self.federation.wait_until_done(timeout)
        )

    def flush(self) -> None:
        """Drop every result waiting to be taken (they are journaled as taken)."""
        if self.federation is not None:
            for native in self.federation.flush():
                with self._lock:
                    self._resources.pop(native.task_id, None)

    def send_kill_signal(self) -> None:
        """Stop the task server: its federation stops here, before this returns
        (tasks still running fail as stopped; take their results first, e.g. by
        `wait_until_done`), and its `join()` returns."""
        for stop in self.on_kill:
            stop()
        self.killed.set()


class _BoundClient:
    """The federation the queues are bound to, for colmena-fx's agent loops, which
    a thinker gets before its task server has started."""

    def __init__(self, queues: ColmenaQueues) -> None:
        self.queues = queues

    def submit(self, method: str, *args: Any, **options: Any) -> str:
        return self.queues._bound().submit(method, *args, **options)

    def get_result(
        self, topic: str = "default", timeout: float | None = None
    ) -> NativeResult | None:
        return self.queues._bound().get_result(topic, timeout)

    def processed(self, result: NativeResult) -> None:
        self.queues._bound().processed(result)

    def outstanding(self, topic: str | None = None) -> int:
        federation = self.queues.federation
        return 0 if federation is None else federation.outstanding(topic)
