"""Reading site and federation files into their schemas (`config`).

Every loader turns a bad file into a `ConfigError` that names the file and the key:
a file that cannot be read or is not UTF-8, invalid YAML, a site file given for a
federation file (or the reverse), a bad key, a route to an unknown site or store.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from typing import TypeVar

import yaml
from pydantic import BaseModel
from pydantic import ValidationError

from colmena_fx.config import FederationConfig
from colmena_fx.config import SiteConfig
from colmena_fx.data.schemas import CLIENT
from colmena_fx.exceptions import ConfigError

Model = TypeVar("Model", bound=BaseModel)


#: Keys only a site file has: a federation file holding one was given a site file.
_SITE_ONLY_KEYS = {"engine", "transport", "local", "globus"}


def read_yaml(path: Path) -> dict[str, Any]:
    """The mapping at the top of a YAML file, or a ConfigError naming the file."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")  # YAML is UTF-8, whatever the locale says
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}): "
            f"save the file as UTF-8"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return data


def validate(model: type[Model], data: dict[str, Any], path: Path) -> Model:
    """Validate `data` as `model`, turning pydantic's report into file-and-key lines."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"]) or "(top level)"
            lines.append(f"{path}: key '{key}': {error['msg']}")
        raise ConfigError("\n".join(lines)) from None


def load_site(path: str | Path) -> SiteConfig:
    path = Path(path)
    data = read_yaml(path)
    if "sites" in data:
        raise ConfigError(
            f"{path}: a federation file (it has 'sites'), not a site file: pass one "
            f"of the site files it lists"
        )
    data.setdefault("name", path.stem)
    site = validate(SiteConfig, data, path)
    site.source = path
    attach = site.local.attach
    if attach is not None and not attach.is_absolute():
        # As the federation file's site paths are: wherever the client runs.
        site.local.attach = Path(os.path.abspath(path.parent / attach))
    return site


def load_federation(path: str | Path) -> tuple[FederationConfig, dict[str, SiteConfig]]:
    """The federation in `path` and its sites by name, cross-checked."""
    path = Path(path)
    data = read_yaml(path)
    site_keys = sorted(_SITE_ONLY_KEYS & data.keys())
    if site_keys and "sites" not in data:
        raise ConfigError(
            f"{path}: a site file (it has '{site_keys[0]}' and no 'sites'), not a "
            f"federation file: pass a federation file, which lists its site files "
            f"under 'sites' (such as endpoints/federation.yaml)"
        )
    config = validate(FederationConfig, data, path)
    config.source = path
    sites: dict[str, SiteConfig] = {}
    for site_path in config.sites:
        full = site_path if site_path.is_absolute() else path.parent / site_path
        if not full.exists():
            raise ConfigError(
                f"{path}: key 'sites': site file {full} does not exist "
                f"(paths are relative to the federation file)"
            )
        site = load_site(full)
        if site.name in sites:
            raise ConfigError(
                f"{path}: key 'sites': two site files are named {site.name!r}"
            )
        sites[site.name] = site
    for method, route in config.methods.items():
        own = "site" if route.site is not None else "sites"
        for key, chosen in [(own, route.sites_for("")), *route.topics.items()]:
            where = key if key == own else f"topics.{key}"
            for site_name in [chosen] if isinstance(chosen, str) else chosen:
                if site_name not in sites:
                    raise ConfigError(
                        f"{path}: key 'methods.{method}.{where}': unknown site "
                        f"{site_name!r}; the sites are {sorted(sites)}"
                    )
    _check_data(config, sites, path)
    return config, sites


def _check_data(
    config: FederationConfig, sites: dict[str, SiteConfig], path: Path
) -> None:
    """Every store name exists and every chosen store reaches its method's sites."""
    known = {CLIENT, *sites}
    for name, store in config.data.stores.items():
        for site in store.sites or ():
            if site not in known:
                raise ConfigError(
                    f"{path}: key 'data.stores.{name}.sites': unknown site {site!r}; "
                    f"use {sorted(known)}"
                )
    for method, route in config.methods.items():
        chosen = route.data.store
        if chosen is not None and chosen not in config.data.stores:
            raise ConfigError(
                f"{path}: key 'methods.{method}.data.store': unknown store "
                f"{chosen!r}; 'data.stores' declares {sorted(config.data.stores)}"
            )
        if chosen is None:
            continue
        declared = config.data.stores[chosen]
        for site in route.all_sites():
            for party in (CLIENT, site):
                if not declared.reaches(party):
                    raise ConfigError(
                        f"{path}: key 'methods.{method}.data.store': store {chosen!r} "
                        f"does not reach {party!r} (its 'sites' are "
                        f"{declared.sites}), but {method!r} runs on {site!r} for "
                        f"a thinker on the client"
                    )


def resolve_functions(
    config: FederationConfig, methods: list[Callable[..., Any]]
) -> dict[str, Callable[..., Any]]:
    """Each routed method's function: given in Python, or imported by the route's
    `function`; a `ConfigError` names the method and what to add."""
    where = config.source or "the federation file"
    given = {fn.__name__: fn for fn in methods}
    for name in given:
        if name not in config.methods:
            raise ConfigError(
                f"{where}: method {name!r} is not routed: add 'methods.{name}.site'"
            )
    functions: dict[str, Callable[..., Any]] = {}
    for name, route in config.methods.items():
        if name in given:
            functions[name] = given[name]
        elif route.function is not None:
            try:
                functions[name] = route.import_function()
            except ConfigError as exc:
                raise ConfigError(  # chained to the module's own error
                    f"{where}: key 'methods.{name}.function': {exc}"
                ) from exc.__cause__
        else:
            raise ConfigError(
                f"{where}: method {name!r} has no function: pass it in "
                f"Federation(methods=[...]) or set 'methods.{name}.function'"
            )
    return functions
