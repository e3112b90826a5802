"""The options of one `submit`, checked and filled in from the method's route.

Checked in the caller's thread, before anything is stored or sent, so that a bad
option raises where it was written.
"""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from colmena_fx.exceptions import UnknownSiteError
from colmena_fx.exceptions import UsageError
from colmena_fx.methodroute import MethodRoute
from colmena_fx.models import FailureKind
from colmena_fx.models import ResourceRequirements


@dataclass(frozen=True)
class TaskRequest:
    """A task's arguments and options, as the federation will send it."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    resources: ResourceRequirements
    timeout_s: float | None
    #: None: the method's `retry_on`.
    retry_on: list[FailureKind] | None

    def sites(
        self, method: str, route: MethodRoute, topic: str, known: Collection[str]
    ) -> list[str]:
        """The sites a task of `topic` may run on, in order; all of them `known`."""
        candidates = route.sites_for(topic)
        for site in candidates:
            if site not in known:
                raise UnknownSiteError(
                    f"method {method!r} routes to unknown site {site!r}"
                )
        return candidates

    @classmethod
    def of(
        cls,
        method: str,
        route: MethodRoute,
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
        resources: ResourceRequirements | dict[str, Any] | None,
        timeout_s: float | None,
        max_retries: int | None,
        retry_on: Iterable[FailureKind | str] | None,
    ) -> TaskRequest:
        if kwargs is None:
            kwargs = {}
        elif not isinstance(kwargs, dict) or not all(
            isinstance(key, str) for key in kwargs
        ):
            raise UsageError(
                f"kwargs of {method!r} must be a dict of keyword arguments by "
                f"name, not {type(kwargs).__name__}"
            )
        if timeout_s is not None and not timeout_s > 0:
            raise UsageError(f"timeout_s must be a positive number, not {timeout_s!r}")
        if max_retries is not None and (
            not isinstance(max_retries, int) or max_retries < 0
        ):
            raise UsageError(f"max_retries must be a count >= 0, not {max_retries!r}")
        return cls(
            args=tuple(args),
            kwargs=dict(kwargs),
            resources=_resources(method, route, resources),
            timeout_s=timeout_s if timeout_s is not None else route.timeout_s,
            retry_on=None if retry_on is None else _kinds(retry_on),
        )


def _resources(
    method: str,
    route: MethodRoute,
    resources: ResourceRequirements | dict[str, Any] | None,
) -> ResourceRequirements:
    if resources is None:
        return route.resources
    if isinstance(resources, ResourceRequirements):
        return resources
    try:
        return ResourceRequirements.model_validate(resources)
    except ValidationError as exc:
        raise UsageError(f"resources of {method!r}: {exc}") from None


def _kinds(retry_on: Iterable[FailureKind | str]) -> list[FailureKind]:
    if isinstance(retry_on, str):
        retry_on = [retry_on]
    kinds = []
    for kind in retry_on:
        try:
            kinds.append(FailureKind(kind))
        except ValueError:
            raise UsageError(
                f"retry_on: {kind!r} is not a kind of failure; the kinds are "
                f"{[k.value for k in FailureKind]}"
            ) from None
    return kinds
