"""Schemas of site files (`endpoints/*.yaml`) and federation files.

Every loader turns a bad file into a `ConfigError` that names the file and the key,
so a typo never surfaces later as a confusing failure on some remote worker.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from typing import Literal
from typing import TypeVar

import yaml
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError
from pydantic import field_validator

from colmena_fx.exceptions import ConfigError
from colmena_fx.models import ResourceRequirements

Model = TypeVar("Model", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LocalLinkConfig(_Strict):
    """How the client reaches an embedded endpoint on this machine."""

    #: `ipc`: a socket file in a private directory; `tcp`: a loopback port.
    link: Literal["ipc", "tcp"] = "ipc"
    tcp_host: str = "127.0.0.1"
    #: Seconds between endpoint heartbeats.
    heartbeat_s: float = Field(default=1.0, gt=0)
    #: Silence after which the endpoint is declared lost and its tasks failed.
    heartbeat_timeout_s: float = Field(default=15.0, gt=0)
    #: Seconds to wait for the endpoint process and its engine to come up.
    start_timeout_s: float = Field(default=60.0, gt=0)

    @field_validator("tcp_host")
    @classmethod
    def _loopback_only(cls, value: str) -> str:
        if value not in {"127.0.0.1", "localhost", "::1"} and not value.startswith(
            "127."
        ):
            raise ValueError(
                f"tcp_host must be a loopback address (127.0.0.0/8 or ::1), got "
                f"{value!r}: a local site is never exposed beyond this machine"
            )
        return value


class SiteConfig(_Strict):
    """One facility: how to reach it and the engine its endpoint runs."""

    name: str
    description: str = ""
    transport: Literal["local"] = "local"
    local: LocalLinkConfig = Field(default_factory=LocalLinkConfig)
    #: The `engine:` block of a Globus Compute endpoint's config.yaml, unchanged.
    engine: dict[str, Any]
    #: Where the file was read from, for error messages.
    source: Path | None = Field(default=None, exclude=True)

    @field_validator("engine")
    @classmethod
    def _engine_has_type(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "type" not in value:
            raise ValueError(
                "the engine block needs a 'type', e.g. GlobusComputeEngine, "
                "ProcessPoolEngine or ThreadPoolEngine"
            )
        return value

    def build_engine(self) -> Any:
        """The real Globus Compute engine object that this site's endpoint runs."""
        from globus_compute_endpoint.endpoint.config.dispatch import EngineDispatcher

        try:
            return EngineDispatcher.build_instance(dict(self.engine))
        except (ValidationError, ValueError, TypeError) as exc:
            where = self.source or self.name
            raise ConfigError(f"{where}: key 'engine': {exc}") from exc


class MethodRoute(_Strict):
    """Where a method runs and with what, optionally per topic."""

    site: str
    #: `module:function` to import; optional when the function is passed in Python.
    function: str | None = None
    #: Topic name -> site, overriding `site` for tasks of that topic.
    topics: dict[str, str] = Field(default_factory=dict)
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    #: Resubmissions after a lost worker or endpoint (never after a user error).
    max_retries: int = Field(default=0, ge=0)

    def site_for(self, topic: str) -> str:
        return self.topics.get(topic, self.site)

    def import_function(self) -> Callable[..., Any]:
        if self.function is None:
            raise ConfigError("no 'function' given")
        module_name, _, attr = self.function.partition(":")
        if not attr:
            raise ConfigError(
                f"function {self.function!r} must be written 'module:function'"
            )
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"cannot import function {self.function!r}: {exc}"
            ) from exc


class FederationConfig(_Strict):
    """The sites of a campaign and the route of every method."""

    name: str = "federation"
    #: Site files, relative to the federation file.
    sites: list[Path]
    methods: dict[str, MethodRoute] = Field(default_factory=dict)
    #: Parent directory of per-run directories (journal, endpoint logs).
    run_dir: Path = Path("runs")
    source: Path | None = Field(default=None, exclude=True)


def read_yaml(path: Path) -> dict[str, Any]:
    """The mapping at the top of a YAML file, or a ConfigError naming the file."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
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
    data.setdefault("name", path.stem)
    site = validate(SiteConfig, data, path)
    site.source = path
    return site


def load_federation(path: str | Path) -> tuple[FederationConfig, dict[str, SiteConfig]]:
    """The federation in `path` and its sites by name, cross-checked."""
    path = Path(path)
    config = validate(FederationConfig, read_yaml(path), path)
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
        for key, site_name in [("site", route.site), *route.topics.items()]:
            if site_name not in sites:
                where = "site" if key == "site" else f"topics.{key}"
                raise ConfigError(
                    f"{path}: key 'methods.{method}.{where}': unknown site "
                    f"{site_name!r}; the sites are {sorted(sites)}"
                )
    return config, sites
