"""The seam through which a resumed watch reads what it missed: a target's run history.

An adapter whose vendor keeps a run history offers it with one method (duck-typed; see
:class:`History`)::

    def history(self, target: Target, *, since: datetime | None) -> AsyncIterator[Run]:
        '''The target's runs, newest first, that started at or after ``since`` (None: all).'''

A watch that starts from a stored memory and first sees *another* run than the one it
remembers asks for the runs since the remembered one started (:func:`missed_runs`), so a run
that finished while it was down is announced with its real kind even when a newer run has
started since (:func:`pipestatus.watch.tracker.catch_up`). Adapters without the method are
watched as before: the newest run is all there is to see.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Final, Protocol, runtime_checkable

from pipestatus.model import Run, Target
from pipestatus.watch.tracker import RunKey, run_key

__all__ = ["MAX_MISSED", "History", "history_of", "missed_runs"]

#: At most this many runs are read back from a history: the finishes of a longer downtime
#: beyond them are not announced (the newest run still is).
MAX_MISSED: Final = 50


@runtime_checkable
class History(Protocol):
    """An adapter that can list a target's runs, newest first."""

    def history(self, target: Target, *, since: datetime | None) -> AsyncIterator[Run]: ...


def history_of(target: Target) -> History | None:
    """The target's adapter, if it offers a history."""
    source = target.source
    return source if isinstance(source, History) else None


async def missed_runs(
    source: History, target: Target, *, since: datetime | None, remembered: RunKey | None
) -> list[Run]:
    """The runs since the remembered one, oldest first: read newest first down to the
    remembered run (included: it may have finished meanwhile), at most :data:`MAX_MISSED`."""
    runs: list[Run] = []
    iterator = source.history(target, since=since)
    try:
        async for run in iterator:
            runs.append(run)
            if run_key(run) == remembered or len(runs) >= MAX_MISSED:
                break
    finally:
        close = getattr(iterator, "aclose", None)
        if close is not None:  # stopped early: let the adapter's generator clean up now
            await close()
    runs.reverse()
    return runs
