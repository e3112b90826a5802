"""Cluster site files validate anywhere; their rendered endpoint files load."""

from __future__ import annotations

import os
import pwd
import threading
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import parsl.addresses
import psutil
import pytest
import yaml
from globus_compute_endpoint.endpoint.config import CoreEndpointConfig
from globus_compute_endpoint.endpoint.config import UserEndpointConfig
from globus_compute_endpoint.endpoint.config.dispatch import EngineDispatcher
from globus_compute_endpoint.endpoint.config.utils import load_config_yaml
from globus_compute_endpoint.endpoint.config.utils import load_user_config_schema
from globus_compute_endpoint.endpoint.config.utils import load_user_config_template
from globus_compute_endpoint.endpoint.config.utils import render_config_user_template
from globus_compute_endpoint.endpoint.identity_mapper import MappedPosixIdentity

from colmena_fx.configfiles import load_federation
from colmena_fx.configfiles import load_site
from colmena_fx.exceptions import ConfigError
from colmena_fx.sitefiles import STAND_IN_ADDRESS
from colmena_fx.sitefiles import deployment_commands
from colmena_fx.sitefiles import federation_sites
from colmena_fx.sitefiles import render_endpoint_files
from colmena_fx.sitefiles import validate_site
from colmena_fx.sitefiles import validate_site_file
from testing.sites import PROCESS_POOL
from testing.sites import write_federation
from testing.sites import write_site

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "endpoints").glob("*.yaml"))
FEDERATION_FILES = [p for p in SHIPPED if "sites" in yaml.safe_load(p.read_text())]
SITE_FILES = [p for p in SHIPPED if p not in FEDERATION_FILES]
CLUSTER_FILES = [p for p in SITE_FILES if not p.name.startswith("local-")]

#: What each facility's file must describe: provider, launcher, accelerators/node.
FACILITIES = {
    "polaris": ("PBSProProvider", "MpiExecLauncher", 4),
    "perlmutter-cpu": ("SlurmProvider", "SrunLauncher", 0),
    "perlmutter-gpu": ("SlurmProvider", "SrunLauncher", 4),
    "aurora": ("PBSProProvider", "MpiExecLauncher", 12),
    "frontier": ("SlurmProvider", "SrunLauncher", 8),
    "delta": ("SlurmProvider", "SrunLauncher", 0),
    "generic-slurm": ("SlurmProvider", "SrunLauncher", 0),
    "generic-pbs": ("PBSProProvider", "SimpleLauncher", 0),
}


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def _cluster_site(tmp_path: Path, **provider: Any) -> dict[str, Any]:
    """A Slurm engine block, with `provider` settings merged in."""
    return {
        "type": "GlobusComputeEngine",
        "address": {"type": "address_by_interface", "ifname": "hsn0"},
        "provider": {
            "type": "SlurmProvider",
            "account": "<your-allocation>",
            "partition": "debug",
            "walltime": "00:30:00",
            "launcher": {"type": "SrunLauncher"},
            **provider,
        },
    }


# --- Validation ------------------------------------------------------------------


@pytest.mark.parametrize("path", SITE_FILES, ids=_ids(SITE_FILES))
def test_every_shipped_site_file_validates(path: Path) -> None:
    checked = validate_site_file(path)
    engine = yaml.safe_load(path.read_text())["engine"]
    assert checked.engine == engine["type"]
    assert checked.provider == engine["provider"]["type"]
    if "launcher" in engine["provider"]:
        assert checked.launcher == engine["provider"]["launcher"]["type"]
    address = engine.get("address")
    if isinstance(address, dict):
        assert len(checked.stand_ins) == 1
        assert checked.stand_ins[0].startswith(f"{address['type']}(")
    else:
        assert checked.stand_ins == ()
    assert str(path) in checked.summary()


@pytest.mark.parametrize("path", FEDERATION_FILES, ids=_ids(FEDERATION_FILES))
def test_every_site_of_a_shipped_federation_validates(path: Path) -> None:
    _, sites = load_federation(path)
    assert [row.name for row in federation_sites(path)] == list(sites)
    for site in sites.values():
        assert validate_site(site).engine == (site.engine or {}).get("type")


def test_a_federation_file_is_not_taken_for_a_site_file() -> None:
    with pytest.raises(ConfigError, match=r"federation.yaml: a federation file"):
        validate_site_file(REPO / "endpoints" / "federation.yaml")


