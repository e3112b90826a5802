"""Schemas of site files (`endpoints/*.yaml`) and federation files.

`configfiles` reads the files into these models; their validators' messages become
`ConfigError`s that name the file and the key, so a typo never surfaces later as a
confusing failure on some remote worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from typing import Literal
from uuid import UUID

from pydantic import Field
from pydantic import ValidationError
from pydantic import field_validator
from pydantic import model_validator

from colmena_fx.clocksetting import ClockSetting
from colmena_fx.data.schemas import CLIENT
from colmena_fx.data.schemas import DataConfig
from colmena_fx.exceptions import ConfigError
from colmena_fx.limits import SUBMIT_LIMIT_BYTES
from colmena_fx.methodroute import MethodRoute
from colmena_fx.schema import StrictModel
from colmena_fx.units import parse_size


class RestartConfig(StrictModel):
    """How a local site whose endpoint died is brought back."""

    #: Restarts tried in a row before the site stays lost; 0 turns restarting off.
    attempts: int = Field(default=5, ge=0)
    #: Wait before the first restart; doubled after each failed one, up to the max.
    backoff_initial_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=60.0, gt=0)


class LocalLinkConfig(StrictModel):
    """How the client reaches an endpoint on this machine: one it starts (embedded),
    or one started with `colmena-fx endpoint start` (`attach`)."""

    #: `ipc`: a socket file in a private directory; `tcp`: a loopback port.
    link: Literal["ipc", "tcp"] = "ipc"
    tcp_host: str = "127.0.0.1"
    #: Seconds between endpoint heartbeats.
    heartbeat_s: float = Field(default=1.0, gt=0)
    #: Silence after which the endpoint is declared lost and its tasks failed.
    heartbeat_timeout_s: float = Field(default=15.0, gt=0)
    #: Seconds to wait for the endpoint process and its engine to come up.
    start_timeout_s: float = Field(default=60.0, gt=0)
    #: With `link: tcp`, the port to listen on; unset, a free one is chosen.
    tcp_port: int | None = Field(default=None, ge=1, le=65535)
    #: With `link: tcp`, `host:port` the client connects to instead of the
    #: endpoint's own port: the local end of an SSH tunnel, or a proxy. The link
    #: stays encrypted and authenticated end to end; the middle only forwards bytes.
    connect_via: str | None = None
    #: Extra environment variables for the endpoint process, its engine and its
    #: workers (OMP_NUM_THREADS, CUDA_VISIBLE_DEVICES, ...), over the ones it
    #: inherits; PATH and PYTHONPATH still get the client's entries in front.
    env: dict[str, str] = Field(default_factory=dict)
    #: Restarting an endpoint that died (on by default).
    restart: RestartConfig = Field(default_factory=RestartConfig)
    #: The connection file of an endpoint started with `colmena-fx endpoint
    #: start`; the site's transport attaches to it instead of starting its own
    #: (relative to the site file's directory).
    attach: Path | None = None
    #: Bytes of results (or a size such as "64 MB") an endpoint keeps in memory for
    #: a client that is away (or has not acknowledged them yet); beyond that it
    #: spills them to files in its run directory until they are acknowledged.
    buffer_limit: int = Field(default=64 * 10**6, ge=0)

    @field_validator("tcp_host")
    @classmethod
    def _loopback_only(cls, value: str) -> str:
        return _loopback(value, "tcp_host")

    @field_validator("buffer_limit", mode="before")
    @classmethod
    def _size(cls, value: Any) -> Any:
        return parse_size(value) if isinstance(value, str) else value

    @field_validator("connect_via")
    @classmethod
    def _host_and_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"connect_via must be 'host:port', got {value!r}")
        _loopback(host.strip("[]"), "connect_via")
        return value

    @field_validator("env", mode="before")
    @classmethod
    def _numbers_as_strings(cls, value: Any) -> Any:
        # `OMP_NUM_THREADS: 4` in YAML is a number; the environment holds its text.
        if isinstance(value, dict):
            return {
                key: str(item)
                if isinstance(item, int | float) and not isinstance(item, bool)
                else item
                for key, item in value.items()
            }
        return value

    @field_validator("env")
    @classmethod
    def _environment_can_hold(cls, value: dict[str, str]) -> dict[str, str]:
        # Checked here, not when the endpoint is spawned: there a bad entry is an
        # "embedded null byte" from deep inside subprocess, naming nothing.
        for key, item in value.items():
            if not key or "=" in key or "\0" in key:
                raise ValueError(
                    f"variable name {key!r} cannot be in an environment (empty, or "
                    f"holding '=' or a NUL byte): rename it"
                )
            if "\0" in item:
                raise ValueError(
                    f"variable {key!r} holds a NUL byte, which no environment "
                    f"variable can carry: remove it from the value"
                )
        return value

    @model_validator(mode="after")
    def _tcp_settings_need_tcp(self) -> LocalLinkConfig:
        if self.link != "tcp":
            for key in ("tcp_port", "connect_via"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key} needs 'link: tcp' (the link is ipc)")
        return self


def _loopback(value: str, key: str) -> str:
    if value not in {"127.0.0.1", "localhost", "::1"} and not value.startswith("127."):
        raise ValueError(
            f"{key} must be a loopback address (127.0.0.0/8 or ::1), got "
            f"{value!r}: a local site is never exposed beyond this machine"
        )
    return value


class GlobusLinkConfig(StrictModel):
    """How the client reaches a site through the Globus Compute web service.

    The three submission settings are the SDK `Executor`'s, with its defaults.
    """

    #: The id `globus-compute-endpoint start` printed; unset until it is deployed.
    endpoint_id: UUID | None = None
    #: Most tasks sent in one submission request.
    batch_size: int = Field(default=128, ge=1)
    #: Requests allowed in a burst before the SDK spaces them out (SDK range 1-8).
    api_burst_limit: int = Field(default=4, ge=1, le=8)
    #: Window over which the burst is counted, in seconds (SDK range 1-32).
    api_burst_window_s: int = Field(default=16, ge=1, le=32)
    #: Port of the result queue (the service offers 5671, 5672 and 443).
    amqp_port: int | None = Field(default=None, gt=0, lt=65536)
    #: Values for the endpoint's user config template, for every task of the site.
    user_endpoint_config: dict[str, Any] = Field(default_factory=dict)
    #: The web service's address; unset means the SDK's (the public service).
    service_url: str | None = None
    #: Seconds to wait for the endpoint to report itself online at start.
    start_timeout_s: float = Field(default=30.0, gt=0)
    #: Seconds between status requests while tasks are in flight.
    status_poll_s: float = Field(default=10.0, gt=0)
    #: Offline this long with tasks in flight, the endpoint's tasks are failed as
    #: lost (and retried if their method allows): the service would hold them
    #: until the endpoint returns, however long that takes.
    lost_after_s: float = Field(default=300.0, gt=0)
    #: A task accepted this long without a result is looked up at the service by
    #: its id (as is every task in flight when the endpoint comes back online), so
    #: a result the result queue never delivered still arrives.
    reconcile_after_s: float = Field(default=120.0, gt=0)
    #: The largest submission request the service accepts, in bytes (or a size
    #: such as "10MB"); the public service's is 10 MB, an on-premises one may differ.
    submit_limit: int = Field(default=SUBMIT_LIMIT_BYTES, gt=0)

    @field_validator("submit_limit", mode="before")
    @classmethod
    def _size(cls, value: Any) -> Any:
        return parse_size(value) if isinstance(value, str) else value


class SiteConfig(StrictModel):
    """One facility: how to reach it and the engine its endpoint runs."""

    name: str
    description: str = ""
    transport: Literal["local", "globus"] = "local"
    local: LocalLinkConfig = Field(default_factory=LocalLinkConfig)
    globus: GlobusLinkConfig = Field(default_factory=GlobusLinkConfig)
    #: This site's clocks, overriding the federation's `clocks`.
    clocks: ClockSetting | None = None
    #: The `engine:` block of a Globus Compute endpoint's config.yaml, unchanged.
    #: A globus site may leave it out when someone else runs its endpoint.
    engine: dict[str, Any] | None = None
    #: Where the file was read from, for error messages.
    source: Path | None = Field(default=None, exclude=True)

    @field_validator("engine")
    @classmethod
    def _engine_has_type(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and "type" not in value:
            raise ValueError(
                "the engine block needs a 'type', e.g. GlobusComputeEngine, "
                "ProcessPoolEngine or ThreadPoolEngine"
            )
        return value

    @model_validator(mode="after")
    def _local_sites_have_an_engine(self) -> SiteConfig:
        # An attached site's engine is the standalone endpoint's business.
        if self.transport == "local" and self.engine is None and not self.local.attach:
            raise ValueError(
                "a site with transport 'local' needs an 'engine' block: its "
                "endpoint runs on this machine (or 'local.attach', to use an "
                "endpoint started with `colmena-fx endpoint start`)"
            )
        return self

    def build_engine(self) -> Any:
        """The real Globus Compute engine object that this site's endpoint runs."""
        from globus_compute_endpoint.endpoint.config.dispatch import EngineDispatcher

        if self.engine is None:
            raise ConfigError(f"{self.source or self.name}: no 'engine' block")
        try:
            return EngineDispatcher.build_instance(dict(self.engine))
        except (ValidationError, ValueError, TypeError) as exc:
            where = self.source or self.name
            raise ConfigError(f"{where}: key 'engine': {exc}") from exc


