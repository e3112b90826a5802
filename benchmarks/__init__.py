"""Benchmarks of colmena-fx; run them from the repository root."""

from __future__ import annotations