def test_every_facility_has_its_file() -> None:
    assert {p.stem for p in CLUSTER_FILES} == set(FACILITIES)


@pytest.mark.parametrize("path", CLUSTER_FILES, ids=_ids(CLUSTER_FILES))
def test_cluster_files_describe_their_facility(path: Path) -> None:
    provider, launcher, accelerators = FACILITIES[path.stem]
    checked = validate_site_file(path)
    assert (checked.provider, checked.launcher) == (provider, launcher)
    assert len(checked.accelerators) == accelerators
    site = checked.site
    assert site.name == path.stem
    assert site.transport == "globus"
    assert site.globus.endpoint_id is None
    assert site.description
    # What the user must supply is marked, and validation says so.
    assert "engine.provider.account" in checked.placeholders
    assert "engine.provider.worker_init" in checked.placeholders
    assert "to fill in: engine.provider.account" in checked.summary()
    assert "not deployed yet" in checked.summary()
    text = path.read_text()
    assert text.startswith("#") and "Fill in before deploying" in text


def test_aurora_pins_one_worker_per_gpu_tile() -> None:
    checked = validate_site_file(REPO / "endpoints" / "aurora.yaml")
    tiles = [f"{gpu}.{tile}" for gpu in range(6) for tile in range(2)]
    assert list(checked.accelerators) == tiles


def test_interface_lookup_needs_no_such_interface_here(tmp_path: Path) -> None:
    engine = _cluster_site(tmp_path)
    engine["address"]["ifname"] = "cfx-absent0"
    # The endpoint itself cannot build this engine on a machine without it ...
    with pytest.raises(ValueError):
        EngineDispatcher.build_instance(engine)
    # ... validation can, and says what it stood in for.
    lookup = parsl.addresses.address_by_interface
    checked = validate_site_file(write_site(tmp_path, "c", engine))
    assert checked.stand_ins == ("address_by_interface(ifname='cfx-absent0')",)
    assert STAND_IN_ADDRESS in checked.summary()
    assert parsl.addresses.address_by_interface is lookup  # nothing patched


def test_validation_starts_no_threads_or_processes() -> None:
    threads = set(threading.enumerate())
    children = {p.pid for p in psutil.Process().children(recursive=True)}
    for path in SITE_FILES:
        validate_site_file(path)
    assert set(threading.enumerate()) - threads == set()
    assert {
        p.pid for p in psutil.Process().children(recursive=True)
    } - children == set()


def test_site_without_engine_validates_and_renders_nothing(tmp_path: Path) -> None:
    path = tmp_path / "remote.yaml"
    path.write_text("transport: globus\n")
    checked = validate_site_file(path)
    assert checked.engine is None
    assert "no engine block" in checked.summary()
    with pytest.raises(ConfigError, match=r"remote.yaml: no 'engine' block"):
        render_endpoint_files(checked.site, tmp_path / "out")


# --- Broken files: the error names the file and the key ------------------------


