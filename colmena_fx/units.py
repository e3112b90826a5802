"""Sizes and durations as people write and read them, in one place.

Sizes follow the convention of the limits they are compared with: `MB` is 10^6
bytes (Globus Compute's submission limit), `MiB` is 2^20 (the engine's result
limit); both are accepted wherever a size is read.
"""

from __future__ import annotations

import re

from colmena_fx.exceptions import UsageError

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9,
          "kib": 2**10, "mib": 2**20, "gib": 2**30}  # fmt: skip
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(value: object) -> int:
    """Bytes from `1000000`, `"1 MB"` (10^6), `"1 MiB"` (2^20) or `"512B"`."""
    if isinstance(value, bool):
        raise UsageError(f"expected a size such as '10 MB', got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise UsageError(f"a size cannot be negative, got {value!r}")
        return int(value)
    match = _SIZE.match(str(value))
    unit = match[2].lower() if match else ""
    if match is None or unit not in _UNITS:
        raise UsageError(
            f"expected a size such as 1000000, '10 MB' or '4 MiB', got {value!r}"
        )
    return int(float(match[1]) * _UNITS[unit])


def format_size(size: float) -> str:
    """`12.6 MB`, `1 MB`, `512 B`: decimal units, as the limits are quoted."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{_trim(size / scale)} {unit}"
    return f"{size:.0f} B"


def format_ms(seconds: float | None) -> str:
    """Milliseconds to about three significant digits; `-` for no value."""
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    magnitude = abs(ms)
    if magnitude >= 100:
        return f"{ms:.0f}"
    if magnitude >= 10:
        return f"{ms:.1f}"
    return f"{ms:.2f}" if magnitude >= 1 else f"{ms:.3f}"


def _trim(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")
