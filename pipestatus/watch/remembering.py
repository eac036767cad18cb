"""The store side of the ``Watcher``: loading each target's memory, writing each change before
it is yielded, catching up on a run history after a restart, and sharing the targets among
replicas. :class:`Remembering` is a base class of
:class:`~pipestatus.watch.scheduler.Watcher`; without a store none of it runs.

Per target (an :class:`~pipestatus.watch._entry.Entry`) the states are:

* **loading**: its record is asked of the store; observations made meanwhile are kept (the
  latest one) and observed once the memory is known: nothing is announced against a memory
  the watch does not have;
* **ready**: each observation goes through the tracker; a change becomes a
  :class:`~pipestatus.watch.records.Write` of the memory it leaves plus its event, queued on the
  ledger, and is yielded once the store has taken it;
* **catching up**: the first observation after a resume shows another run than the one
  remembered, and the adapter has a history: the runs since the remembered one are read, their
  finishes announced oldest first (:func:`~pipestatus.watch.tracker.catch_up`), then the run
  seen now.

A write the store refuses (another replica advanced the target first) is dropped with the
writes queued after it for that target, and the stored record becomes the memory.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pipestatus.errors import PipestatusError, StoreError, StoreUnavailableError
from pipestatus.model import Change, ChangeKind, Run, Scope, Target
from pipestatus.vendors._base import contained
from pipestatus.watch._entry import Entry, Outcome, loop_time
from pipestatus.watch.durable import Done, Ledger, Outage
from pipestatus.watch.history import History, history_of, missed_runs
from pipestatus.watch.keys import target_key
from pipestatus.watch.records import (
    Event,
    Publisher,
    Record,
    Shared,
    Store,
    Stored,
    Write,
    event_id,
)
from pipestatus.watch.replicas import RENEW, owned
from pipestatus.watch.tracker import Memory, Step, catch_up, observe, run_key

__all__ = ["Remembering"]

logger = logging.getLogger("pipestatus.watch")


class Remembering:
    """What a :class:`~pipestatus.watch.scheduler.Watcher` does with a store (see the module
    docstring)."""

    # The scheduler's own state, used here:
    errors: bool
    _rng: random.Random
    _states: dict[Target, Entry]
    _ready: deque[Change]
    _ready_ids: deque[str | None]
    _closed: bool

    def _init_store(self, store: Store | None, publish: Publisher | None) -> None:
        #: Called with a target and the observation last yielded for it as the store hands
        #: them back at the start (a dashboard shows them until the target changes).
        self.on_resume: Callable[[Target, Outcome], None] | None = None
        self._ledger: Ledger | None = None
        self._shared: Shared | None = None
        self._in_hand: str | None = None  # the event last yielded, not yet acknowledged
        self._keys: dict[Target, str] = {}  # every target asked for -> its key
        self._by_key: dict[str, Target] = {}
        self._groups: dict[Target, str] = {}  # replicas: each target's group
        self._members: tuple[str, ...] | None = None  # replicas: the live members, once known
        self._assigned: tuple[str, ...] | None = None  # ...as last applied
        self._catching: set[asyncio.Task[tuple[Target, list[Run] | PipestatusError]]] = set()
        self._beating: asyncio.Task[None] | None = None
        self._fatal: StoreError | None = None
        self._last_at: datetime | None = None
        if publish is not None:
            if not isinstance(publish, Publisher):
                raise TypeError(f"publish= takes a stream (RedisStream), not {publish!r}")
            if store is None:
                store = publish.state_store()
            publish.check(store)
        if store is None:
            return
        if not isinstance(store, Store):
            raise TypeError(f"store= takes a state store (pipestatus.store), not {store!r}")
        self._ledger = Ledger(
            store,
            publish=publish.destination if publish is not None else None,
            outage=Outage(f"state store {store!r}"),
            rng=self._rng,
        )
        if isinstance(store, Shared) and store.heartbeat is not None:
            self._shared = store

    # Provided by the scheduler:
    _owners: dict[Target, set[Scope]]

    def _start(self, target: Target, due: float | None = None) -> Entry | None:
        raise NotImplementedError

    def _wants_detail(
        self, target: Target, entry: Entry, kind: ChangeKind, outcome: Outcome
    ) -> bool:
        raise NotImplementedError

    def _assign_scopes(self, members: tuple[str, ...]) -> None:
        raise NotImplementedError

    def _emit(self, change: Change, write: Write | None = None, *, detail: bool = False) -> None:
        raise NotImplementedError

    def _stop(self, target: Target) -> None:
        raise NotImplementedError

    def _poke(self) -> None:
        raise NotImplementedError

    def _schedule(self, target: Target, entry: Entry, due: float) -> None:
        raise NotImplementedError

    # --- observations -------------------------------------------------------------------------

    def _observe(self, target: Target, entry: Entry, outcome: Outcome, sent: float) -> bool:
        """Observe ``outcome`` (polled at loop time ``sent``) against the stored memory;
        ``True`` when nothing changed (for the pace). Not ready yet: kept for later."""
        if not entry.ready:
            entry.stash, entry.stash_sent = outcome, sent
            return False
        if entry.resumed and isinstance(outcome, Run):  # the first run seen since the resume
            entry.resumed = False
            remembered = entry.memory.run
            source = history_of(target)
            if source is not None and remembered is not None and run_key(outcome) != remembered:
                entry.ready = False
                entry.stash, entry.stash_sent = outcome, sent
                task = asyncio.create_task(self._history(target, source, entry))
                self._catching.add(task)
                return False
        step = observe(entry.memory, outcome, errors=self.errors)
        self._commit(target, entry, step, outcome)
        return step.unchanged

    def _commit(self, target: Target, entry: Entry, step: Step, outcome: Outcome) -> None:
        """Queue the write of a change (nothing for a step that yields none)."""
        kind = step.kind
        if kind is None:
            return
        assert self._ledger is not None
        memory = step.memory
        version = entry.version
        is_run = isinstance(outcome, Run)
        what = memory.sig if is_run else memory.shown_error
        assert what is not None
        since = outcome.started_at if isinstance(outcome, Run) else entry.since
        event = Event(
            id=event_id(entry.key, version, kind, what),
            key=entry.key,
            seq=version + 1,
            kind=kind,
            previous=entry.shown,
            current=outcome,
            at=self._now(),
        )
        record = Record(memory=memory, version=version + 1, shown=outcome, since=since)
        write = Write(key=entry.key, version=version, record=record, event=event)
        change = Change(target=target, previous=entry.shown, current=outcome, kind=kind)
        # Written once the run is read in detail, where it is (so that is what is kept, and
        # what a restart yields again); the target's later changes wait for it.
        self._emit(change, write, detail=self._wants_detail(target, entry, kind, outcome))
        entry.memory, entry.version, entry.shown, entry.since = memory, version + 1, outcome, since

    async def _history(
        self, target: Target, source: History, entry: Entry
    ) -> tuple[Target, list[Run] | PipestatusError]:
        runs = missed_runs(source, target, since=entry.since, remembered=entry.memory.run)
        return target, await contained(runs, vendor=target.vendor)

    def _caught_up(self, target: Target, runs: list[Run] | PipestatusError) -> None:
        """Announce the finishes the history shows, then the observation that asked for it."""
        entry = self._states.get(target)
        if entry is None or entry.ready:
            return  # removed (or handed over) meanwhile
        entry.ready = True
        outcome, entry.stash = entry.stash, None
        if outcome is None:
            return
        if isinstance(runs, PipestatusError):
            logger.warning(
                "%r: its run history could not be read (%s); finishes missed while the watch "
                "was down are not announced",
                target,
                runs,
            )
        elif isinstance(outcome, Run):
            for step, run in catch_up(entry.memory, runs, latest=run_key(outcome)):
                self._commit(target, entry, step, run)
        self._commit(target, entry, observe(entry.memory, outcome, errors=self.errors), outcome)

    def _now(self) -> datetime:
        """When a change is seen: the wall clock, strictly increasing in this watch (events
        left in the outbox are yielded again in this order)."""
        now = datetime.now(UTC)
        last = self._last_at
        if last is not None and now <= last:
            now = last + timedelta(microseconds=1)
        self._last_at = now
        return now

    # --- what the store did -------------------------------------------------------------------

    def _stored(self, done: Done | None) -> None:
        """Yield what was committed, take the memory of what was refused, start what was
        loaded."""
        if done is None:
            return  # unavailable: all of it is queued again
        assert self._ledger is not None
        for write, change in done.applied:
            target = self._by_key.get(write.key)
            if change is not None and write.event is not None and target in self._states:
                self._ready.append(change)
                self._ready_ids.append(write.event.id)
            # else: no longer watched here; it stays in the outbox for whoever watches it
        for key, stored in done.conflicts.items():
            self._ledger.drop(key)
            entry = self._entry(key)
            if entry is not None:
                logger.debug("%s: advanced elsewhere; taking the stored memory", key)
                self._take(entry, stored.record)
                entry.taken = done.started  # a poll in flight may be older than it
        again: list[tuple[Target, Event]] = []
        for key, found in done.loaded.items():
            entry = self._entry(key)
            if entry is None or entry.ready:
                continue
            target = self._by_key[key]
            if found is not None:
                again += [(target, event) for event in found.pending]
            entry.taken = done.started
            self._loaded(target, entry, found)
        # Committed and never acknowledged (the one in hand at a crash first): yield them
        # again, in the order they were seen, before anything seen since.
        again.sort(key=lambda item: (item[1].at, item[1].seq))
        for target, event in reversed(again):
            self._ready.appendleft(
                Change(
                    target=target, previous=event.previous, current=event.current, kind=event.kind
                )
            )
            self._ready_ids.appendleft(event.id)

    def _entry(self, key: str) -> Entry | None:
        target = self._by_key.get(key)
        return self._states.get(target) if target is not None else None

    def _take(self, entry: Entry, record: Record) -> None:
        entry.memory, entry.version = record.memory, record.version
        entry.shown, entry.since = record.shown, record.since

    def _loaded(self, target: Target, entry: Entry, found: Stored | None) -> None:
        if found is not None:
            self._take(entry, found.record)
            entry.resumed = found.record.memory.sig is not None
            shown = found.record.shown
            if shown is not None and self.on_resume is not None:
                self.on_resume(target, shown)
        else:
            self._take(entry, Record(memory=Memory()))
        entry.ready = True
        outcome, entry.stash = entry.stash, None
        if outcome is not None and entry.stash_sent >= entry.taken:
            self._observe(target, entry, outcome, entry.stash_sent)
        elif outcome is not None and not entry.in_flight and not entry.scoped:
            self._schedule(target, entry, loop_time())  # polled before the load: again now

    # --- replicas -----------------------------------------------------------------------------

    def _register(self, target: Target) -> str:
        """``target``'s key in the store; ``ValueError`` when another target has it."""
        key = target_key(target)
        other = self._by_key.get(key)
        if other is not None and other != target:
            raise ValueError(f"{target!r} has the key of another target watched: {key}")
        self._keys[target] = key
        self._by_key[key] = target
        return key

    def _owns(self, target: Target, group: str) -> bool:
        assert self._shared is not None
        if self._assigned is None:
            return False
        return bool(owned({target: group}, self._assigned, self._shared.member))

    async def _beat(self, shared: Shared) -> None:
        """Renew this member every ``heartbeat * RENEW`` seconds and hand the live members to
        the scheduler. Until the store answers, this watcher acts alone (it polls everything,
        and announces nothing it cannot write)."""
        assert self._ledger is not None
        assert shared.heartbeat is not None
        period = shared.heartbeat * RENEW
        while True:
            try:
                members = await shared.beat()
            except StoreUnavailableError as exc:
                self._ledger.outage.failed(exc)
                if self._members is None:
                    self._members = (shared.member,)
                    self._poke()
            except StoreError as exc:
                self._fatal = exc
                self._poke()
                return
            else:
                self._ledger.outage.recovered(self._ledger.held)
                if members != self._members:
                    self._members = members
                    self._poke()
            await asyncio.sleep(period)

    def _assign(self, members: tuple[str, ...]) -> None:
        """Poll the targets whose group this member owns among ``members``, and only those."""
        assert self._shared is not None
        self._assign_scopes(members)
        mine = owned(self._groups, members, self._shared.member)
        # A scope's pipelines go with their scope (a scope this member no longer lists has
        # forgotten those not named on their own already).
        lost = [t for t in self._states if t not in mine and t not in self._owners]
        gained = [target for target in mine if target not in self._states]
        for target in lost:
            self._stop(target)
        for target in gained:
            self._start(target)
        if lost or gained:
            logger.info(
                "%s polls %d of %d targets (%d taken over, %d handed over), %d members",
                self._shared.member,
                len(self._states),
                len(self._groups),
                len(gained),
                len(lost),
                len(members),
            )
        self._assigned = members
