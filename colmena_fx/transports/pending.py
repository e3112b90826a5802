"""The tasks a transport has taken and not yet completed, shared by every transport.

Each task's future completes exactly once: with its result when the site answers,
or as a failure when the site is lost or the transport stops. Whoever pops a task
from the table completes it, so the two can never both happen.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from concurrent.futures import Future

from colmena_fx.models import Failure
from colmena_fx.models import FailureKind
from colmena_fx.models import Result

Entry = tuple[Result, Future[Result]]


def transport_failure(
    kind: FailureKind, message: str, host: str, exception_type: str | None = None
) -> Failure:
    """A failure the transport, not the user function, is reporting.

    Its `kind` says what was lost; `exception_type` names the colmena-fx error.
    """
    return Failure(
        kind=kind,
        exception_type=exception_type or "EndpointError",
        message=message,
        host=host,
    )


def complete_failed(
    result: Result, future: Future[Result], kind: FailureKind, message: str, host: str
) -> None:
    result.fail(transport_failure(kind, message, host))
    future.set_result(result)


class PendingTasks:
    """Tasks in flight by key (a task id, an SDK future), behind one lock.

    The lock is reentrant and public so a transport can change its own state and
    file a task atomically (`with pending.lock: ... pending.add(...)`).
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._entries: dict[Hashable, Entry] = {}

    def __len__(self) -> int:
        with self.lock:
            return len(self._entries)

    def add(self, key: Hashable, result: Result, future: Future[Result]) -> None:
        with self.lock:
            self._entries[key] = (result, future)

    def get(self, key: Hashable) -> Entry | None:
        with self.lock:
            return self._entries.get(key)

    def pop(self, key: Hashable) -> Entry | None:
        with self.lock:
            return self._entries.pop(key, None)

    def fail_all(self, kind: FailureKind, message: str, host: str) -> None:
        """Complete every task still in flight as a failure."""
        with self.lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for result, future in entries:
            complete_failed(result, future, kind, message, host)
