"""Finished tasks per topic, waiting for the thinker, and what each topic still owes.

A topic is a name the thinker gives a task to find its result by. The federation
file may declare them (`topics:`); then a task or a `get_result` on any other
topic is refused at once, instead of a typo'd topic waiting forever. Each topic
counts the tasks submitted whose final result the thinker has not taken yet, so
that result processors can drain what is in flight once a campaign is done, and
`wait_until_done` knows when nothing is.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Iterable

from colmena_fx.exceptions import UsageError
from colmena_fx.models import Result

#: Always a topic, declared or not: where tasks go when none is named.
DEFAULT_TOPIC = "default"


class TopicQueues:
    """Per-topic queues of results and counts of results still to come."""

    def __init__(self, declared: Iterable[str] = ()) -> None:
        names = set(declared)
        #: The topics a task may use; None when any name goes.
        self.declared: frozenset[str] | None = (
            frozenset(names | {DEFAULT_TOPIC}) if names else None
        )
        self._queues: dict[str, queue.Queue[Result]] = {}
        self._owed: Counter[str] = Counter()
        self._changed = threading.Condition()

    def check(self, topic: str) -> None:
        """Refuse a topic the federation file does not declare."""
        if self.declared is not None and topic not in self.declared:
            raise UsageError(
                f"unknown topic {topic!r}: the federation declares "
                f"{sorted(self.declared)} (add it under 'topics:' in the "
                f"federation file)"
            )

    def _queue(self, topic: str) -> queue.Queue[Result]:
        with self._changed:
            found = self._queues.get(topic)
            if found is None:
                found = self._queues[topic] = queue.Queue()
            return found

    def expect(self, topic: str) -> None:
        """A task of `topic` was submitted: its result is owed."""
        with self._changed:
            self._owed[topic] += 1

    def forget(self, topic: str) -> None:
        """A task counted by `expect` was never sent after all."""
        self._settle(topic)

    def put(self, result: Result) -> None:
        self._queue(result.topic).put(result)

    def take(self, topic: str, timeout: float | None) -> Result | None:
        """The next result of `topic`, or None after `timeout` seconds."""
        try:
            result = self._queue(topic).get(timeout=timeout)
        except queue.Empty:
            return None
        if result.complete:
            self._settle(topic)
        return result

    def _settle(self, topic: str) -> None:
        with self._changed:
            self._owed[topic] -= 1
            if self._owed[topic] <= 0:
                del self._owed[topic]
            self._changed.notify_all()

    def outstanding(self, topic: str | None = None) -> int:
        """Results of `topic` (None: of any) still to be taken."""
        with self._changed:
            return sum(self._owed.values()) if topic is None else self._owed[topic]

    def queued(self) -> list[str]:
        """The topics with results waiting to be taken now."""
        with self._changed:
            return [name for name, q in self._queues.items() if not q.empty()]

    def wait_until_done(self, timeout: float | None = None) -> bool:
        """Wait until every result owed has been taken; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self._owed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True
