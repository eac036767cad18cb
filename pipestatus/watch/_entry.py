"""One watched target as the scheduler keeps it (shared by the scheduler and its store side)."""

from __future__ import annotations

from datetime import datetime

import attrs

from pipestatus.errors import PipestatusError
from pipestatus.model import Run
from pipestatus.watch.pace import Pace
from pipestatus.watch.tracker import Memory

__all__ = ["Entry", "Outcome"]

Outcome = Run | PipestatusError


@attrs.define
class Entry:
    """One watched target: what the tracker remembers, its pace, and the scheduler's own
    bookkeeping."""

    pace: Pace
    memory: Memory = attrs.Factory(Memory)
    due: float = 0.0
    in_flight: bool = False
    factor: float | None = None  # the jitter shared by a batch this target was polled in
    shown: Outcome | None = None  # the last observation yielded: the next change's previous
    logged: str | None = None  # the error last logged at WARNING
    # With a store only:
    key: str = ""  # the target's key in the store
    version: int = 0  # the version of its stored record
    since: datetime | None = None  # when the remembered run started
    ready: bool = True  # its memory is known (False: being loaded, or catching up on history)
    resumed: bool = False  # its memory came from the store and it has not been observed since
    stash: Outcome | None = None  # the latest observation made while not ready

    @property
    def delay(self) -> float:
        return self.pace.delay

    @property
    def failures(self) -> int:
        return self.pace.failures
