"""Fixtures of the tests of `colmena_fx.colmena`: a Colmena program's queues and
task server, on a thread-pool site (quick to start).

One task server serves each test module (a federation takes seconds to start);
each test gets its queues back empty, with their defaults, and fails if it left a
result behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from colmena_fx.colmena.queue import PipeQueues
from colmena_fx.colmena.task_server import FederationTaskServer
from testing.colmena import METHODS
from testing.colmena import QUICK_RETRY
from testing.colmena import write_colmena_federation

#: The topics of the shared queues ("default" besides).
TOPICS = ["a", "b", "drain"]


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[PipeQueues, FederationTaskServer]]:
    """Queues and the task server they are bound to, for the whole module."""
    path = write_colmena_federation(
        tmp_path_factory.mktemp("colmena"), retry=QUICK_RETRY
    )
    queues = PipeQueues(TOPICS)
    server = FederationTaskServer(METHODS, queues, path)
    server.start()
    yield queues, server
    queues.send_kill_signal()
    server.join(timeout=60)
    server.stop()  # in case join timed out


@pytest.fixture
def queues(served: tuple[PipeQueues, FederationTaskServer]) -> Iterator[PipeQueues]:
    """The shared queues, as a new `PipeQueues(TOPICS)` would be; checked empty
    after the test."""
    shared, _ = served
    yield shared
    left = shared.active_count
    shared.wait_until_done(timeout=30)
    shared.flush()
    shared.keep_inputs = True
    shared.role = "any"
    assert left == 0, f"the test left {left} results untaken"


@pytest.fixture
def server(
    served: tuple[PipeQueues, FederationTaskServer], queues: PipeQueues
) -> FederationTaskServer:
    return served[1]


@pytest.fixture
def gate(tmp_path: Path, queues: PipeQueues) -> Iterator[Path]:
    """A file that `wait_for_file` tasks wait for; created at teardown at the
    latest (before `queues` waits for the last results), so that no task
    outlives its test."""
    path = tmp_path / "gate"
    yield path
    path.touch()
