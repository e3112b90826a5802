"""The named hops of a task's timeline, defined once from the event names.

A hop is the time between two stamps. When a hop's two stamps come from different
hosts its raw duration mixes in the offset between their clocks; `crosses_clocks`
marks those, so reports can say which numbers need clock correction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from colmena_fx.models import Stamp


@dataclass(frozen=True)
class Hop:
    name: str
    start: str
    end: str
    #: Stamped by two different processes, possibly on two hosts.
    crosses_clocks: bool = False


HOPS: tuple[Hop, ...] = (
    Hop("serialize", Stamp.CREATED, Stamp.SERIALIZED),
    Hop("client_send", Stamp.SERIALIZED, Stamp.SENT),
    Hop("link_out", Stamp.SENT, Stamp.ENDPOINT_RECEIVED, crosses_clocks=True),
    Hop(
        "endpoint_queue",
        Stamp.ENDPOINT_RECEIVED,
        Stamp.WORKER_STARTED,
        crosses_clocks=True,
    ),
    Hop("input_resolve", Stamp.WORKER_STARTED, Stamp.COMPUTE_STARTED),
    Hop("compute", Stamp.COMPUTE_STARTED, Stamp.COMPUTE_ENDED),
    Hop("result_serialize", Stamp.COMPUTE_ENDED, Stamp.WORKER_ENDED),
    Hop(
        "endpoint_return", Stamp.WORKER_ENDED, Stamp.ENDPOINT_SENT, crosses_clocks=True
    ),
    Hop("link_back", Stamp.ENDPOINT_SENT, Stamp.RECEIVED, crosses_clocks=True),
    Hop("deserialize", Stamp.RECEIVED, Stamp.DESERIALIZED),
    Hop("delivery", Stamp.DESERIALIZED, Stamp.DELIVERED),
)

#: Whole-task spans, always measured within the client's own clock.
SPANS: tuple[Hop, ...] = (
    Hop("round_trip", Stamp.SENT, Stamp.RECEIVED),
    Hop("total", Stamp.CREATED, Stamp.DELIVERED),
)


def _times(events: list[Any]) -> dict[str, int]:
    """Event name -> time_ns from `Event`s or journal lists (the last one wins)."""
    return {event[0]: event[1] for event in events}


def hop_durations(
    events: list[Any], hops: tuple[Hop, ...] = HOPS + SPANS
) -> dict[str, float]:
    """Seconds spent in each hop whose two stamps are both present (raw clocks)."""
    times = _times(events)
    durations = {}
    for hop in hops:
        if hop.start in times and hop.end in times:
            durations[hop.name] = (times[hop.end] - times[hop.start]) / 1e9
    return durations
