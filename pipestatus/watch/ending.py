"""The run-detail side of the ``Watcher``: where the status poll has no jobs
(``adapter.details_on_end``: v5's batch status has stages only), a run seen to end is read in
detail once before its change goes out, so the change names the failed job. :class:`Ending` is
a base class of :class:`~pipestatus.watch.scheduler.Watcher`.

Order is kept per target: while one of its changes waits for a read, its later changes (and
another read) wait behind it. With a store, a change's write waits too, so what is written,
published and yielded again after a crash is the detailed run, and the store sees each
target's writes in the order they were made.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

import attrs

from pipestatus.model import Change, ChangeKind, Run, Target
from pipestatus.vendors._base import Adapter, contained
from pipestatus.watch._entry import Entry, Outcome
from pipestatus.watch.durable import Ledger
from pipestatus.watch.records import Write
from pipestatus.watch.tracker import run_key

__all__ = ["Ending"]

logger = logging.getLogger("pipestatus.client")

#: The kinds after which a run is read in detail (where the status has no jobs).
ENDS: Final = frozenset(
    {ChangeKind.FINISHED, ChangeKind.FIXED, ChangeKind.BROKE, ChangeKind.STILL_FAILING}
)


class Ending:
    """What a :class:`~pipestatus.watch.scheduler.Watcher` does to read ended runs in detail
    (see the module docstring)."""

    # The scheduler's own state, used here:
    _ready: deque[Change]
    _ready_ids: deque[str | None]
    _states: dict[Target, Entry]
    _ledger: Ledger | None
    _now: Callable[[], datetime]  # from Remembering

    def _init_details(self) -> None:
        self._detailed: deque[tuple[Target, Change, Outcome, Write | None]] = deque()
        # Per target waiting for a run read in detail: its later changes, in order, with their
        # writes (with a store) and whether each waits for a read of its own.
        self._held: dict[Target, deque[tuple[Change, Write | None, bool]]] = {}

    # Provided by the scheduler:
    def _track(self, work: Any) -> None:
        raise NotImplementedError

    def _poke(self) -> None:
        raise NotImplementedError

    def _emit(self, change: Change, write: Write | None = None, *, detail: bool = False) -> None:
        """``change`` goes out after the changes of its target that wait for a run read in
        detail (``detail``: it waits for its own first): without a store it is ready to be
        yielded; with one its ``write`` goes to the store, and it is yielded once written."""
        target = change.target
        held = self._held.get(target)
        if held is not None:
            held.append((change, write, detail))
        elif detail:
            self._held[target] = deque()
            self._track(self._detail(target, change, write))
        else:
            self._out(change, write)

    def _out(self, change: Change, write: Write | None) -> None:
        if write is None:
            self._ready.append(change)
            self._ready_ids.append(None)
        else:
            assert self._ledger is not None
            assert write.event is not None
            # Seen now, as far as the store goes: what it holds unacknowledged after a crash
            # is yielded again in this order, the order it is yielded in now.
            write = attrs.evolve(write, event=attrs.evolve(write.event, at=self._now()))
            self._ledger.hold(write, change)

    def _release(self, target: Target) -> None:
        """The read in detail of ``target``'s change is done: what waited behind it goes, up
        to the next change that waits for a read of its own."""
        held = self._held.pop(target, deque())
        while held:
            change, write, detail = held.popleft()
            if detail:
                self._held[target] = held
                self._track(self._detail(target, change, write))
                return
            self._out(change, write)

    def _wants_detail(
        self, target: Target, entry: Entry, kind: ChangeKind, outcome: Outcome
    ) -> bool:
        """Whether the change of ``kind`` to ``outcome`` waits for the run read in detail (it
        ended, the status has no jobs, and this run's end was not read yet)."""
        source = target.source
        if (
            kind in ENDS
            and isinstance(outcome, Run)
            and isinstance(source, Adapter)
            and source.details_on_end
            and entry.detailed != run_key(outcome)
        ):
            entry.detailed = run_key(outcome)
            return True
        return False

    async def _detail(
        self, target: Target, change: Change, write: Write | None
    ) -> dict[Target, Outcome]:
        source = target.source
        assert isinstance(source, Adapter)
        run = change.current
        assert isinstance(run, Run)
        found = await contained(source.detail(run), vendor=source.vendor)
        if isinstance(found, Run) and run_key(found) == run_key(run):
            change = attrs.evolve(change, current=found)
        else:
            logger.debug("%r: no detail for run %s: %s", target, run.run_id, found)
        self._detailed.append((target, change, run, write))
        self._poke()
        return {}

    def _absorb_details(self) -> None:
        """The runs read in detail: each change goes out with its detailed run, and then
        what waited behind it."""
        while self._detailed:
            target, change, polled, write = self._detailed.popleft()
            entry = self._states.get(target)
            if entry is not None and entry.shown is polled:  # nothing yielded since: the
                entry.shown = change.current  # next change's previous is the detailed run
            if write is not None and write.event is not None and change.current is not polled:
                event = attrs.evolve(write.event, current=change.current)
                record = attrs.evolve(write.record, shown=change.current)
                write = attrs.evolve(write, event=event, record=record)
            self._out(change, write)
            self._release(target)
