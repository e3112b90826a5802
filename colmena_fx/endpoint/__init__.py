"""The embedded endpoint: a separate process per local site, running a real engine."""

from __future__ import annotations