@pytest.mark.parametrize(
    ("provider", "error"),
    [
        (
            {"partion": "debug"},
            r"key 'engine.provider.partion': SlurmProvider.* unexpected keyword",
        ),
        (
            {"launcher": {"type": "SrunLaunchr"}},
            r"key 'engine.provider.launcher.type': unknown launcher type "
            r"'SrunLaunchr'; did you mean 'SrunLauncher'\?",
        ),
        (
            {"launcher": {"type": "SrunLauncher", "override": "-c 8"}},
            r"key 'engine.provider.launcher.override': SrunLauncher",
        ),
        (
            {"type": "SlurmProvder"},
            r"key 'engine.provider.type': unknown provider type 'SlurmProvder'; "
            r"did you mean 'SlurmProvider'\?",
        ),
        (
            {"walltime": 3600},
            r"key 'engine.provider.walltime': got the number 3600; write the "
            r"walltime in quotes",
        ),
        (
            {"nodes_per_block": "two"},
            r"key 'engine.provider.nodes_per_block': .*\(str\) is not an instance",
        ),
    ],
    ids=[
        "provider key",
        "launcher type",
        "launcher key",
        "provider type",
        "walltime",
        "value type",
    ],
)
def test_broken_provider_names_file_and_key(
    tmp_path: Path, provider: dict[str, Any], error: str
) -> None:
    path = write_site(tmp_path, "broken", _cluster_site(tmp_path, **provider))
    with pytest.raises(ConfigError, match=rf"^{tmp_path}/broken.yaml: {error}"):
        validate_site_file(path)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            {"type": "GlobusComputeEngin"},
            r"key 'engine.type': unknown engine type .*'GlobusComputeEngine'\?",
        ),
        ({"max_worker": 4}, r"key 'engine.max_worker': .*unexpected keyword"),
        (
            {"address": "hsn0"},
            r"key 'engine.address': 'hsn0' is not an IP address; to look one up",
        ),
        (
            {"address": {"type": "address_by_iface", "ifname": "hsn0"}},
            r"key 'engine.address.type': unknown address type 'address_by_iface'; "
            r"did you mean 'address_by_interface'\?",
        ),
        (
            {"address": {"type": "address_by_interface", "ifname": 0}},
            r"key 'engine.address.ifname': address_by_interface\(\): argument "
            r"\"ifname\" must be str, got 0",
        ),
        (
            {"address": {"type": "address_by_interface", "iface": "hsn0"}},
            r"key 'engine.address': address_by_interface\(\): .*'ifname'",
        ),
        ({"provider": "SlurmProvider"}, r"key 'engine.provider': expected a mapping"),
    ],
    ids=[
        "engine type",
        "engine key",
        "address string",
        "address type",
        "address argument type",
        "address argument",
        "provider not a mapping",
    ],
)
def test_broken_engine_names_file_and_key(
    tmp_path: Path, change: dict[str, Any], error: str
) -> None:
    path = write_site(tmp_path, "broken", {**_cluster_site(tmp_path), **change})
    with pytest.raises(ConfigError, match=rf"^{tmp_path}/broken.yaml: {error}"):
        validate_site_file(path)


def test_bad_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("engine: {type: GlobusComputeEngine\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: invalid YAML"):
        validate_site_file(path)


def test_a_plain_ip_address_needs_no_stand_in(tmp_path: Path) -> None:
    engine = {**_cluster_site(tmp_path), "address": "10.1.2.3"}
    checked = validate_site(load_site(write_site(tmp_path, "ip", engine)))
    assert checked.stand_ins == ()


# --- Rendering: the endpoint's own loaders read what we write -------------------


@pytest.fixture
def lookups_answer_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the endpoint's own loader resolve cluster interfaces on this machine."""
    monkeypatch.setattr(
        parsl.addresses, "address_by_interface", lambda ifname: "10.9.9.9"
    )
    monkeypatch.setattr(parsl.addresses, "address_by_hostname", lambda: "10.9.9.9")


def _render_as_the_endpoint(out: Path, user_opts: dict[str, Any]) -> str:
    """The user endpoint config that the endpoint renders for a task submission."""
    parent = load_config_yaml((out / "config.yaml").read_text())
    assert isinstance(parent, CoreEndpointConfig)
    template_path = out / "user_config_template.yaml.j2"
    identity = MappedPosixIdentity(
        local_user_record=pwd.getpwuid(os.getuid()),
        matched_identity=uuid.UUID(int=0),
        globus_identity_candidates=[],
    )
    return render_config_user_template(
        parent_config=parent,
        user_config_template=load_user_config_template(template_path),
        user_config_template_path=template_path,
        mapped_identity=identity,
        user_config_schema=load_user_config_schema(out / "user_config_schema.json"),
        user_opts=user_opts,
        user_runtime={},
    )


@pytest.mark.usefixtures("lookups_answer_here")
@pytest.mark.parametrize("path", SITE_FILES, ids=_ids(SITE_FILES))
def test_rendered_files_load_with_the_endpoints_loaders(
    path: Path, tmp_path: Path
) -> None:
    site = load_site(path)
    assert site.engine is not None
    written = render_endpoint_files(site, tmp_path)
    assert [p.name for p in written] == [
        "config.yaml",
        "user_config_template.yaml.j2",
        "user_config_schema.json",
    ]
    parent = load_config_yaml(written[0].read_text())
    assert isinstance(parent, CoreEndpointConfig)
    assert parent.display_name == f"colmena-fx {site.name}"

    # With no user values the template gives back the site file's engine exactly.
    rendered = _render_as_the_endpoint(tmp_path, {})
    assert yaml.safe_load(rendered)["engine"] == site.engine
    config = load_config_yaml(rendered)
    assert isinstance(config, UserEndpointConfig)
    assert type(config.engine).__name__ == site.engine["type"]
    assert config.idle_heartbeats_soft == 10


