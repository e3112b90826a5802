"""The sites of a federation, as `colmena-fx endpoint list` shows them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from colmena_fx.configfiles import load_federation


@dataclass(frozen=True)
class SiteRow:
    """One site of a federation, as `colmena-fx endpoint list` shows it."""

    name: str
    transport: str
    endpoint_id: str | None
    #: The engine block's `type`, or None when someone else runs the endpoint.
    engine: str | None
    description: str
    #: Methods routed here: "train", or "infer (topic urgent)" for a topic route.
    methods: tuple[str, ...]


def federation_sites(federation_file: str | Path) -> list[SiteRow]:
    """The sites of a federation file, in its order, with the methods routed to each."""
    config, sites = load_federation(federation_file)
    routed: dict[str, list[str]] = {name: [] for name in sites}
    for method, route in config.methods.items():
        for site_name in route.sites_for(""):
            routed[site_name].append(method)
        for topic, chosen in route.topics.items():
            for site_name in [chosen] if isinstance(chosen, str) else chosen:
                routed[site_name].append(f"{method} (topic {topic})")
    rows = []
    for name, site in sites.items():
        endpoint_id = site.globus.endpoint_id
        rows.append(
            SiteRow(
                name=name,
                transport=site.transport,
                endpoint_id=str(endpoint_id) if endpoint_id else None,
                engine=site.engine["type"] if site.engine else None,
                description=site.description,
                methods=tuple(routed[name]),
            )
        )
    return rows
