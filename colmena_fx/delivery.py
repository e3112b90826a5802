"""The thinker's side of a federation: finished tasks queued per topic, and what
their acceptance by a site's service, their delivery and their taking record.

A result is *delivered* when its task finishes for good (kept in the run's task
store, journaled `completed`, queued on its topic) and *taken* when the thinker
gets it (kept as taken, so it is never redelivered after a restart, journaled
`delivered` with its whole record). A generator's intermediate results go the
same way without finishing their task.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping

from colmena_fx.config import SiteConfig
from colmena_fx.data.manager import DataManager
from colmena_fx.dispatch import brief
from colmena_fx.journal import Journal
from colmena_fx.latency.recorder import LatencyRecorder
from colmena_fx.models import FailureKind
from colmena_fx.models import Result
from colmena_fx.models import Stamp
from colmena_fx.routing import ServiceEstimates
from colmena_fx.runlog import RunLog
from colmena_fx.topics import TopicQueues
from colmena_fx.transports.stream import StreamReceiver


class Delivery:
    """Results from the transports' threads to the thinker's."""

    def __init__(
        self,
        topics: TopicQueues,
        data: DataManager,
        sites: Mapping[str, SiteConfig],
        running: Callable[[], bool],
    ) -> None:
        self.topics = topics
        self.data = data
        self._running = running
        #: The live stream of generator methods' items on local sites.
        self.streams = StreamReceiver(self.intermediate, dict(sites))
        self.run: RunLog | None = None
        self.latency = LatencyRecorder()
        self.estimates = ServiceEstimates()

    def begin(
        self, run: RunLog, latency: LatencyRecorder, estimates: ServiceEstimates
    ) -> None:
        """Record into this run from now on."""
        self.run, self.latency, self.estimates = run, latency, estimates

    @property
    def journal(self) -> Journal | None:
        return None if self.run is None else self.run.journal

    def accepted(self, result: Result) -> None:
        """A site's service gave the task its own id: keep it, and journal it."""
        if self.run is not None:
            self.run.keep_accepted(result)
        if self.journal is not None:
            self.journal.record(
                "accepted",
                {"task_id": result.task_id, "site": result.site,
                 "remote_id": result.remote_id},
            )  # fmt: skip

    def final(self, result: Result) -> None:
        """A task finished for good: keep it, journal it, queue it for its topic.

        A task failed because the federation stops is not kept as finished:
        resuming the run takes it back or sends it again, as after a crash.
        """
        for item in self.streams.finish(result):  # a generator's, in order
            self.intermediate(item)
        failure = result.failure
        stopped = (
            not self._running()
            and failure is not None
            and (failure.kind is FailureKind.INFRASTRUCTURE)
        )
        if self.run is not None and not stopped:  # before the thinker takes it
            self.run.keep_result(result)
        if self.journal is not None:
            self.journal.record("completed", brief(result))
        self.data.completed(result)
        self.topics.put(result)
        self.estimates.observe(result)
        self.latency.completed(result)  # after: the thinker need not wait for it

    def intermediate(self, result: Result) -> None:
        """An item a task's generator yielded: queued for its topic at once, while
        the task runs on (nothing else changes for it until its final result)."""
        if self.journal is not None:
            self.journal.record(
                "streamed", {"task_id": result.task_id, "index": result.index}
            )
        self.data.adopt(result)
        self.topics.put(result)

    def redeliver(self, result: Result) -> None:
        """A result the earlier client had and the thinker never took."""
        self.topics.expect(result.topic)
        self.topics.put(result)
        self.latency.completed(result)

    def take(self, topic: str, timeout: float | None) -> Result | None:
        """The next result of `topic` for the thinker, or None after `timeout`."""
        self.topics.check(topic)
        result = self.topics.take(topic, timeout)
        if result is None or not result.complete:  # an intermediate: task runs on
            return result
        delivered = result.stamp(Stamp.DELIVERED)
        if not result.keep_inputs:
            result.inputs = b""  # the caller has them; keep the record small
        if self.run is not None:  # at once: a result taken is never redelivered
            self.run.keep_taken(result)
        if self.journal is not None:
            self.journal.record_result("delivered", result)
        self.latency.stamped(result.task_id, Stamp.DELIVERED, delivered.time_ns)
        return result

    def flush(self) -> list[Result]:
        """Take every result waiting on any topic now."""
        taken = []
        for topic in self.topics.queued():
            while (result := self.take(topic, timeout=0)) is not None:
                taken.append(result)
        return taken

    def processed(self, result: Result) -> None:
        if not result.complete:
            return  # the hop ends with the task's final result
        event = result.stamp(Stamp.PROCESSED)
        self.late_stamp(result.task_id, Stamp.PROCESSED, event.time_ns)

    def late_stamp(self, task_id: str, name: str, time_ns: int) -> None:
        """Journal and record a client stamp made after the task was delivered."""
        if self.journal is not None:
            self.journal.record(
                "stamped", {"task_id": task_id, "name": name, "time_ns": time_ns}
            )
        self.latency.stamped(task_id, name, time_ns)
