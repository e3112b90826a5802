"""Are a federation's data stores usable from here, and how fast?

`colmena-fx data check` answers before a campaign depends on it: each declared
store is opened as a run would open it, a test value is written, read back,
compared and evicted, and each method's route says which store its values take.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from dataclasses import replace
from pathlib import Path
from typing import Any

from colmena_fx.config import FederationConfig
from colmena_fx.data.stores import close_store
from colmena_fx.data.stores import open_store
from colmena_fx.exceptions import DataStoreError
from colmena_fx.units import format_size


@dataclass(frozen=True)
class StoreCheck:
    """One store's round trip from this host: seconds to write and to read back."""

    store: str
    kind: str
    #: Who the federation file says can reach it.
    sites: str
    put_s: float | None = None
    get_s: float | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(frozen=True)
class DataRoute:
    """Where one method's large values go on one of its sites."""

    method: str
    site: str
    store: str | None
    threshold: str
    lifetime: str


def check_stores(
    config: FederationConfig, base_dir: Path, size: int = 1_000_000
) -> list[StoreCheck]:
    """Write, read back and evict `size` random bytes in every declared store."""
    checks = []
    for name, declaration in config.data.stores.items():
        sites = ", ".join(declaration.sites) if declaration.sites else "everyone"
        row = StoreCheck(store=name, kind=declaration.type, sites=sites)
        try:
            store = open_store(name, declaration, base_dir, f"check-{uuid.uuid4().hex}")
        except DataStoreError as exc:
            checks.append(replace(row, error=str(exc)))
            continue
        try:
            checks.append(replace(row, **_round_trip(store, name, size)))
        except Exception as exc:  # whatever the connector raises, say it
            message = f"data store {name!r}: {type(exc).__name__}: {exc}"
            checks.append(replace(row, error=message))
        finally:
            close_store(store)
    return checks


def _round_trip(store: Any, name: str, size: int) -> dict[str, Any]:
    data = os.urandom(size)
    started = time.perf_counter()
    key = store.put(data, serializer=bytes)
    stored = time.perf_counter()
    try:
        back = store.get(key, deserializer=bytes)
        read = time.perf_counter()
    finally:
        store.evict(key)
    if back != data:
        got = "nothing" if back is None else format_size(len(back))
        raise DataStoreError(
            f"wrote {format_size(size)} and read back {got}", store=name, key=key
        )
    return {"put_s": stored - started, "get_s": read - stored}


def data_routes(config: FederationConfig) -> list[DataRoute]:
    """Every (method, site) pair and the store that carries its large values."""
    routes = []
    for method, route in config.methods.items():
        threshold = route.data.threshold or config.data.threshold
        lifetime = route.data.lifetime or config.data.lifetime
        for site in route.all_sites():
            routes.append(
                DataRoute(
                    method=method,
                    site=site,
                    store=config.store_for(method, site),
                    threshold=format_size(threshold),
                    lifetime=lifetime,
                )
            )
    return routes
