"""The scope side of the ``Watcher``: scopes (``adapter.scope(...)``) re-expanded on the
scheduler's heap. :class:`Scoping` is a base class of
:class:`~pipestatus.watch.scheduler.Watcher`; a watch of named targets only never runs it.

A pipeline that appears in a listing is watched (its first observation yields ``FIRST``, or,
with a store that remembers it, whatever changed since); one that goes away yields ``REMOVED``
unless it is still in another scope or named on its own. Where the listing carries latest runs
(``adapter.lists_latest``) it is the poll of its pipelines, which are then not polled one by
one. A scope is listed again at least every :data:`MAX_RESCAN` intervals.
"""

from __future__ import annotations

import heapq
import logging
import random
from collections import deque
from typing import Any, Final

from pipestatus.errors import NotFoundError, PipestatusError
from pipestatus.model import Change, Pipeline, Run, Scope, Target
from pipestatus.vendors._base import Adapter, contained
from pipestatus.watch import pace as _pace
from pipestatus.watch._entry import Entry, Outcome, ScopeEntry, loop_time
from pipestatus.watch.pace import IDLE_GROWTH, Pace, Pacing, next_poll
from pipestatus.watch.records import Shared, Write
from pipestatus.watch.replicas import owned
from pipestatus.watch.tracker import Memory, depart, observe, run_key

__all__ = ["MAX_RESCAN", "Scoping", "Survey"]

logger = logging.getLogger("pipestatus.client")

Survey = list[tuple[Pipeline, Outcome | None]]

#: A scope is re-expanded at least this often, in watch intervals.
MAX_RESCAN: Final = 10


