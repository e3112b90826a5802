"""`colmena-fx probe`: every site of a federation measured with echo tasks."""

from __future__ import annotations

from colmena_fx.probe.run import DEFAULT_SIZES
from colmena_fx.probe.run import MODES
from colmena_fx.probe.run import ProbeReport
from colmena_fx.probe.run import ProbeRow
from colmena_fx.probe.run import echo
from colmena_fx.probe.run import probe_federation
from colmena_fx.probe.table import probe_tables

__all__ = [
    "DEFAULT_SIZES",
    "MODES",
    "ProbeReport",
    "ProbeRow",
    "echo",
    "probe_federation",
    "probe_tables",
]
