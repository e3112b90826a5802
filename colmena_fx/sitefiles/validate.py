"""Check a cluster site file on any machine, by loading it as its endpoint would.

A site file's `engine:` block is what an administrator installs with
`globus-compute-endpoint` on the cluster, so it is checked the way the endpoint
reads it: through the endpoint's own dispatchers, into the real engine, provider and
launcher objects (nothing is started). Only the network lookups of `address:` are
answered with a stand-in, since the interface they name belongs to the cluster's
login node, not to the laptop or login node that checks the file.
"""

from __future__ import annotations

import contextvars
import copy
import difflib
import inspect
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from typing import ClassVar

import parsl.addresses
from globus_compute_endpoint.endpoint.config.dispatch import AddressDispatcher
from globus_compute_endpoint.endpoint.config.dispatch import EngineDispatcher
from globus_compute_endpoint.endpoint.config.dispatch import LauncherDispatcher
from globus_compute_endpoint.endpoint.config.dispatch import ProviderDispatcher
from globus_compute_endpoint.engines.base import GlobusComputeEngineBase
from parsl.launchers.base import Launcher
from parsl.providers.base import ExecutionProvider
from pydantic import ValidationError

from colmena_fx.config import SiteConfig
from colmena_fx.configfiles import load_site
from colmena_fx.configfiles import read_yaml
from colmena_fx.exceptions import ConfigError

#: What an address lookup (`address: {type: address_by_interface, ...}`) returns
#: while a site file is validated; the lookup's name and arguments are still checked.
STAND_IN_ADDRESS = "127.0.0.1"

#: `<your-allocation>`-style values that a site file ships for the user to replace.
_PLACEHOLDER = re.compile(r"<[A-Za-z][\w-]*>")
_STOOD_IN: contextvars.ContextVar[list[str]] = contextvars.ContextVar("stood_in")


@dataclass(frozen=True)
class ValidatedSite:
    """What validating a site file built, for a one-line report."""

    site: SiteConfig
    #: Class names of the objects built; None when the site has no such part.
    engine: str | None
    provider: str | None
    launcher: str | None
    #: One worker per accelerator, pinned by these ids (empty: not pinned).
    accelerators: tuple[str, ...]
    #: Address lookups answered with STAND_IN_ADDRESS, as calls:
    #: "address_by_interface(ifname='hsn0')".
    stand_ins: tuple[str, ...]
    #: Keys whose values still hold a `<placeholder>` to fill in before deploying.
    placeholders: tuple[str, ...]

    def summary(self) -> str:
        where = self.site.source or self.site.name
        if self.engine is None:
            return f"{where}: no engine block (its endpoint is run by someone else)"
        built = ", ".join(p for p in (self.engine, self.provider, self.launcher) if p)
        parts = [built]
        if self.accelerators:
            parts.append(f"{len(self.accelerators)} accelerators per node")
        if self.stand_ins:
            lookups = ", ".join(self.stand_ins)
            parts.append(f"{lookups} stood in by {STAND_IN_ADDRESS}")
        if self.placeholders:
            parts.append(f"to fill in: {', '.join(self.placeholders)}")
        if self.site.transport == "globus" and self.site.globus.endpoint_id is None:
            parts.append("not deployed yet (globus.endpoint_id is null)")
        return f"{where}: " + "; ".join(parts)


def validate_site_file(path: str | Path) -> ValidatedSite:
    """Load a site file and build its engine as the endpoint would, without starting it.

    Raises ConfigError naming the file and the (dotted) key at fault.
    """
    if "sites" in read_yaml(Path(path)):
        raise ConfigError(
            f"{path}: a federation file (it has 'sites'), not a site file; "
            "`colmena-fx endpoint list` checks it"
        )
    return validate_site(load_site(path))


def validate_site(site: SiteConfig) -> ValidatedSite:
    """Build `site`'s engine as the endpoint would; see validate_site_file."""
    where = site.source or site.name
    if site.engine is None:
        return ValidatedSite(site, None, None, None, (), (), ())
    stood_in: list[str] = []
    token = _STOOD_IN.set(stood_in)
    try:
        engine = _Engines.build_instance(copy.deepcopy(site.engine))
    except _FieldError as exc:
        raise ConfigError(f"{where}: key '{exc.key}': {exc.message}") from exc
    finally:
        _STOOD_IN.reset(token)
    provider = getattr(engine, "provider", None)
    launcher = getattr(provider, "launcher", None)
    executor = getattr(engine, "executor", None)
    return ValidatedSite(
        site=site,
        engine=type(engine).__name__,
        provider=type(provider).__name__ if provider is not None else None,
        launcher=type(launcher).__name__ if launcher is not None else None,
        accelerators=tuple(getattr(executor, "available_accelerators", ())),
        stand_ins=tuple(stood_in),
        placeholders=tuple(_placeholders(site.engine, "engine")),
    )


def _placeholders(value: Any, key: str) -> list[str]:
    if isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        return [k for name, v in items for k in _placeholders(v, f"{key}.{name}")]
    return [key] if isinstance(value, str) and _PLACEHOLDER.search(value) else []


class _FieldError(Exception):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


_UNEXPECTED = re.compile(r"unexpected keyword argument '(\w+)'|argument \"(\w+)\"")


