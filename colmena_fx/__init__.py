"""colmena-fx: a federated steering client for AI-in-the-loop campaigns."""

from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
