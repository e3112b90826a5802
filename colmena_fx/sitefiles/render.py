"""The files an administrator installs with `globus-compute-endpoint` for a site."""

from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from colmena_fx.config import SiteConfig
from colmena_fx.exceptions import ConfigError

#: Provider settings that a task submission may override through the endpoint's
#: user config template (the SDK's `user_endpoint_config`), under these names.
TEMPLATE_VARIABLES = ("account", "queue", "partition", "qos", "walltime", "worker_init")

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
