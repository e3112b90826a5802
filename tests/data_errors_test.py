"""What goes wrong with large values: limits without a store, stores that are down
or out of reach, and mistakes in the `data:` block, each with a clear message."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from proxystore.proxy import ProxyResolveError

from colmena_fx.configfiles import load_federation
from colmena_fx.data.schemas import GlobusStore
from colmena_fx.data.stores import open_store
from colmena_fx.exceptions import ConfigError
from colmena_fx.exceptions import DataStoreError
from colmena_fx.federation import Federation
from colmena_fx.models import FailureKind
from colmena_fx.models import Result
from testing.links import free_port
from testing.redis import RedisServer
from testing.sites import PROCESS_POOL
from testing.sites import FederationFactory
from testing.sites import write_federation
from testing.sites import write_site

MB = 1_000_000


def _methods(*names: str, site: str = "cpu") -> dict[str, dict[str, Any]]:
    return {name: {"site": site, "function": f"testing.tasks:{name}"} for name in names}


def _result(federation: Federation, timeout: float = 60) -> Result:
    result = federation.get_result(timeout=timeout)
    assert result is not None, "no result within the timeout"
    return result


def test_an_oversized_return_without_a_store_fails_naming_size_limit_and_fix(
    make_federation: FederationFactory,
) -> None:
    federation = make_federation(_methods("make_array"))
    federation.submit("make_array", 12 * 2**20)
    failure = _result(federation).failure
    assert failure is not None
    assert failure.exception_type == "PayloadTooLargeError"
    assert failure.kind is FailureKind.USER
    assert "12.6 MB" in failure.message  # what the value serializes to
    assert "17 MB as sent" in failure.message  # after Globus Compute's base64
    assert "10 MiB" in failure.message
    assert "'data.stores'" in failure.message


def test_a_threshold_above_the_limit_is_named_as_the_fix(
    make_federation: FederationFactory, tmp_path: Path
) -> None:
    store = {"type": "file", "path": str(tmp_path / "store")}
    data = {"stores": {"shared": store}, "threshold": "20 MB"}
    federation = make_federation(_methods("make_array"), federation={"data": data})
    federation.submit("make_array", 12 * 2**20)
    failure = _result(federation).failure
    assert failure is not None and failure.exception_type == "PayloadTooLargeError"
    assert "lower the threshold (20 MB" in failure.message


def test_a_return_under_the_limit_after_base64_still_goes_inline(
    make_federation: FederationFactory,
) -> None:
    federation = make_federation(_methods("make_array"))
    federation.submit("make_array", 7 * 2**20)
    result = _result(federation)
    assert result.success, result.failure
    assert result.value.nbytes == 7 * 2**20


def test_a_redis_store_that_is_down_fails_the_start_naming_the_server(
    make_federation: FederationFactory,
) -> None:
    port = free_port()
    store = {"type": "redis", "host": "127.0.0.1", "port": port, "timeout_s": 2}
    with pytest.raises(DataStoreError, match=rf"127.0.0.1:{port} does not answer"):
        make_federation(
            _methods("echo"), federation={"data": {"stores": {"cache": store}}}
        )


def test_redis_going_down_mid_run_gives_errors_not_hangs(
    make_federation: FederationFactory, redis_server: RedisServer
) -> None:
    store = {"type": "redis", "host": redis_server.host, "port": redis_server.port,
             "timeout_s": 2}  # fmt: skip
    federation = make_federation(
        _methods("echo", "make_array"),
        federation={"data": {"stores": {"cache": store}}},
    )
    federation.submit("make_array", 2 * MB)
    value = _result(federation).value
    redis_server.stop()
    with pytest.raises(DataStoreError, match=r"in data store 'cache'"):
        federation.submit("echo", np.ones(MB))
    assert federation.in_flight() == []
    with pytest.raises(ProxyResolveError) as caught:
        float(value.sum())
    assert isinstance(caught.value.__cause__, DataStoreError)
    assert "cannot read a value from data store 'cache'" in str(caught.value.__cause__)


def test_a_value_evicted_too_early_fails_its_task_with_the_reason(
    make_federation: FederationFactory, tmp_path: Path
) -> None:
    store = {"type": "file", "path": str(tmp_path / "store")}
    federation = make_federation(
        _methods("checksum"), federation={"data": {"stores": {"shared": store}}}
    )
    weights = federation.data.proxy(np.ones(MB))
    for path in (tmp_path / "store").iterdir():
        path.unlink()  # someone cleaned the shared directory under the campaign
    federation.submit("checksum", weights)
    failure = _result(federation).failure
    assert failure is not None
    assert failure.exception_type == "DataStoreError"
    assert "argument 1 of 'checksum'" in failure.message
    assert "is gone: it was evicted" in failure.message


def test_a_globus_store_without_a_login_says_how_to_log_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROXYSTORE_HOME", str(tmp_path))  # no tokens saved here
    monkeypatch.delenv("PROXYSTORE_GLOBUS_CLIENT_ID", raising=False)
    collection = {"host_regex": ".*", "endpoint_path": "/s", "local_path": "/s"}
    declaration = GlobusStore(
        type="globus",
        collections={str(uuid.uuid4()): collection, str(uuid.uuid4()): collection},
    )
    with pytest.raises(DataStoreError, match="proxystore-globus-auth login"):
        open_store("wan", declaration, tmp_path, "run")


def test_forwarding_a_value_to_a_site_its_store_cannot_reach_fails_at_submit(
    make_federation: FederationFactory, tmp_path: Path
) -> None:
    stores = {
        "cpu-only": {"type": "file", "path": str(tmp_path / "a"),
                     "sites": ["client", "cpu"]},
        "everyone": {"type": "file", "path": str(tmp_path / "b")},
    }  # fmt: skip
    methods = {**_methods("make_array"), **_methods("echo", site="gpu")}
    federation = make_federation(
        methods,
        sites={"cpu": PROCESS_POOL, "gpu": PROCESS_POOL},
        federation={"data": {"stores": stores}},
    )
    federation.submit("make_array", 2 * MB)
    model = _result(federation).value
    with pytest.raises(DataStoreError, match=r"site 'gpu' cannot reach") as caught:
        federation.submit("echo", model)
    assert "methods.<name>.data.store" in str(caught.value)
    assert federation.in_flight() == []


def _federation_file(tmp_path: Path, block: dict[str, Any], **route: Any) -> Path:
    site = write_site(tmp_path, "cpu", PROCESS_POOL)
    methods = {"echo": {"site": "cpu", "function": "testing.tasks:echo", **route}}
    return write_federation(tmp_path, [site], methods, data=block)


@pytest.mark.parametrize(
    ("data", "route", "message"),
    [
        ({"stores": {}}, {"data": {"store": "fast"}},
         r"key 'methods.echo.data.store': unknown store 'fast'"),
        ({"stores": {"s": {"type": "file", "path": "s", "sites": ["hpc"]}}}, {},
         r"key 'data.stores.s.sites': unknown site 'hpc'"),
        ({"stores": {"s": {"type": "file", "path": "s", "sites": ["client"]}}},
         {"data": {"store": "s"}}, r"store 's' does not reach 'cpu'"),
        ({"threshold": "10 XB"}, {}, r"key 'data.threshold'.*'10 MB'"),
        ({"stores": {"s": {"type": "ftp"}}}, {}, r"key 'data.stores.s'"),
        ({"stores": {"s": {"type": "globus", "collections": {"one": {}}}}}, {},
         r"key 'data.stores.s.globus.collections'"),
    ],
)  # fmt: skip
def test_mistakes_in_the_data_block_name_the_key(
    tmp_path: Path, data: dict[str, Any], route: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_federation(_federation_file(tmp_path, data, **route))


def test_the_first_store_reaching_both_ends_is_chosen(tmp_path: Path) -> None:
    stores = {
        "workers-only": {"type": "file", "path": "a", "sites": ["cpu"]},
        "redis": {"type": "redis", "sites": ["client", "cpu"]},
        "shared": {"type": "file", "path": "b"},
    }
    config, _ = load_federation(_federation_file(tmp_path, {"stores": stores}))
    assert config.store_for("echo", "cpu") == "redis"
    assert config.data.stores["shared"].reaches("anywhere")
