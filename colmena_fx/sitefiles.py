"""Cluster site files: check them on any machine, turn them into an endpoint's files.

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
import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from typing import ClassVar

import parsl.addresses
import yaml
from globus_compute_endpoint.endpoint.config.dispatch import AddressDispatcher
from globus_compute_endpoint.endpoint.config.dispatch import EngineDispatcher
from globus_compute_endpoint.endpoint.config.dispatch import LauncherDispatcher
from globus_compute_endpoint.endpoint.config.dispatch import ProviderDispatcher
from globus_compute_endpoint.engines.base import GlobusComputeEngineBase
from parsl.launchers.base import Launcher
from parsl.providers.base import ExecutionProvider
from pydantic import ValidationError

from colmena_fx.config import SiteConfig
from colmena_fx.config import load_federation
from colmena_fx.config import load_site
from colmena_fx.config import read_yaml
from colmena_fx.exceptions import ConfigError

#: What an address lookup (`address: {type: address_by_interface, ...}`) returns
#: while a site file is validated; the lookup's name and arguments are still checked.
STAND_IN_ADDRESS = "127.0.0.1"

#: Provider settings that a task submission may override through the endpoint's
#: user config template (the SDK's `user_endpoint_config`), under these names.
TEMPLATE_VARIABLES = ("account", "queue", "partition", "qos", "walltime", "worker_init")

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
            return super().build_instance(input)
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


class _Launchers(_Checked, LauncherDispatcher):
    _key = "engine.provider.launcher"
    _base = Launcher


class _Providers(_Checked, ProviderDispatcher):
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


class _Addresses(_Checked, AddressDispatcher):
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


class _Engines(_Checked, EngineDispatcher):
    _key = "engine"
    _base = GlobusComputeEngineBase
    _children = {"provider": _Providers, "address": _Addresses}

    @classmethod
    def _check(cls, input: Any) -> None:
        super()._check(input)
        if "provider" in input:  # the endpoint reads provider.type before building
            _Providers._check(input["provider"])


# --- Rendering the endpoint's files ----------------------------------------------

CONFIG_FILE = "config.yaml"
TEMPLATE_FILE = "user_config_template.yaml.j2"
SCHEMA_FILE = "user_config_schema.json"

#: Scale-down of an idle user endpoint, as in the endpoint's shipped template:
#: it stops after 10 idle heartbeats (about 5 min) and restarts with the next task.
_USER_ENDPOINT_SETTINGS = {"idle_heartbeats_soft": 10, "idle_heartbeats_hard": 5760}
_WALLTIME = r"^(\d+-)?\d+(:\d+){0,2}$"


def render_endpoint_files(site: SiteConfig, out_dir: str | Path) -> list[Path]:
    """Write what `globus-compute-endpoint configure` installs for this site.

    `config.yaml` configures the endpoint (a template-capable one: no engine); the
    engine block goes into `user_config_template.yaml.j2`, from which the endpoint
    renders each user endpoint's config. The provider settings in TEMPLATE_VARIABLES
    become template variables defaulting to the site file's values, and
    `user_config_schema.json` says which values a task submission may send.
    """
    where = site.source or site.name
    if site.engine is None:
        raise ConfigError(f"{where}: no 'engine' block: there is nothing to render")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    engine = copy.deepcopy(site.engine)
    provider = engine.get("provider")
    defaults: dict[str, Any] = {}
    if isinstance(provider, dict):
        for name in TEMPLATE_VARIABLES:
            if provider.get(name) is not None:
                defaults[name] = provider[name]
                provider[name] = _token(name)

    files = {
        CONFIG_FILE: _config_yaml(site),
        TEMPLATE_FILE: _template(site, engine, defaults),
        SCHEMA_FILE: json.dumps(_schema(defaults), indent=2) + "\n",
    }
    written = []
    for name, text in files.items():
        path = out / name
        path.write_text(text)
        written.append(path)
    return written


def deployment_commands(site: SiteConfig, out_dir: str | Path) -> list[str]:
    """The commands that install and start the rendered endpoint, on the cluster."""
    out = Path(out_dir)

    def path(name: str) -> str:
        return shlex.quote(str(out / name))

    return [
        f"globus-compute-endpoint configure {site.name}"
        f" --core-config {path(CONFIG_FILE)}"
        f" --template-config {path(TEMPLATE_FILE)}"
        f" --schema-config {path(SCHEMA_FILE)}",
        f"globus-compute-endpoint render-user-config -e {site.name}",
        f"globus-compute-endpoint start {site.name}",
    ]


def _config_yaml(site: SiteConfig) -> str:
    return (
        f"# Globus Compute endpoint for colmena-fx site {site.name!r}, written by\n"
        "# `colmena-fx endpoint render`. No engine here: the endpoint starts one user\n"
        f"# endpoint per user from {TEMPLATE_FILE}.\n"
    ) + yaml.safe_dump({"display_name": f"colmena-fx {site.name}"}, sort_keys=False)


def _token(name: str) -> str:
    return f"COLMENA_FX_TEMPLATE_VARIABLE_{name}"


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (scheduler options, scripts) as `|` blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _template(
    site: SiteConfig, engine: dict[str, Any], defaults: dict[str, Any]
) -> str:
    body = yaml.dump(
        {**_USER_ENDPOINT_SETTINGS, "engine": engine},
        Dumper=_Dumper,
        sort_keys=False,
        width=1000,
    )
    # The endpoint hands every user value to Jinja as a JSON string, quotes
    # included (a YAML double-quoted scalar); the defaults are written the same way,
    # as Jinja string literals whose value is that JSON text.
    pieces = re.split(r"(COLMENA_FX_TEMPLATE_VARIABLE_\w+)", body)
    for i, piece in enumerate(pieces):
        if i % 2:
            name = piece.removeprefix(_token(""))
            literal = json.dumps(json.dumps(defaults[name]))
            pieces[i] = f"{{{{ {name} | default({literal}) }}}}"
        elif any(mark in piece for mark in ("{{", "{%", "{#")):
            if "endraw" in piece:
                raise ConfigError(
                    f"{site.source or site.name}: key 'engine': a value contains "
                    "'endraw', which cannot be written into a Jinja template"
                )
            pieces[i] = f"{{% raw %}}{piece}{{% endraw %}}"
    names = ", ".join(defaults) or "(none)"
    header = (
        "{#-\n"
        f"  User endpoint config template for colmena-fx site {site.name!r}, written\n"
        f"  by `colmena-fx endpoint render` from {site.source or site.name}; change\n"
        "  the site file and render again rather than editing this file.\n\n"
        f"  Variables a task submission may set: {names}.\n"
        "  Each defaults to the site file's value. The endpoint checks user values\n"
        f"  against {SCHEMA_FILE}, then passes them as JSON strings, quotes\n"
        "  included, so the defaults are written that way too.\n"
        "-#}\n"
    )
    return header + "".join(pieces)


def _schema(defaults: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name, value in defaults.items():
        prop: dict[str, Any] = {"type": "string", "default": value}
        if name == "walltime":
            prop["pattern"] = _WALLTIME
        properties[name] = prop
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }


# --- Listing a federation ---------------------------------------------------------


@dataclass(frozen=True)
class SiteRow:
    """One site of a federation, as `colmena-fx endpoint list` shows it."""

    name: str
    transport: str
    endpoint_id: str | None
    #: The engine block's `type`, or None when someone else runs the endpoint.
    engine: str | None
    description: str
    #: Methods routed here: "train", or "infer (topic urgent)" for a topic route.
    methods: tuple[str, ...]


def federation_sites(federation_file: str | Path) -> list[SiteRow]:
    """The sites of a federation file, in its order, with the methods routed to each."""
    config, sites = load_federation(federation_file)
    routed: dict[str, list[str]] = {name: [] for name in sites}
    for method, route in config.methods.items():
        routed[route.site].append(method)
        for topic, site_name in route.topics.items():
            routed[site_name].append(f"{method} (topic {topic})")
    rows = []
    for name, site in sites.items():
        endpoint_id = site.globus.endpoint_id
        rows.append(
            SiteRow(
                name=name,
                transport=site.transport,
                endpoint_id=str(endpoint_id) if endpoint_id else None,
                engine=site.engine["type"] if site.engine else None,
                description=site.description,
                methods=tuple(routed[name]),
            )
        )
    return rows
