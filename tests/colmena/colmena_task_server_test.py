"""Colmena's task server replaced by a federation file:
`colmena_fx.colmena.task_server`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from colmena_fx.colmena.queue import PipeQueues
from colmena_fx.colmena.task_server import FederationTaskServer
from colmena_fx.colmena.task_server import ParslTaskServer
from colmena_fx.colmena.task_server.base import MethodSpec
from colmena_fx.exceptions import UsageError
from colmena_fx.federation import Federation
from testing import colmena_tasks
from testing import tasks
from testing.colmena import METHODS
from testing.colmena import write_colmena_federation

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def servers() -> Iterator[list[FederationTaskServer]]:
    """Task servers a test makes; each is stopped afterwards."""
    made: list[FederationTaskServer] = []
    yield made
    for server in made:
        server.stop()


def test_start_then_join_after_the_kill_signal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, servers: list[FederationTaskServer]
) -> None:
    """A Colmena program's lifecycle, with the federation file as its config."""
    write_colmena_federation(tmp_path)
    # Run from the federation's directory, as a program would; the workers
    # still import the test functions from the repository.
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.chdir(tmp_path)
    queues = PipeQueues(["sim"])
    doer = FederationTaskServer(METHODS, queues, "federation.yaml")
    servers.append(doer)
    doer.start()
    assert doer.is_alive()
    queues.send_inputs(3, method="echo", topic="sim")
    assert queues.get_result(topic="sim", timeout=30).value == 3
    # The queues' topics are the federation's: a native call on a typo'd topic
    # fails instead of waiting for ever
    with pytest.raises(UsageError, match=r"unknown topic 'simm'"):
        doer.federation.submit("echo", 1, topic="simm")
    with pytest.raises(UsageError, match=r"unknown topic 'simm'"):
        doer.federation.get_result("simm", timeout=0)

    queues.send_kill_signal()
    doer.join(timeout=60)
    assert not doer.is_alive()
    with pytest.raises(RuntimeError, match="start"):  # the sites are stopped
        queues.send_inputs(4, method="echo", topic="sim")


def test_parsl_task_server_says_what_to_write() -> None:
    with pytest.raises(UsageError, match=r"FederationTaskServer\(methods, queues"):
        ParslTaskServer([tasks.echo], PipeQueues(), object())


def test_method_with_options_refused_with_the_fix(tmp_path: Path) -> None:
    path = write_colmena_federation(tmp_path)
    methods = [(tasks.echo, {"executors": ["gpu"]}), colmena_tasks.record_call]
    with pytest.raises(UsageError, match=r"'echo'.*executors.*federation file"):
        FederationTaskServer(methods, PipeQueues(), path)  # type: ignore[arg-type]
    # Without options, a (function, {}) pair is the function
    pairs: list[MethodSpec] = [(function, {}) for function in METHODS]
    server = FederationTaskServer(pairs, PipeQueues(), path)
    assert server.federation.methods == sorted(f.__name__ for f in METHODS)


def test_queue_topics_declared_on_the_federation(tmp_path: Path) -> None:
    """A federation file without `topics` takes the queues'."""
    path = write_colmena_federation(tmp_path)
    server = FederationTaskServer(METHODS, PipeQueues(["sim", "ml"]), path)
    assert set(server.federation.config.topics) == {"sim", "ml"}
    # ... given a Federation not yet started, too
    federation = Federation.from_file(path, methods=METHODS)
    FederationTaskServer([], PipeQueues(["plan"]), federation)
    assert federation.config.topics == ["plan"]


def test_queue_topics_must_be_those_the_file_declares(tmp_path: Path) -> None:
    path = write_colmena_federation(tmp_path, topics=["sim"])
    with pytest.raises(UsageError, match=r"\['ml'\].*'topics'"):
        FederationTaskServer(METHODS, PipeQueues(["sim", "ml"]), path)
    server = FederationTaskServer(METHODS, PipeQueues(["sim"]), path)
    assert server.federation.config.topics == ["sim"]
