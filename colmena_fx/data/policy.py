"""What a worker is told about large values: small, and cheap to import.

Every worker imports the shim, and through it this module; ProxyStore and the
store machinery (`data.stores`) load only in workers that meet a stored value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from proxystore.store.config import StoreConfig


@dataclass(frozen=True)
class DataPolicy:
    """What a worker needs to know to return a large value by reference.

    Travels with each task; `store` is None when no store serves the method.
    """

    store: StoreConfig | None
    store_name: str
    threshold: int
    #: The engine's limit on a result as sent (after base64).
    result_limit: int


def argument_name(where: object, method: str) -> str:
    """`argument 2 of 'simulate'` from a 0-based `where` ("1", "1[0]", "model")."""
    head, bracket, rest = str(where).partition("[")
    name = str(int(head) + 1) if head.isdigit() else repr(head)
    return f"argument {name}{bracket}{rest} of {method!r}"