class RetryBackoff(StrictModel):
    """Exponential backoff with jitter between attempts of one task."""

    #: Wait before the first resubmission; doubled per attempt up to the max.
    initial_s: float = Field(default=0.1, gt=0)
    max_s: float = Field(default=30.0, gt=0)
    #: Each wait is drawn from [1 - jitter, 1] of its nominal value, so the tasks
    #: a site lost together do not all come back at the same instant.
    jitter: float = Field(default=0.5, ge=0, le=1)


class FederationConfig(StrictModel):
    """The sites of a campaign and the route of every method."""

    name: str = "federation"
    #: Site files, relative to the federation file.
    sites: list[Path]
    methods: dict[str, MethodRoute] = Field(default_factory=dict)
    #: The topics tasks may use ("default" is always one); empty, any name goes.
    #: Declared, a task or `get_result` on any other topic is an error.
    topics: list[str] = Field(default_factory=list)
    #: Parent directory of per-run directories (journal, endpoint logs).
    run_dir: Path = Path("runs")
    #: How remote stamps are put on the client's clock, for every site whose file
    #: says nothing (`ClockSetting`): estimated from each task's round trip, or
    #: declared synchronized (PTP, a good NTP), within a bound.
    clocks: ClockSetting = Field(default_factory=lambda: ClockSetting())
    #: Data stores for values too large to travel with their task.
    data: DataConfig = Field(default_factory=DataConfig)
    #: Seconds a task waits for a usable site before it fails (methods may set
    #: their own `deadline_s`).
    deadline_s: float = Field(default=600.0, gt=0)
    #: Spacing of resubmissions after a lost worker or site.
    retry: RetryBackoff = Field(default_factory=lambda: RetryBackoff())
    source: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _routes_use_declared_topics(self) -> FederationConfig:
        if not self.topics:
            return self
        declared = {*self.topics, "default"}
        for name, route in self.methods.items():
            for topic in route.topics:
                if topic not in declared:
                    raise ValueError(
                        f"method {name!r} routes topic {topic!r}, which 'topics' "
                        f"does not declare: add it there ({sorted(declared)})"
                    )
        return self

    def store_for(self, method: str, site: str) -> str | None:
        """The store that carries `method`'s large values to and from `site`."""
        chosen = self.methods[method].data.store
        if chosen is not None:
            return chosen
        for name, store in self.data.stores.items():
            if store.reaches(CLIENT) and store.reaches(site):
                return name
        return None