class Scoping:
    """What a :class:`~pipestatus.watch.scheduler.Watcher` does with scopes (see the module
    docstring)."""

    # The scheduler's own state, used here:
    pacing: Pacing
    errors: bool
    _rng: random.Random
    _states: dict[Target, Entry]
    _results: deque[tuple[Target, Outcome, Entry, float]]
    _batching: dict[Adapter[Any], set[Target]]
    _heap: list[tuple[float, int, Target]]
    _seq: int
    _shared: Shared | None

    def _init_scopes(self) -> None:
        self._scopes: dict[Scope, ScopeEntry] = {}
        self._owners: dict[Target, set[Scope]] = {}  # a scope's pipelines: which scopes
        self._explicit: set[Target] = set()  # targets added by name, not only by a scope
        self._surveys: deque[tuple[Scope, Survey | PipestatusError]] = deque()
        self._scope_groups: dict[Scope, str] = {}  # replicas: each scope's group

    # Provided by the scheduler:
    def _start(self, target: Target, due: float | None = None) -> Entry | None:
        raise NotImplementedError

    def _forget(self, target: Target) -> None:
        raise NotImplementedError

    def _schedule(self, target: Target, entry: Entry, due: float) -> None:
        raise NotImplementedError

    def _poke(self) -> None:
        raise NotImplementedError

    def _track(self, work: Any) -> None:
        raise NotImplementedError

    def _emit(self, change: Change, write: Write | None = None, *, detail: bool = False) -> None:
        raise NotImplementedError

    # --- scopes added and removed ---------------------------------------------------------------

    def _start_scope(self, scope: Scope) -> None:
        if scope not in self._scopes:
            entry = self._scopes[scope] = ScopeEntry(pace=Pace(delay=self.pacing.interval))
            self._schedule_scope(scope, entry, 0.0)
            self._poke()

    def _stop_scope(self, scope: Scope) -> None:
        """Stop listing ``scope``; its pipelines not watched otherwise are forgotten (no
        ``REMOVED``: they did not leave it)."""
        entry = self._scopes.pop(scope, None)
        for member in entry.members if entry is not None else ():
            owners = self._owners.get(member, set())
            owners.discard(scope)
            if not owners:
                self._owners.pop(member, None)
                if member not in self._explicit:
                    self._forget(member)

    def _assign_scopes(self, members: tuple[str, ...]) -> None:
        """Replicas: list the scopes whose group this member owns among ``members``."""
        assert self._shared is not None
        mine = owned(self._scope_groups, members, self._shared.member)
        for scope in [scope for scope in self._scopes if scope not in mine]:
            self._stop_scope(scope)
        for scope in mine:
            self._start_scope(scope)

    def _schedule_scope(self, scope: Scope, entry: ScopeEntry, due: float) -> None:
        entry.due = due
        entry.in_flight = False
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, scope))

    def _due_scope(self, scope: Scope, when: float, now: float) -> bool:
        """Whether the heap's entry for ``scope`` at ``when`` is due (else removed or stale);
        due: it goes out now."""
        entry = self._scopes.get(scope)
        if entry is None or entry.in_flight or entry.due != when:
            return False
        entry.in_flight = True
        entry.sent = now
        return True

    # --- listings -------------------------------------------------------------------------------

    async def _survey(self, source: Adapter[Any], scope: Scope) -> dict[Target, Outcome]:
        found = await contained(source.survey(scope), vendor=source.vendor)
        self._surveys.append((scope, found))
        self._poke()
        return {}

    def _absorb_survey(self, scope: Scope, found: Survey | PipestatusError, now: float) -> None:
        """A scope's listing: watch what appeared, yield ``REMOVED`` for what went away, and
        (where the listing carries latest runs) take each pipeline's run as its poll."""
        entry = self._scopes.get(scope)
        if entry is None or not entry.in_flight:
            return  # removed meanwhile
        source = scope.source
        assert isinstance(source, Adapter)
        if isinstance(found, PipestatusError):
            self._survey_failed(scope, entry, found, now)
            return
        entry.logged = None
        entry.memory = Memory()
        listed = {pipeline.target: latest for pipeline, latest in found}
        for gone in entry.members - listed.keys():
            self._leave(scope, gone)
        busy = False
        members: set[Target] = set()
        for target, latest in listed.items():
            member = self._states.get(target)
            if member is None:
                member = self._start(target, now)
                if member is None:
                    continue  # not watched here (see _start)
                busy = True
            members.add(target)
            self._owners.setdefault(target, set()).add(scope)
            if not source.lists_latest:
                continue
            outcome: Outcome = latest if latest is not None else source._never_ran(target.ids[0])
            if isinstance(outcome, Run):
                known = member.memory
                if (
                    known.run != run_key(outcome)
                    or known.status is not outcome.status
                    or not outcome.status.is_terminal
                ):
                    busy = True
            if not member.scoped:
                member.scoped = True
                self._batching.get(source, set()).discard(target)
            member.in_flight = True
            member.due = -1.0  # stale heap entries of its own polling are skipped
            self._results.append((target, outcome, member, entry.sent))
        entry.members = members
        if source.lists_latest:
            delay = self.pacing.interval if busy else entry.pace.delay * IDLE_GROWTH
        else:
            delay = self._rescan()
        delay = min(delay, self._rescan())
        entry.pace = Pace(delay=delay, rounds=entry.pace.rounds + 1)
        self._schedule_scope(scope, entry, now + delay * _pace.jitter(entry.pace.rounds, self._rng))

    def _survey_failed(
        self, scope: Scope, entry: ScopeEntry, error: PipestatusError, now: float
    ) -> None:
        """A listing that failed: logged once, yielded as the scope's own change (with
        ``errors=True``), listed again on the error backoff. Its pipelines stay watched."""
        text = str(error)
        if entry.logged != text:
            logger.warning("%r: %s", scope, text)
            entry.logged = text
        step = observe(entry.memory, error, errors=self.errors)
        entry.memory = step.memory
        if step.kind is not None:
            self._emit(Change(target=scope, previous=None, current=error, kind=step.kind))
        entry.pace, wait = next_poll(entry.pace, error, self.pacing, unchanged=False, rng=self._rng)
        self._schedule_scope(scope, entry, now + min(wait, self._rescan()))

    def _rescan(self) -> float:
        """The longest a scope waits between listings."""
        return min(self.pacing.idle_interval, MAX_RESCAN * self.pacing.interval)

    def _leave(self, scope: Scope, target: Target) -> None:
        owners = self._owners.get(target, set())
        owners.discard(scope)
        if owners:
            return  # still in another watched scope
        self._owners.pop(target, None)
        entry = self._states.get(target)
        if entry is None:
            return
        if target in self._explicit:  # named on its own too: back to polling it alone
            source = target.source
            assert isinstance(source, Adapter)
            if entry.scoped:
                entry.scoped = False
                if source.batches:
                    self._batching.setdefault(source, set()).add(target)
                self._schedule(target, entry, loop_time())
            return
        self._forget(target)
        step = depart(entry.memory)
        if step.kind is not None:
            gone = NotFoundError(
                status=404,
                vendor=target.vendor,
                message=f"pipeline {'/'.join(target.ids)} is no longer in {scope!r}",
            )
            self._emit(Change(target=target, previous=entry.shown, current=gone, kind=step.kind))
