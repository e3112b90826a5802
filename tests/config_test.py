"""Bad site and federation files fail early, naming the file and the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from colmena_fx.configfiles import load_federation
from colmena_fx.configfiles import load_site
from colmena_fx.exceptions import ConfigError
from colmena_fx.federation import Federation
from colmena_fx.models import ResourceRequirements
from testing.sites import PROCESS_POOL
from testing.sites import write_federation
from testing.sites import write_site

REPO = Path(__file__).resolve().parents[1]


def _federation(tmp_path: Path, methods: dict) -> Path:
    site = write_site(tmp_path, "cpu", PROCESS_POOL)
    return write_federation(tmp_path, [site], methods)


def test_shipped_files_load() -> None:
    config, sites = load_federation(REPO / "endpoints" / "federation.yaml")
    assert set(sites) == {"local-cpu", "local-gpu"}
    assert config.methods["simulate"].site == "local-cpu"
    assert "GPU" in sites["local-gpu"].description
    for site in sites.values():
        assert site.engine is not None
        assert site.engine["type"] == "GlobusComputeEngine"


def test_loading_files_imports_no_data_store_or_engine_machinery(
    tmp_path: Path,
) -> None:
    """A thinker that only reads its files (and `endpoint list`) stays light."""
    stores = {"shared": {"type": "redis"}, "scratch": {"type": "file", "path": "s"}}
    site = write_site(tmp_path, "cpu", PROCESS_POOL)
    methods = {"echo": {"site": "cpu", "function": "testing.tasks:echo"}}
    federation = write_federation(tmp_path, [site], methods, data={"stores": stores})
    script = (
        "import sys\n"
        "from colmena_fx.configfiles import load_federation, load_site\n"
        f"load_site({str(site)!r})\n"
        f"config, _ = load_federation({str(federation)!r})\n"
        "assert config.data.stores['shared'].type == 'redis'\n"
        "heavy = ('proxystore', 'redis', 'globus_compute_endpoint', 'parsl')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, check=True, cwd=REPO)  # fmt: skip
    assert done.stdout.strip() == "[]", done.stdout


def test_shipped_engine_blocks_build_real_engines() -> None:
    from globus_compute_endpoint.engines import GlobusComputeEngine

    for name in ("local-cpu", "local-gpu"):
        engine = load_site(REPO / "endpoints" / f"{name}.yaml").build_engine()
        assert isinstance(engine, GlobusComputeEngine)


def test_missing_site_file_is_named(tmp_path: Path) -> None:
    path = write_federation(tmp_path, [tmp_path / "nowhere.yaml"], {})
    with pytest.raises(
        ConfigError, match=r"federation.yaml: key 'sites'.*nowhere.yaml"
    ):
        load_federation(path)


def test_missing_federation_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read .*absent.yaml"):
        load_federation(tmp_path / "absent.yaml")


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"site.yaml: invalid YAML"):
        load_site(path)


def test_misspelled_key_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "engine": PROCESS_POOL, "locl": {}}))
    with pytest.raises(ConfigError, match=r"site.yaml: key 'locl': Extra inputs"):
        load_site(path)


def test_nested_schema_error_names_the_dotted_key(tmp_path: Path) -> None:
    path = write_site(tmp_path, "x", PROCESS_POOL, local={"heartbeat_s": -1})
    with pytest.raises(
        ConfigError, match=r"x.yaml: key 'local.heartbeat_s': .*greater than 0"
    ):
        load_site(path)


@pytest.mark.parametrize(
    ("local", "message"),
    [
        ({"connect_via": "127.0.0.1:5000"}, r"'local':.*connect_via needs 'link: tcp'"),
        ({"tcp_port": 5000}, r"tcp_port needs 'link: tcp'"),
        ({"link": "tcp", "connect_via": "10.0.0.1:22"}, r"connect_via must be a loop"),
        ({"link": "tcp", "connect_via": "127.0.0.1"}, r"must be 'host:port'"),
        ({"link": "tcp", "tcp_port": 70000}, r"local.tcp_port"),
        ({"link": "tcp", "tcp_port": 0}, r"local.tcp_port"),
        ({"link": "tcp", "connect_via": "localhost:0"}, r"must be 'host:port'"),
        ({"env": {"DEBUG": True}}, r"local.env.DEBUG': Input should be a valid str"),
    ],
)  # fmt: skip
def test_link_settings_that_cannot_work_are_refused(
    tmp_path: Path, local: dict[str, object], message: str
) -> None:
    path = write_site(tmp_path, "x", PROCESS_POOL, local=local)
    with pytest.raises(ConfigError, match=message):
        load_site(path)


def test_link_settings_that_work(tmp_path: Path) -> None:
    local = {"link": "tcp", "tcp_port": 5000, "connect_via": "[::1]:6000",
             "env": {"OMP_NUM_THREADS": "1"}}  # fmt: skip
    site = load_site(write_site(tmp_path, "x", PROCESS_POOL, local=local))
    assert site.local.connect_via == "[::1]:6000"
    assert site.local.env == {"OMP_NUM_THREADS": "1"}


def test_numbers_in_env_are_written_as_text(tmp_path: Path) -> None:
    local = {"env": {"OMP_NUM_THREADS": 4, "SCALE": 0.5}}
    site = load_site(write_site(tmp_path, "x", PROCESS_POOL, local=local))
    assert site.local.env == {"OMP_NUM_THREADS": "4", "SCALE": "0.5"}


def test_engine_without_type(tmp_path: Path) -> None:
    path = write_site(tmp_path, "x", {"max_workers": 2})
    with pytest.raises(ConfigError, match=r"key 'engine'.*needs a 'type'"):
        load_site(path)


def test_route_to_unknown_site(tmp_path: Path) -> None:
    path = _federation(tmp_path, {"sim": {"site": "gpu", "function": "math:sqrt"}})
    with pytest.raises(
        ConfigError, match=r"key 'methods.sim.site': unknown site 'gpu'.*'cpu'"
    ):
        load_federation(path)


def test_topic_route_to_unknown_site(tmp_path: Path) -> None:
    methods = {"sim": {"site": "cpu", "topics": {"ml": "gpu"}}}
    with pytest.raises(ConfigError, match=r"key 'methods.sim.topics.ml': unknown site"):
        load_federation(_federation(tmp_path, methods))


def test_method_without_function(tmp_path: Path) -> None:
    path = _federation(tmp_path, {"sim": {"site": "cpu"}})
    with pytest.raises(ConfigError, match=r"method 'sim' has no function"):
        Federation.from_file(path)


def test_function_that_cannot_be_imported(tmp_path: Path) -> None:
    path = _federation(tmp_path, {"sim": {"site": "cpu", "function": "no_such_mod:f"}})
    with pytest.raises(ConfigError, match=r"key 'methods.sim.function'.*no_such_mod"):
        Federation.from_file(path)


def test_function_passed_in_python_must_be_routed(tmp_path: Path) -> None:
    def simulate() -> None: ...

    path = _federation(tmp_path, {"sim": {"site": "cpu", "function": "math:sqrt"}})
    with pytest.raises(ConfigError, match=r"method 'simulate' is not routed"):
        Federation.from_file(path, methods=[simulate])


def test_resources_become_a_resource_specification() -> None:
    spec = ResourceRequirements(num_nodes=2, ranks_per_node=4, extra={"queue": "debug"})
    assert spec.to_resource_specification() == {
        "num_nodes": 2,
        "ranks_per_node": 4,
        "queue": "debug",
    }
    assert ResourceRequirements().to_resource_specification() == {}


def test_globus_site_defaults_follow_the_sdk(tmp_path: Path) -> None:
    path = tmp_path / "remote.yaml"
    path.write_text("transport: globus\nglobus:\n  endpoint_id: null\n")
    site = load_site(path)
    assert site.engine is None
    assert (site.globus.batch_size, site.globus.api_burst_limit) == (128, 4)
    assert site.globus.api_burst_window_s == 16


def test_local_site_without_engine_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bare.yaml"
    path.write_text("transport: local\n")
    with pytest.raises(ConfigError, match="needs an 'engine' block"):
        load_site(path)


def test_an_attached_local_site_needs_no_engine_and_resolves_its_path(
    tmp_path: Path,
) -> None:
    (tmp_path / "sites").mkdir()
    path = tmp_path / "sites" / "attached.yaml"
    path.write_text("transport: local\nlocal:\n  attach: ../ep/connection.json\n")
    site = load_site(path)
    assert site.engine is None
    assert site.local.attach == (tmp_path / "ep" / "connection.json").resolve()


def test_globus_burst_limit_outside_sdk_range_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "remote.yaml"
    path.write_text("transport: globus\nglobus:\n  api_burst_limit: 20\n")
    with pytest.raises(ConfigError, match=r"key 'globus.api_burst_limit'"):
        load_site(path)
