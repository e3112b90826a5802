"""What of a task's resources its site's engine is sent.

A task's `ResourceRequirements` describe the task; which of them an engine takes
as a `resource_specification` depends on the engine, and an engine refuses a task
that carries a key it does not know: thread and process pools take none, Parsl's
HighThroughputExecutor (`GlobusComputeEngine`) only `priority`, its MPI mode
(`GlobusMPIEngine`) the rank counts too. So a task with `num_nodes` runs on any
site, the MPI engine places it, and its function still reads every field
(`taskcontext.current_task().resources`, e.g. an executable's launch template).
"""

from __future__ import annotations

from typing import Any

from colmena_fx.config import SiteConfig
from colmena_fx.models import ResourceRequirements

#: The keys each engine accepts; an engine not listed is sent every key.
ACCEPTED_KEYS: dict[str, frozenset[str]] = {
    "ThreadPoolEngine": frozenset(),
    "ProcessPoolEngine": frozenset(),
    "GlobusComputeEngine": frozenset({"priority"}),
    "GlobusMPIEngine": frozenset(
        {"num_nodes", "ranks_per_node", "num_ranks", "launcher_options", "priority"}
    ),
}


def engine_specification(
    resources: ResourceRequirements, site: SiteConfig
) -> dict[str, Any]:
    """The `resource_specification` for `site`'s engine (all of it when the
    site file does not say which engine its endpoint runs)."""
    spec = resources.to_resource_specification()
    engine_type = (site.engine or {}).get("type")
    accepted = ACCEPTED_KEYS.get(engine_type) if engine_type else None
    if accepted is None:
        return spec
    return {key: value for key, value in spec.items() if key in accepted}
