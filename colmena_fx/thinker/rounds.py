"""One set of an event, answered by every responder that waits on it.

Without it, the first responder to wake clears the event and a second one, busy
or slower to wake, misses that set (two responders on one event saw 5 and 4 of 5
sets). Here each responder that sees the event set joins the round; the last to
join clears the event and lets them all go, so each answers every round once.
"""

from __future__ import annotations

import threading

from colmena_fx.thinker.resources import CancelFlag

#: Longest wait between checks of the cancel flag, in seconds.
POLL_S = 0.05


class EventRound:
    """A reusable rendezvous of `members` responders of one event."""

    def __init__(self, event: threading.Event, members: int) -> None:
        self.event = event
        self.members = members
        self._joined = 0
        self._round = 0
        self._changed = threading.Condition()

    def join(self, cancel_if: CancelFlag) -> bool:
        """Wait until every member has seen the event set; False if cancelled."""
        with self._changed:
            this_round = self._round
            self._joined += 1
            if self._joined >= self.members:
                self._joined = 0
                self._round += 1
                self.event.clear()
                self._changed.notify_all()
                return True
            while self._round == this_round:
                if cancel_if.is_set():
                    return False
                self._changed.wait(POLL_S)
            return True
