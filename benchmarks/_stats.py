"""Order statistics shared by the benchmarks: median, p95, spread over rounds.

Both benchmarks measure the paths they compare in alternating rounds, with every
path started before the first round, and compute each ratio within one round
(path B's figure of round i over path A's figure of round i). Load that hits a
round then hits both paths alike, and the ratios stop following the machine's
drift between phases. `Spread` summarises such per-round values as median
[min-max], so a report shows how far one round can be from another.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0 to 100), linear between the order statistics.

    The same definition as numpy's default and `statistics.quantiles(...,
    method="inclusive")`, and it also takes a single value: a p95 over a handful
    of samples is close to their maximum, which is what it should then say.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0-100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def p95(values: Sequence[float]) -> float:
    """The 95th percentile: the tail a steering loop waiting on results sees."""
    return percentile(values, 95)


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Element-wise `numerators[i] / denominators[i]`: one ratio per round."""
    if len(numerators) != len(denominators):
        raise ValueError(
            f"{len(numerators)} numerators for {len(denominators)} denominators"
        )
    return [top / bottom for top, bottom in zip(numerators, denominators, strict=True)]


@dataclass(frozen=True)
class Spread:
    """Values measured once per round, and their median [min-max]."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            raise ValueError("spread of no values")
        return cls(tuple(values))

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def text(self, digits: int, suffix: str = "") -> str:
        """`median [min-max]`, each with `digits` decimals and `suffix` (a unit)."""
        return (
            f"{self.median:.{digits}f}{suffix} "
            f"[{self.low:.{digits}f}-{self.high:.{digits}f}]"
        )

    def summary(self, digits: int) -> dict[str, Any]:
        """For the JSON lines: the median, the range and every round's value."""
        return {
            "median": round(self.median, digits),
            "min": round(self.low, digits),
            "max": round(self.high, digits),
            "rounds": [round(value, digits) for value in self.values],
        }
