"""The data stores a federation file declares, as ProxyStore stores.

A store is declared once (`data.stores` in the federation file) and used on both
sides of a task: the client writes arguments into it and reads results from it; a
worker does the opposite. Workers never see the federation file: what they need
travels with each task as a `DataPolicy`, whose ProxyStore `StoreConfig` rebuilds
the same store in the worker's process.

Proxies made here carry a `DataFactory`, which marks them as colmena-fx's own (so a
worker resolves them before the user function starts, and the client knows when
it may evict them) and times their resolution for the latency record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import proxystore.store
from proxystore.connectors.file import FileConnector
from proxystore.connectors.redis import RedisConnector
from proxystore.proxy import Proxy
from proxystore.proxy import get_factory
from proxystore.store import Store
from proxystore.store.config import StoreConfig
from proxystore.store.exceptions import ProxyResolveMissingKeyError
from proxystore.store.factory import StoreFactory

from colmena_fx import serialize
from colmena_fx.data.schemas import FileStore
from colmena_fx.data.schemas import GlobusStore
from colmena_fx.data.schemas import RedisStore
from colmena_fx.data.schemas import StoreDeclaration
from colmena_fx.exceptions import DataStoreError


class DataFactory(StoreFactory[Any, Any]):
    """A ProxyStore factory that marks colmena-fx's own proxies and times resolves.

    `listeners` (per process) hear of every resolve as (factory, started_ns,
    ended_ns); the client uses it to stamp a result's `result_data` hop when the
    thinker first touches the value, however late that is.
    """

    listeners: list[Callable[[DataFactory, int, int], None]] = []

    def __init__(self, key: Any, store_config: StoreConfig, store_name: str) -> None:
        super().__init__(key, store_config, deserializer=_loads)
        self.store_name = store_name

    def resolve(self) -> Any:
        started = time.time_ns()
        try:
            value = super().resolve()
        except ProxyResolveMissingKeyError:
            raise DataStoreError(
                f"a value in data store {self.store_name!r} is gone: it was evicted "
                f"(see its lifetime, `data.lifetime`) before this proxy of it was "
                f"resolved",
                store=self.store_name,
                key=self.key,
            ) from None
        except Exception as exc:
            raise DataStoreError(
                f"cannot read a value from data store {self.store_name!r}: "
                f"{type(exc).__name__}: {exc}",
                store=self.store_name,
                key=self.key,
            ) from exc
        ended = time.time_ns()
        for listener in list(DataFactory.listeners):
            listener(self, started, ended)
        return value


def _loads(data: bytes | bytearray | memoryview) -> Any:
    return serialize.loads(data)  # no copy: a stored value can be hundreds of MB


def _identity(data: bytes) -> bytes:
    return data


def put_serialized(store: Store[Any], data: bytes, store_name: str) -> Proxy[Any]:
    """A colmena-fx proxy of a value already serialized by `serialize.dumps`."""
    key = store.put(data, serializer=_identity)
    return Proxy(DataFactory(key, store.config(), store_name))


def factory_of(value: Any) -> DataFactory | None:
    """The `DataFactory` of `value` if it is a colmena-fx proxy, without resolving."""
    if isinstance(value, Proxy):
        factory = get_factory(value)
        if isinstance(factory, DataFactory):
            return factory
    return None


def own_proxies(values: Any) -> Iterator[tuple[str, DataFactory]]:
    """(where, factory) for each colmena-fx proxy among `values`' items.

    `values` is a list of arguments or a dict of keyword arguments; items are looked
    at, and one level into lists, tuples and dicts, where a thinker puts the proxies
    it forwards. Deeper proxies still work but are neither tracked nor resolved early.
    """
    items = values.items() if isinstance(values, dict) else enumerate(values)
    for where, value in items:
        if isinstance(value, Proxy):  # before any other isinstance: that resolves it
            factory = factory_of(value)
            if factory is not None:
                yield str(where), factory
        elif isinstance(value, list | tuple | dict):
            inner = value.items() if isinstance(value, dict) else enumerate(value)
            for index, item in inner:
                factory = factory_of(item)
                if factory is not None:
                    yield f"{where}[{index!r}]", factory


class TimedRedisConnector(RedisConnector):
    """ProxyStore's Redis connector with timeouts: a down server raises, never hangs."""

    def __init__(
        self, hostname: str, port: int, clear: bool = False, timeout_s: float = 5.0
    ) -> None:
        import redis

        super().__init__(hostname, port, clear=clear)
        self.timeout_s = timeout_s
        self._redis_client.close()
        self._redis_client = redis.StrictRedis(
            host=hostname,
            port=port,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )

    def config(self) -> dict[str, Any]:
        return {**super().config(), "timeout_s": self.timeout_s}


def open_store(
    name: str, declaration: StoreDeclaration, base_dir: Path, run_id: str
) -> Store[Any]:
    """The ProxyStore store for `declaration`, checked to be reachable now.

    Its ProxyStore name is unique to the run (`run_id`), so that two federations in
    one process, or a worker serving two runs, never mix their stores.
    """
    connector: Any
    if isinstance(declaration, FileStore):
        path = declaration.path
        path = path if path.is_absolute() else base_dir / path
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataStoreError(
                f"data store {name!r}: cannot create directory {path}: "
                f"{exc.strerror or exc}",
                store=name,
            ) from exc
        connector = FileConnector(str(path), clear=False)
    elif isinstance(declaration, RedisStore):
        connector = TimedRedisConnector(
            declaration.host, declaration.port, timeout_s=declaration.timeout_s
        )
        check_redis(name, connector)
    else:
        connector = _globus_connector(name, declaration)
    return Store(
        f"colmena-fx-{name}-{run_id}",
        connector,
        cache_size=declaration.cache_size,
        register=True,
    )


def check_redis(name: str, connector: TimedRedisConnector) -> None:
    """Raise a `DataStoreError` naming the server unless it answers a ping."""
    import redis

    try:
        connector._redis_client.ping()
    except redis.RedisError as exc:
        raise DataStoreError(
            f"data store {name!r}: the Redis server at {connector.hostname}:"
            f"{connector.port} does not answer ({exc}); start it, or fix "
            f"'data.stores.{name}.host/port' in the federation file",
            store=name,
        ) from None


def _globus_connector(name: str, declaration: GlobusStore) -> Any:
    import globus_sdk
    from proxystore.connectors.globus import GlobusConnector
    from proxystore.globus.app import get_globus_app

    # Without saved tokens ProxyStore would start an interactive login here and
    # wait on standard input; a campaign should stop and say what to run instead.
    app = get_globus_app()
    globus_sdk.TransferClient(app=app)  # declares the scopes the store needs
    if app.login_required():
        raise DataStoreError(
            f"data store {name!r}: no Globus Transfer login on this host: run "
            f"`proxystore-globus-auth login` here (and on every host that reads "
            f"the store), or set PROXYSTORE_GLOBUS_CLIENT_ID/_SECRET",
            store=name,
        )
    try:
        return GlobusConnector(
            declaration.collections, clear=False, timeout=declaration.timeout_s
        )
    except Exception as exc:
        raise DataStoreError(
            f"data store {name!r}: cannot use Globus Transfer ({type(exc).__name__}: "
            f"{exc}); run `proxystore-globus-auth login` on this host and check "
            f"'data.stores.{name}.collections'",
            store=name,
        ) from exc


def close_store(store: Store[Any]) -> None:
    proxystore.store.unregister_store(store)
    store.close()