@pytest.mark.usefixtures("lookups_answer_here")
@pytest.mark.parametrize("path", CLUSTER_FILES, ids=_ids(CLUSTER_FILES))
def test_a_task_submission_may_set_the_template_variables(
    path: Path, tmp_path: Path
) -> None:
    site = load_site(path)
    assert site.engine is not None
    render_endpoint_files(site, tmp_path)
    queue_key = next(
        k for k in ("queue", "partition", "qos") if k in site.engine["provider"]
    )
    worker_init = 'source "$HOME/my env/bin/activate"\necho ready: {{ no }}'
    user_opts = {
        "account": "proj-42",
        queue_key: "special",
        "walltime": "00:05:00",
        "worker_init": worker_init,
    }
    config = load_config_yaml(_render_as_the_endpoint(tmp_path, user_opts))
    provider = config.engine.provider  # type: ignore[union-attr]
    assert provider.account == "proj-42"
    assert provider.walltime == "00:05:00"
    assert worker_init in provider.worker_init
    script = provider.scheduler_options + getattr(provider, "queue", "")
    assert "special" in script
    # Anything not a template variable is refused before the template is rendered.
    for bad in ({"colour": "blue"}, {"walltime": "an hour"}, {"account": 42}):
        with pytest.raises(jsonschema.ValidationError):
            _render_as_the_endpoint(tmp_path, bad)


@pytest.mark.usefixtures("lookups_answer_here")
def test_values_that_yaml_or_jinja_would_read_are_written_literally(
    tmp_path: Path,
) -> None:
    engine = _cluster_site(
        tmp_path,
        # Unquoted, YAML would read numbers, a comment and a mapping here.
        account="1234",
        walltime="1:00:00",
        worker_init="module load x  # y\necho 'a: b' \"c\"",
        # Not template variables, yet Jinja would read them.
        scheduler_options="#SBATCH --comment={{ not_a_variable }}\n#SBATCH -J {#x}",
    )
    site = load_site(write_site(tmp_path, "odd", engine))
    render_endpoint_files(site, tmp_path / "out")
    rendered = _render_as_the_endpoint(tmp_path / "out", {})
    assert yaml.safe_load(rendered)["engine"] == site.engine


def test_deployment_commands_install_the_rendered_files(tmp_path: Path) -> None:
    site = load_site(REPO / "endpoints" / "polaris.yaml")
    out = Path("endpoint-polaris")
    configure, render, start = deployment_commands(site, out)
    assert configure == (
        "globus-compute-endpoint configure polaris"
        " --core-config endpoint-polaris/config.yaml"
        " --template-config endpoint-polaris/user_config_template.yaml.j2"
        " --schema-config endpoint-polaris/user_config_schema.json"
    )
    assert render == "globus-compute-endpoint render-user-config -e polaris"
    assert start == "globus-compute-endpoint start polaris"


# --- Listing a federation --------------------------------------------------------


def test_federation_sites_lists_sites_and_their_methods() -> None:
    rows = federation_sites(REPO / "endpoints" / "federation.yaml")
    assert [(r.name, r.transport, r.endpoint_id, r.engine) for r in rows] == [
        ("local-cpu", "local", None, "GlobusComputeEngine"),
        ("local-gpu", "local", None, "GlobusComputeEngine"),
    ]
    assert rows[0].methods == ("simulate",)
    assert rows[1].methods == ("train", "infer")


def test_federation_sites_shows_topic_routes_and_endpoint_ids(tmp_path: Path) -> None:
    endpoint_id = "2f1e3a9c-8a52-4a7e-9b0e-3c5d7f1a2b4c"
    cpu = write_site(tmp_path, "cpu", PROCESS_POOL)
    remote = tmp_path / "remote.yaml"
    remote.write_text(
        "transport: globus\ndescription: far away\n"
        f"globus: {{endpoint_id: {endpoint_id}}}\n"
    )
    methods = {"sim": {"site": "cpu", "topics": {"urgent": "remote"}}}
    rows = federation_sites(write_federation(tmp_path, [cpu, remote], methods))
    by_name = {r.name: r for r in rows}
    assert by_name["cpu"].methods == ("sim",)
    assert by_name["remote"].methods == ("sim (topic urgent)",)
    assert by_name["remote"].endpoint_id == endpoint_id
    assert by_name["remote"].engine is None
    assert by_name["remote"].description == "far away"
