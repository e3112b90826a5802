"""The endpoint of a local site: a process running a real engine, started by its
client (embedded) or by `colmena-fx endpoint start` (standalone, outliving clients)."""

from __future__ import annotations
