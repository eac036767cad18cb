"""One watched target as the scheduler keeps it (shared by the scheduler and its store side)."""

from __future__ import annotations

import asyncio
from datetime import datetime

import attrs

from pipestatus.errors import PipestatusError
from pipestatus.model import Run, Target
from pipestatus.watch.pace import Pace
from pipestatus.watch.tracker import Memory, RunKey

__all__ = ["Entry", "Outcome", "ScopeEntry", "loop_time"]

Outcome = Run | PipestatusError


def loop_time() -> float:
    """The running loop's time, or 0.0 outside one (a watcher made before it runs)."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return 0.0


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
    scoped: bool = False  # polled by its scope's listing, not on its own
    detailed: RunKey | None = None  # the run whose end was last read in detail
    counted: bool = False  # in flight and counted against its transport's slots
    # With a store only:
    key: str = ""  # the target's key in the store
    version: int = 0  # the version of its stored record
    since: datetime | None = None  # when the remembered run started
    ready: bool = True  # its memory is known (False: being loaded, or catching up on history)
    resumed: bool = False  # its memory came from the store and it has not been observed since
    stash: Outcome | None = None  # the latest observation made while not ready
    stash_sent: float = 0.0  # ...and when its poll went out (loop time)
    taken: float = -1.0  # when its memory last came from the store: polls sent before are stale

    @property
    def delay(self) -> float:
        return self.pace.delay

    @property
    def failures(self) -> int:
        return self.pace.failures


@attrs.define
class ScopeEntry:
    """One watched scope: its pipelines at the last listing and its pace."""

    pace: Pace
    members: set[Target] = attrs.Factory(set)
    memory: Memory = attrs.Factory(Memory)  # for its own errors only
    due: float = 0.0
    in_flight: bool = False
    logged: str | None = None
    sent: float = 0.0  # when its listing last went out (loop time)