class _Checked:
    """Mixin over the endpoint's dispatchers: same objects, errors that name the key.

    The dispatchers come untyped from globus-compute-endpoint: subclassing them and
    calling through to them are the module's only `type: ignore`s.

    The endpoint reports `'SrunLaunchr' is not a valid launcher` followed by every
    name in `parsl.launchers`, without saying where in the file it was.
    """

    _key: ClassVar[str]
    _name: str
    _source_module: Any
    #: Types offered when a `type:` is unknown.
    _base: ClassVar[type | None] = None

    @classmethod
    def build_instance(cls, input: Any) -> Any:
        cls._check(input)
        try:
            return super().build_instance(input)  # type: ignore[misc]
        except _FieldError:
            raise
        except (ValidationError, ValueError, TypeError) as exc:
            message = str(exc).strip()
            match = _UNEXPECTED.search(message)
            name = match and (match.group(1) or match.group(2))
            known = isinstance(input, dict) and name in input
            key = f"{cls._key}.{name}" if known else cls._key
            raise _FieldError(key, message) from exc

    @classmethod
    def _check(cls, input: Any) -> None:
        if not isinstance(input, dict):
            raise _FieldError(
                cls._key, f"expected a mapping with a 'type', got {input!r}"
            )
        if not isinstance(input.get("type"), str):
            raise _FieldError(
                f"{cls._key}.type", f"the {cls._name} needs a 'type' (a class name)"
            )
        kind = input["type"]
        if getattr(cls._source_module, kind, None) is None:
            choices = cls._choices()
            close = difflib.get_close_matches(kind, choices, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise _FieldError(
                f"{cls._key}.type",
                f"unknown {cls._name} type {kind!r}; {hint}"
                f"the {cls._name} types are: {', '.join(choices)}",
            )

    @classmethod
    def _choices(cls) -> list[str]:
        found = []
        for name in dir(cls._source_module):
            obj = getattr(cls._source_module, name)
            if name.startswith("_"):
                continue
            if cls._base is None:
                offered = callable(obj)
            else:
                offered = isinstance(obj, type) and issubclass(obj, cls._base)
            if offered and obj is not cls._base:
                found.append(name)
        return sorted(found)


class _Launchers(_Checked, LauncherDispatcher):  # type: ignore[misc]
    _key = "engine.provider.launcher"
    _base = Launcher


class _Providers(_Checked, ProviderDispatcher):  # type: ignore[misc]
    _key = "engine.provider"
    _base = ExecutionProvider
    _children = {"launcher": _Launchers}

    @classmethod
    def _check(cls, input: Any) -> None:
        super()._check(input)
        walltime = input.get("walltime")
        if walltime is not None and not isinstance(walltime, str):
            raise _FieldError(
                f"{cls._key}.walltime",
                f"got the number {walltime!r}; write the walltime in quotes, e.g. "
                "'01:00:00' (YAML reads an unquoted 01:00:00 as 3600)",
            )


def _stand_in(name: str, lookup: Callable[..., Any]) -> Callable[..., Any]:
    """`lookup`'s arguments checked as a call would check them; returns the stand-in."""
    signature = inspect.signature(lookup, eval_str=True)

    def stand_in(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{name}(): {exc}") from None
        for param, value in bound.arguments.items():
            wanted = signature.parameters[param].annotation
            accepted = (int, float) if wanted is float else wanted
            if isinstance(wanted, type) and not isinstance(value, accepted):
                raise TypeError(
                    f'{name}(): argument "{param}" must be {wanted.__name__}, '
                    f"got {value!r}"
                )
        call = ", ".join(f"{k}={v!r}" for k, v in bound.arguments.items())
        _STOOD_IN.get().append(f"{name}({call})")
        # Of the lookup's own type, so that the engine accepts what it would accept.
        if signature.return_annotation is str:
            return STAND_IN_ADDRESS
        return {STAND_IN_ADDRESS}

    return stand_in


_LOOKUPS = SimpleNamespace(
    **{
        name: _stand_in(name, obj)
        for name, obj in vars(parsl.addresses).items()
        if inspect.isfunction(obj) and obj.__module__ == parsl.addresses.__name__
    }
)


class _Addresses(_Checked, AddressDispatcher):  # type: ignore[misc]
    _key = "engine.address"
    _source_module = _LOOKUPS

    @classmethod
    def build_instance(cls, input: Any) -> Any:
        if isinstance(input, str):
            try:
                ipaddress.ip_address(input)
            except ValueError:
                raise _FieldError(
                    cls._key,
                    f"{input!r} is not an IP address; to look one up write e.g. "
                    "{type: address_by_interface, ifname: hsn0}",
                ) from None
        return super().build_instance(input)

    @classmethod
    def _check(cls, input: Any) -> None:
        if not isinstance(input, str):
            super()._check(input)


class _Engines(_Checked, EngineDispatcher):  # type: ignore[misc]
    _key = "engine"
    _base = GlobusComputeEngineBase
    _children = {"provider": _Providers, "address": _Addresses}

    @classmethod
    def _check(cls, input: Any) -> None:
        super()._check(input)
        if "provider" in input:  # the endpoint reads provider.type before building
            _Providers._check(input["provider"])
