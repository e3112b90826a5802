"""Where a method runs and with what: its route in a federation file (`methods:`).

The route's own validators check what one route can say for itself (one way to
name its sites, no site twice); `configfiles` checks it against the sites.
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Callable
from typing import Any
from typing import Literal

from pydantic import Field
from pydantic import model_validator

from colmena_fx.data.schemas import MethodData
from colmena_fx.exceptions import ConfigError
from colmena_fx.models import FailureKind
from colmena_fx.models import ResourceRequirements
from colmena_fx.schema import StrictModel

#: How a method listed on several sites picks one for each task (README, "When a
#: site fails"): the first usable site in order; each in turn; the fewest tasks in
#: flight per worker; the lowest predicted completion time.
RoutingPolicy = Literal["failover", "round_robin", "least_loaded", "fastest"]


class MethodRoute(StrictModel):
    """Where a method runs and with what, optionally per topic."""

    #: The one site of the method; `sites` lists several instead.
    site: str | None = None
    #: Sites the method may run on, in order of preference.
    sites: list[str] = Field(default_factory=list)
    #: How one of `sites` is picked; `failover` unless set.
    policy: RoutingPolicy = "failover"
    #: `module:function` to import; optional when the function is passed in Python.
    function: str | None = None
    #: Topic name -> site or sites, overriding the method's for tasks of that topic.
    topics: dict[str, str | list[str]] = Field(default_factory=dict)
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    #: Values for a Globus Compute endpoint's user config template (globus sites),
    #: over the site's own `globus.user_endpoint_config`.
    user_endpoint_config: dict[str, Any] = Field(default_factory=dict)
    #: Resubmissions of a task that failed for one of the reasons in `retry_on`.
    max_retries: int = Field(default=0, ge=0)
    #: Which failures a resubmission may cure: by default a lost worker or
    #: endpoint; add `user` to retry a function that raised (as Colmena does).
    retry_on: list[FailureKind] = Field(
        default_factory=lambda: [FailureKind.WORKER_LOST, FailureKind.ENDPOINT_LOST]
    )
    #: Keep each task's arguments on its delivered result (`result.args`,
    #: `result.kwargs`); off, they are dropped on delivery to save memory.
    keep_inputs: bool = False
    #: Seconds a task may take from `submit` to its result; then it fails as a
    #: `timeout` and its site is asked to cancel it. Unset: no limit.
    timeout_s: float | None = Field(default=None, gt=0)
    #: Seconds a task may wait for a usable site when none of its sites is; unset,
    #: the federation's `deadline_s`.
    deadline_s: float | None = Field(default=None, gt=0)
    #: Which data store carries this method's large values, and from what size.
    data: MethodData = Field(default_factory=MethodData)
    #: What becomes of the items a generator yields: unset, intermediate results,
    #: live on local sites when the function is a generator function; `true`,
    #: live also for a function that only returns a generator (a decorated one);
    #: `false`, one list that is the task's value (README, "Streaming results").
    stream: bool | None = None

    @model_validator(mode="after")
    def _one_way_to_name_sites(self) -> MethodRoute:
        if self.site is not None and self.sites:
            raise ValueError("give 'site' (one) or 'sites' (a list), not both")
        if self.site is None and not self.sites:
            raise ValueError("give 'site' or 'sites': where the method runs")
        for key, names in [("sites", self.sites_for("")), *self.topics.items()]:
            names = [names] if isinstance(names, str) else names
            if not names:
                raise ValueError(f"'{key}' lists no site")
            if len(set(names)) != len(names):
                raise ValueError(f"'{key}' lists a site twice: {names}")
        return self

    def sites_for(self, topic: str) -> list[str]:
        """The candidate sites of a task of `topic`, in order of preference."""
        chosen = self.topics.get(topic)
        if chosen is None:
            return list(self.sites) if self.site is None else [self.site]
        return [chosen] if isinstance(chosen, str) else list(chosen)

    def all_sites(self) -> list[str]:
        """Every site any task of the method may run on, without repeats."""
        names = self.sites_for("")
        for chosen in self.topics.values():
            names += [chosen] if isinstance(chosen, str) else chosen
        return list(dict.fromkeys(names))

    def import_function(self) -> Callable[..., Any]:
        if self.function is None:
            raise ConfigError("no 'function' given")
        module_name, _, attr = self.function.partition(":")
        if not attr:
            raise ConfigError(
                f"function {self.function!r} must be written 'module:function'"
            )
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(
                f"cannot import function {self.function!r}: {exc} (modules are "
                f"looked up on sys.path: the working directory and PYTHONPATH)"
            ) from exc
        except Exception as exc:  # the module's own code failed as it was imported
            raise ConfigError(
                f"cannot import function {self.function!r}: importing module "
                f"{module_name!r} raised {type(exc).__name__}{_raised_at(exc)}: "
                f"{exc}; fix the module (import it in Python to see the traceback)"
            ) from exc
        try:
            function: Callable[..., Any] = getattr(module, attr)
        except AttributeError as exc:
            raise ConfigError(
                f"cannot import function {self.function!r}: {exc}"
            ) from exc
        if not callable(function):
            raise ConfigError(
                f"{self.function!r} is a {type(function).__name__}, not a function"
            )
        return function


def _raised_at(exc: BaseException) -> str:
    """` at FILE:LINE` of the innermost frame that raised `exc`, for one-line errors."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
