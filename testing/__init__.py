"""Test support kept in the repository, not the package: sites, task functions."""

from __future__ import annotations
