"""A self-contained HTML report of a finished run, read from its journal."""

from __future__ import annotations

from colmena_fx.report.writer import write_report

__all__ = ["write_report"]
