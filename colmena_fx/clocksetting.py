"""What a user knows about a site's clocks: its `clocks:` setting (README, "Clocks").

A schema of its own: the latency layer reads it without the rest of the site and
federation file schemas (`config`), which use it.
"""

from __future__ import annotations

from typing import Any
from typing import Literal

from pydantic import Field
from pydantic import model_validator

from colmena_fx.schema import StrictModel

ClockMode = Literal["estimate", "synchronized"]


class ClockSetting(StrictModel):
    """What is known about a site's clocks, against the client's (README, "Clocks").

    Written as `estimate`, `synchronized`, or a mapping with the fields below.
    """

    #: `estimate`: from each task's round trip; `synchronized`: the clocks are
    #: disciplined (PTP, NTP) to agree within `within_ms`.
    mode: ClockMode = "estimate"
    #: With `synchronized`: how far apart the clocks may be (0: not at all).
    within_ms: float = Field(default=0.0, ge=0)
    #: With `estimate`: the least one-way delays of the link, client to site and
    #: back, where they were measured; a round trip cannot split an asymmetric
    #: path between its two directions by itself.
    link_out_ms: float = Field(default=0.0, ge=0)
    link_back_ms: float = Field(default=0.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_word(cls, value: Any) -> Any:
        return {"mode": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _fields_fit_the_mode(self) -> ClockSetting:
        if self.mode == "estimate" and self.within_ms:
            raise ValueError(
                "'within_ms' bounds synchronized clocks: write 'mode: synchronized' "
                "with it, or leave it out to estimate the offsets"
            )
        if self.mode == "synchronized" and (self.link_out_ms or self.link_back_ms):
            raise ValueError(
                "'link_out_ms'/'link_back_ms' refine an estimate: write "
                "'mode: estimate' with them, or 'within_ms' for synchronized clocks"
            )
        return self

    def describe(self) -> str:
        """A few words for tables and journal readers: `synchronized within 1 ms`."""
        if self.mode == "synchronized":
            return (
                f"synchronized within {self.within_ms:g} ms"
                if self.within_ms
                else ("synchronized")
            )
        if self.link_out_ms or self.link_back_ms:
            return (
                f"estimate, least one-way delays {self.link_out_ms:g} ms out, "
                f"{self.link_back_ms:g} ms back"
            )
        return "estimate"
