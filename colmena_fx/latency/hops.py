"""The named hops of a task's timeline, defined once from the event names.

A task passes a fixed chain of stamps, client to worker and back. A hop is the
time between two consecutive stamps of that chain. Transports stamp what they can
see: the Globus Compute service hides when the endpoint received and sent a task,
so those stamps are missing, and the hops on both sides of a missing stamp merge
into one wider hop named after both (`link_out+endpoint_queue`) rather than being
guessed.

Stamps of the client's own process are in the client's clock; every other stamp is
in the clock of the remote host that made it (see `clocks`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from colmena_fx.models import Stamp

#: The chain of stamps a task can meet, in order.
CHAIN: tuple[Stamp, ...] = (
    Stamp.CREATED,
    Stamp.SERIALIZED,
    Stamp.SENT,
    Stamp.ENDPOINT_RECEIVED,
    Stamp.EXECUTION_STARTED,
    Stamp.WORKER_STARTED,
    Stamp.COMPUTE_STARTED,
    Stamp.COMPUTE_ENDED,
    Stamp.WORKER_ENDED,
    Stamp.EXECUTION_ENDED,
    Stamp.ENDPOINT_SENT,
    Stamp.RECEIVED,
    Stamp.DESERIALIZED,
    Stamp.DELIVERED,
    Stamp.PROCESSED,
)

#: The hop that ends at each stamp of `CHAIN` (after the first), in order.
HOP_NAMES: tuple[str, ...] = (
    "serialize",  # arguments to bytes, in the submitting thread
    "client_queue",  # handed to the transport until sent on the wire
    "link_out",  # client to endpoint
    "endpoint_queue",  # in the endpoint and its engine until a worker takes it
    "worker_start",  # the engine unpacks the task on the worker
    "input_resolve",  # the shim deserializes (and resolves) the inputs
    "compute",  # the user function
    "result_serialize",  # the value to bytes on the worker
    "worker_return",  # the engine packs the result on the worker
    "endpoint_return",  # through the engine and endpoint until sent back
    "link_back",  # endpoint to client
    "deserialize",  # the value from bytes, on the client
    "delivery",  # waiting in the topic queue for the thinker
    "thinker",  # the thinker's result processor
)

#: Stamps of the steps that move large values by reference, in pairs (start, end).
#: They lie off the chain: each step happens inside a chain hop (`input_put` in
#: `serialize`, `input_data` in `input_resolve`, `result_put` in
#: `result_serialize`), or whenever the thinker first uses a result
#: (`result_data`), so they are measured as spans of their own.
DATA_STAMPS: tuple[Stamp, ...] = (
    Stamp.INPUT_PUT_STARTED,
    Stamp.INPUT_PUT_ENDED,
    Stamp.INPUT_DATA_STARTED,
    Stamp.INPUT_DATA_ENDED,
    Stamp.RESULT_PUT_STARTED,
    Stamp.RESULT_PUT_ENDED,
    Stamp.RESULT_DATA_STARTED,
    Stamp.RESULT_DATA_ENDED,
)

#: Every stamp a timeline table keeps: the chain, then the data steps.
COLUMNS: tuple[Stamp, ...] = (*CHAIN, *DATA_STAMPS)

#: Stamps made by the client's own process, in the client's clock.
CLIENT_STAMPS: frozenset[str] = frozenset(
    stamp.value
    for stamp in (
        Stamp.CREATED,
        Stamp.SERIALIZED,
        Stamp.SENT,
        Stamp.RECEIVED,
        Stamp.DESERIALIZED,
        Stamp.DELIVERED,
        Stamp.PROCESSED,
        Stamp.INPUT_PUT_STARTED,
        Stamp.INPUT_PUT_ENDED,
        Stamp.RESULT_DATA_STARTED,
        Stamp.RESULT_DATA_ENDED,
    )
)

POSITION: dict[str, int] = {stamp.value: i for i, stamp in enumerate(COLUMNS)}


@dataclass(frozen=True)
class Hop:
    """The time from stamp `CHAIN[first]` to stamp `CHAIN[last]`."""

    first: int
    last: int

    @property
    def name(self) -> str:
        return "+".join(HOP_NAMES[self.first : self.last])

    @property
    def start(self) -> str:
        return CHAIN[self.first].value

    @property
    def end(self) -> str:
        return CHAIN[self.last].value

    @property
    def order(self) -> tuple[int, int]:
        return self.first, self.last


def hops_between(present: Sequence[int]) -> list[Hop]:
    """The hops of a task that has the stamps at `present` positions of `CHAIN`.

    Consecutive present stamps bound one hop each; whatever lies between them
    (missing stamps) merges into it.
    """
    ordered = sorted(position for position in present if position < len(CHAIN))
    return [Hop(a, b) for a, b in itertools.pairwise(ordered)]


#: Spans, each measured within one clock: whole-task spans on the client's, then
#: the data steps on the clock of the host that took them.
SPANS: dict[str, tuple[Stamp, Stamp]] = {
    "round_trip": (Stamp.SENT, Stamp.RECEIVED),
    "total": (Stamp.CREATED, Stamp.DELIVERED),
    "input_put": (Stamp.INPUT_PUT_STARTED, Stamp.INPUT_PUT_ENDED),
    "input_data": (Stamp.INPUT_DATA_STARTED, Stamp.INPUT_DATA_ENDED),
    "result_put": (Stamp.RESULT_PUT_STARTED, Stamp.RESULT_PUT_ENDED),
    "result_data": (Stamp.RESULT_DATA_STARTED, Stamp.RESULT_DATA_ENDED),
}

#: Every hop name a full chain can have, then the spans, in display order.
ALL_HOP_NAMES: tuple[str, ...] = (*HOP_NAMES, *SPANS)


def hop_durations(events: Iterable[Any]) -> dict[str, float]:
    """Seconds of each hop of one task as stamped, uncorrected for clock offsets.

    For a single host's timeline (a benchmark, a local site); across hosts use
    `LatencyRecorder`, which corrects each remote clock first.
    """
    times = {name: time_ns for name, time_ns, *_ in events}
    present = [POSITION[name] for name in times if name in POSITION]
    return {
        hop.name: (times[hop.end] - times[hop.start]) / 1e9
        for hop in hops_between(present)
    }
