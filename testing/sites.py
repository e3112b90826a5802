"""Site and federation files for tests, written into a temporary directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from colmena_fx.federation import Federation
from colmena_fx.models import Result

#: Quick to start: plain processes, no Parsl interchange.
PROCESS_POOL: dict[str, Any] = {"type": "ProcessPoolEngine", "max_workers": 2}
THREAD_POOL: dict[str, Any] = {"type": "ThreadPoolEngine", "max_workers": 4}
#: The real HPC engine: Parsl's HighThroughputExecutor on this machine.
HTEX: dict[str, Any] = {
    "type": "GlobusComputeEngine",
    "max_workers_per_node": 2,
    "address": "127.0.0.1",
    "heartbeat_period": 1,
    "heartbeat_threshold": 5,
    "job_status_kwargs": {"strategy_period": 0.5},
    "provider": {
        "type": "LocalProvider",
        "init_blocks": 1,
        "min_blocks": 1,
        "max_blocks": 1,
    },
}


def write_site(
    directory: Path, name: str, engine: dict[str, Any], **settings: Any
) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "engine": engine, **settings}))
    return path


def write_federation(
    directory: Path,
    sites: list[Path],
    methods: dict[str, dict[str, Any]],
    name: str = "test",
    **settings: Any,
) -> Path:
    """A federation file; `settings` are further top-level keys (`data`, ...)."""
    path = directory / "federation.yaml"
    body = {
        "name": name,
        "sites": [str(site) for site in sites],
        "methods": methods,
        "run_dir": str(directory / "runs"),
        **settings,
    }
    path.write_text(yaml.safe_dump(body, sort_keys=False))  # store order matters
    return path


#: The `make_federation` fixture: methods, optional sites by name, site settings.
FederationFactory = Callable[..., Federation]


def collect(federation: Federation, count: int, timeout: float = 60) -> list[Result]:
    """The next `count` results of the default topic, each within `timeout` s."""
    results = []
    for _ in range(count):
        result = federation.get_result(timeout=timeout)
        assert result is not None, f"only {len(results)} of {count} results arrived"
        results.append(result)
    return results
