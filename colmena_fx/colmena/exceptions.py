"""Colmena's exceptions, rooted in colmena-fx's errors.

Colmena derives them from `BaseException`, so `except Exception` misses them;
here they are ordinary exceptions (and `TimeoutError`s), which every
`except TimeoutException` in a Colmena program still catches.
"""

from __future__ import annotations

from colmena_fx.exceptions import ColmenaFXError


class TimeoutException(ColmenaFXError, TimeoutError):
    """No result arrived on a topic within the timeout."""


class KillSignalException(ColmenaFXError):
    """The task server was told to stop."""
