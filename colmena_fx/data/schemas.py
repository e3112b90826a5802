"""The `data:` block of a federation file: its stores, threshold and lifetime.

Only schemas: loading a site or federation file must not import ProxyStore or a
Redis client (`data.stores` opens the stores these declare).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from typing import Literal

from pydantic import BeforeValidator
from pydantic import Field

from colmena_fx.schema import StrictModel
from colmena_fx.units import parse_size

#: The site name that stands for the thinker's own machine in `sites` lists.
CLIENT = "client"
Size = Annotated[int, BeforeValidator(parse_size), Field(ge=0)]


class _StoreDeclaration(StrictModel):
    #: Who can reach the store: site names and `client`; unset means everyone.
    sites: list[str] | None = None
    #: Deserialized objects each process keeps (per store) for reuse; 0 disables.
    cache_size: int = Field(default=0, ge=0)

    def reaches(self, site: str) -> bool:
        return self.sites is None or site in self.sites


class FileStore(_StoreDeclaration):
    """A directory every party mounts at the same path (a shared file system)."""

    type: Literal["file"]
    #: Relative paths are relative to the federation file.
    path: Path


class RedisStore(_StoreDeclaration):
    """A Redis server every party can connect to."""

    type: Literal["redis"]
    host: str = "127.0.0.1"
    port: int = Field(default=6379, ge=1, le=65535)
    #: Seconds to wait for the server before giving up (a down server is an
    #: error, never a hang).
    timeout_s: float = Field(default=5.0, gt=0)


class GlobusStore(_StoreDeclaration):
    """Globus Transfer collections, for data that must cross facilities.

    `collections` maps each collection's UUID to `host_regex` (which hosts use it),
    `endpoint_path` (the directory as the collection sees it) and `local_path` (the
    same directory as those hosts mount it), as ProxyStore's `GlobusConnector`
    takes them. Needs `proxystore-globus-auth login` once on every host.
    """

    type: Literal["globus"]
    collections: dict[str, dict[str, str]] = Field(min_length=2)
    #: Seconds a resolve waits for its transfer to finish.
    timeout_s: int = Field(default=60, gt=0)


StoreDeclaration = Annotated[
    FileStore | RedisStore | GlobusStore, Field(discriminator="type")
]
Lifetime = Literal["task", "campaign", "keep"]


class DataConfig(StrictModel):
    """The `data:` block of a federation file."""

    #: Name -> store. For a task, the first store (in this order) that reaches both
    #: the client and the task's site carries its large values, unless the method
    #: names one.
    stores: dict[str, StoreDeclaration] = Field(default_factory=dict)
    #: Values whose serialized size is at or over this go by reference.
    threshold: Size = 1_000_000
    #: `task`: an argument is evicted when its task finishes, a result when the
    #: thinker drops it (and no task in flight carries it); `campaign`: everything
    #: is evicted when the federation stops; `keep`: never evicted by colmena-fx.
    #: Whatever is left when the federation stops is evicted, except `keep`.
    lifetime: Lifetime = "task"


class MethodData(StrictModel):
    """A method's own data settings (`methods.<name>.data`), over `data:`'s."""

    store: str | None = None
    threshold: Size | None = None
    lifetime: Lifetime | None = None
