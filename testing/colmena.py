"""A Colmena program's task server for tests: a federation file with one
thread-pool site (quick to start) that runs Colmena's test methods."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from testing import colmena_tasks
from testing import tasks
from testing.sites import THREAD_POOL
from testing.sites import write_federation
from testing.sites import write_site

#: The functions the task server runs, as a Colmena program lists them.
METHODS: list[Callable[..., Any]] = [
    colmena_tasks.record_call,
    colmena_tasks.tagged,
    colmena_tasks.fail_until,
    colmena_tasks.wait_for_file,
    colmena_tasks.with_x,
    tasks.echo,
    tasks.fail_with,
    tasks.sleep_then,
]
#: Retries within milliseconds, so that retry tests take no time.
QUICK_RETRY: dict[str, float] = {"initial_s": 0.01, "max_s": 0.02}


def write_colmena_federation(directory: Path, **settings: Any) -> Path:
    """`directory/federation.yaml`: a thread-pool site runs every function of
    `METHODS` (given in Python, as Colmena's task servers take them)."""
    site = write_site(directory, "cpu", THREAD_POOL)
    methods = {function.__name__: {"site": "cpu"} for function in METHODS}
    return write_federation(directory, [site], methods, **settings)


#: The fields of Colmena 0.7's `Result`, its `Timestamps` and its `TimeSpans`:
#: the keys of the result files its analysis notebooks read.
COLMENA_FIELDS = {
    "task_id", "inputs", "value", "method", "success", "complete", "task_info",
    "resources", "failure_info", "worker_info", "message_sizes", "timestamp",
    "time", "serialization_method", "keep_inputs", "proxystore_name",
    "proxystore_config", "proxystore_threshold", "topic", "max_retries", "retries",
}  # fmt: skip
COLMENA_TIMESTAMPS = {
    "created", "input_received", "compute_started", "compute_ended",
    "result_sent", "result_received", "start_task_submission", "task_received",
}  # fmt: skip
COLMENA_SPANS = {
    "running", "serialize_inputs", "deserialize_inputs", "serialize_results",
    "deserialize_results", "async_resolve_proxies", "proxy", "additional",
}  # fmt: skip
