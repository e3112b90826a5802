"""What one remote clock's fit reports: its offset and segments, for tables and
exports, and the corrections of its stamps, for hops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClockSegment:
    """A stretch of round trips over which a clock ran at one rate."""

    index: int
    #: Client times (ns since the epoch) of its first send and last receipt.
    start_ns: int
    end_ns: int
    #: Round trips sent before this segment began (the step's place in the run).
    after_trips: int
    trips: int
    offset_start_s: float
    offset_end_s: float
    uncertainty_start_s: float
    uncertainty_end_s: float
    drift_ppm: float
    drift_uncertainty_ppm: float
    #: The jump from the previous segment, extrapolated to this one's start.
    step_s: float | None


@dataclass(frozen=True)
class ClockOffset:
    """A remote clock's offset from the client's: remote = client + offset_s.

    Figures are at the clock's last round trip; `segments` tells its history.
    """

    site: str
    host: str
    offset_s: float
    #: The true offset lies within offset_s +- uncertainty_s, if the bounds hold.
    uncertainty_s: float
    samples: int
    #: The shortest round trip seen, away from both clocks.
    min_delay_s: float
    #: False when the clock stepped, a round trip fit nowhere, or the site's
    #: declared setting was contradicted.
    consistent: bool = True
    drift_ppm: float = 0.0
    drift_uncertainty_ppm: float = 0.0
    #: How the stamps were corrected (`ClockSetting.describe`).
    setting: str = "estimate"
    #: Round trips that fit no segment (their host stepped while holding them).
    rejected: int = 0
    segments: tuple[ClockSegment, ...] = ()
    #: Why a declared setting was set aside, with the evidence and the fix.
    warning: str = ""
    #: The host (of its site, the endpoint's) this clock's stamps are chained
    #: through; offset_s and uncertainty_s are then the chain's.
    via: str = ""

    @property
    def steps(self) -> int:
        return max(len(self.segments) - 1, 0)

    def note(self) -> str:
        """What a table says about the clock, briefly."""
        notes = []
        if self.via:
            notes.append(f"chained through {self.via}")
        if self.steps:
            notes.append(
                f"stepped {self.steps}x: "
                + ", ".join(
                    f"{(s.step_s or 0) * 1e3:+.3f} ms after {s.after_trips} tasks"
                    for s in self.segments[1:]
                )
            )
        if self.rejected:
            notes.append(f"{self.rejected} round trips fit no segment")
        if self.warning:
            notes.append(self.warning)
        return "; ".join(notes)


@dataclass(frozen=True)
class Correction:
    """Per remote stamp: the offset to subtract (ns), its +- (ns), and the +- of
    the clock's rate there (s per s), which bounds hops within that clock."""

    offset_ns: np.ndarray
    error_ns: np.ndarray
    rate_error: np.ndarray
    #: The host (of the same site) whose clock these stamps were chained to, and
    #: their +- against that clock (ns): a hop between the two clocks is
    #: uncertain by that, not by both clocks' +- against the client's.
    via: str = ""
    via_error_ns: np.ndarray | None = None
    #: How far each stamp's offset was moved off its clock's line (ns; by its
    #: task's own send and receipt): two stamps of one clock share the line's
    #: error, but not these moves.
    moved_ns: np.ndarray | None = None
