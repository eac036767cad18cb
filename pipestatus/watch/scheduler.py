"""The ``Watcher``: the one part of a watch that owns the event loop. It keeps the heap of due
targets, launches ``adapter.poll_targets(group, on_result=...)``, absorbs each result as it
comes (the tracker names the change, the pace says when to poll next) and yields changes.

Three base classes hold what only some watches need. :class:`~pipestatus.watch.scoping.Scoping`:
scopes (``adapter.scope(...)``) re-expanded on the same heap, pipelines that appear watched and
those that go away yielding ``REMOVED``. :class:`~pipestatus.watch.remembering.Remembering`:
with a state store (``store=``), each target's memory is loaded before its first observation
counts, each change is written (with the memory it leaves, in the store's outbox) before it is
yielded and acknowledged when the consumer asks for the next one, so a crash repeats at most
the one change in hand; a target resumed from the store catches up on the finishes its run
history shows it missed; with a shared store (Redis) the watchers on it split the targets.
Without a store none of that runs: the watch is exactly the in-memory one.

:class:`~pipestatus.watch.ending.Ending`: where the status poll has no jobs
(``adapter.details_on_end``), a run seen to end is read in detail once before its change goes
out, so the change names the failed job.

Under overload it stays fair and says so (:mod:`pipestatus.watch.slots`): no more requests at
once than the client's transport takes, each freed slot to the most overdue target, and the
polls sent late counted (:attr:`Watcher.late_polls`, :attr:`Watcher.lag`) and logged.

(Over 500 lines: the loop, the heap and each target's way in and out are one state machine,
and ``__anext__`` with its store branches reads best whole.)"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import logging
import random
from collections import deque
from collections.abc import Iterable
from typing import Any, Self

from pipestatus.errors import StoreError
from pipestatus.model import Change, Run, Scope, Target
from pipestatus.vendors._base import Adapter
from pipestatus.watch import pace as _pace
from pipestatus.watch._entry import Entry, Outcome, loop_time
from pipestatus.watch.ending import Ending
from pipestatus.watch.keys import account_key
from pipestatus.watch.pace import Pace, Pacing, next_poll, rides_along
from pipestatus.watch.records import Publisher, Store
from pipestatus.watch.remembering import Remembering
from pipestatus.watch.scoping import Scoping
from pipestatus.watch.slots import Lateness, Slots
from pipestatus.watch.tracker import observe

__all__ = ["Watcher"]

logger = logging.getLogger("pipestatus.client")


class Watcher(Ending, Scoping, Remembering):  # see test_no_stub_is_reached
    """Watches targets and yields ``Change`` objects; targets can be added and removed while
    it runs. ``async with client.watcher(targets) as w: async for change in w: ...``

    Pace: each target is polled every ``interval`` seconds (±10 % jitter, spread over the
    interval after the first round). A target whose run is terminal and unchanged is polled
    less and less often, up to ``idle_interval`` (default 10 * interval), and is back to
    ``interval`` as soon as it changes. A target that errors backs off on its own, up to
    ``max_error_interval`` (default 10 * interval). Targets of batching vendors (v5) keep one
    pace per adapter so they stay in one request. (The rules: :mod:`pipestatus.watch.pace`;
    what a change means: :mod:`pipestatus.watch.tracker`.)

    It runs no task of its own: it polls while it is iterated, so a consumer that spends long on
    one change delays the next polls (hand slow work to a task or a queue). Closing it
    (``aclose``, leaving ``async with``) cancels every request under way.

    ``store``: a state store (:mod:`pipestatus.store`): what the watch remembers survives a
    restart, and each change is written before it is yielded (see the module docstring).
    ``publish``: a stream (:class:`pipestatus.stream.RedisStream`) each change is appended to
    in the same transaction as the state advance; without ``store`` its own Redis keeps the
    state. A shared store makes the watchers on it replicas: each polls its share of the
    targets (:attr:`owned`; a scope and the v5 targets of its project go to one member),
    renewing its membership on a task of its own. A scope's own errors and ``REMOVED`` changes
    are yielded but not written: after a restart, a pipeline no longer listed is not watched.
    """

    def __init__(
        self,
        targets: Iterable[Target] = (),
        *,
        interval: float = 30.0,
        idle_interval: float | None = None,
        errors: bool = False,
        max_error_interval: float | None = None,
        seed: int | None = None,
        store: Store | None = None,
        publish: Publisher | None = None,
    ) -> None:
        self.pacing = Pacing.of(
            interval, idle_interval=idle_interval, max_error_interval=max_error_interval
        )
        self.errors = errors
        self._rng = random.Random(seed)  # noqa: S311 - scheduling jitter
        self._states: dict[Target, Entry] = {}
        self._heap: list[tuple[float, int, Target]] = []
        self._seq = 0
        self._ready: deque[Change] = deque()
        self._ready_ids: deque[str | None] = deque()  # the event of each ready change
        # Each result with the entry it was polled for and when the poll went out.
        self._results: deque[tuple[Target, Outcome, Entry, float]] = deque()
        self._batching: dict[Adapter[Any], set[Target]] = {}
        self._inflight: set[asyncio.Task[dict[Target, Outcome]]] = set()
        self._wake: asyncio.Future[None] | None = None
        self._closed = False
        self._ledger_closed = False
        self._started: float | None = None  # loop time of the first iteration
        self._slots = Slots()  # requests in flight per transport: sent while one is free
        self._lateness = Lateness(self.pacing.interval)
        self._init_scopes()
        self._init_details()
        self._init_store(store, publish)
        for target in targets:
            self.add(target)

    @property
    def interval(self) -> float:
        return self.pacing.interval

    @property
    def idle_interval(self) -> float:
        return self.pacing.idle_interval

    @property
    def max_error_interval(self) -> float:
        return self.pacing.max_error_interval

    @property
    def late_polls(self) -> int:
        """Polls sent more than one interval after they were due (the watch fell behind)."""
        return self._lateness.late_polls

    @property
    def lag(self) -> float:
        """How late, in seconds, the most overdue poll of the last launch went out."""
        return self._lateness.lag

    # --- targets --------------------------------------------------------------------------------

    @property
    def targets(self) -> frozenset[Target]:
        """Every target watched (with replicas: by the whole fleet)."""
        return frozenset(self._keys) if self._ledger is not None else frozenset(self._states)

    @property
    def last_event_id(self) -> str | None:
        """With a store: the stable ID of the change last yielded (a change yielded again after
        a crash has the same one; see :func:`pipestatus.watch.records.event_id`)."""
        return self._in_hand

    @property
    def owned(self) -> frozenset[Target]:
        """The targets this watcher polls (with replicas: its share; else all of them)."""
        return frozenset(self._states)

    def add(self, target: Target) -> None:
        """Watch ``target`` too (polled at once; its first observation yields a change, or,
        with a store that remembers it, whatever changed since). A ``Scope`` is listed at
        once, and again at least every ten intervals."""
        if not isinstance(target.source, Adapter):
            raise TypeError(f"{target!r} was not made by an adapter of this library")
        if isinstance(target, Scope):
            if self._shared is not None:
                self._scope_groups[target] = account_key(target)
                if not self._owns(target, self._scope_groups[target]):
                    return  # the next beat says who lists it
            self._start_scope(target)
            return
        self._explicit.add(target)
        if self._ledger is not None:
            key = self._keys.get(target) or self._register(target)
            if self._shared is not None:
                group = account_key(target) if target.source.batches else key
                self._groups[target] = group
                if target not in self._states and not self._owns(target, group):
                    return  # the next beat says who polls it
        if target not in self._states:
            # Due now: behind the targets overdue since earlier (before the watch runs, due
            # from its start, see _pop_due).
            self._start(target)

    def remove(self, target: Target) -> None:
        """Stop watching ``target`` (a ``Scope``: and its pipelines not watched otherwise); a
        request already under way is left to finish unread."""
        if isinstance(target, Scope):
            self._scope_groups.pop(target, None)
            self._stop_scope(target)
            return
        self._explicit.discard(target)
        if self._ledger is not None:
            self._groups.pop(target, None)
        if target in self._owners:
            return  # still watched through a scope
        self._forget(target)

    def _start(self, target: Target, due: float | None = None) -> Entry | None:
        """Poll ``target`` from ``due`` (default: now); ``None`` when it cannot be watched
        here (a scope's pipeline whose store key another target has)."""
        source = target.source
        assert isinstance(source, Adapter)
        key = ""
        if self._ledger is not None:
            try:
                key = self._keys.get(target) or self._register(target)
            except ValueError as exc:
                logger.warning("%s", exc)
                return None
        entry = self._states[target] = Entry(pace=Pace(delay=self.pacing.interval))
        if source.batches:
            self._batching.setdefault(source, set()).add(target)
        if self._ledger is not None:
            entry.key = key
            entry.ready = False
            self._ledger.load(key)
        self._schedule(target, entry, loop_time() if due is None else due)
        self._poke()
        return entry

    def _stop(self, target: Target) -> None:
        entry = self._states.pop(target, None)
        if entry is not None:
            self._land(target, entry)
        group = self._batching.get(target.source)  # type: ignore[call-overload]
        if group is not None:
            group.discard(target)
        if entry is not None and self._ledger is not None:
            self._ledger.forget(entry.key)

    def _forget(self, target: Target) -> None:
        """No longer watched at all (not only handed to another replica)."""
        if self._ledger is not None and target not in self._groups:
            key = self._keys.pop(target, None)
            if key is not None:
                self._by_key.pop(key, None)
        self._stop(target)

    def overdue(self, grace: float) -> frozenset[Target]:
        """The targets whose poll was due more than ``grace`` seconds ago and has not
        answered yet (a request hanging past its timeouts, or a starved loop): a service
        reports them as stale. Call it while the watcher runs, in its event loop."""
        if self._started is None:
            return frozenset()
        now = asyncio.get_running_loop().time()
        started = self._started  # targets added before the first poll are due from then
        late = {s for s, e in self._scopes.items() if now - max(e.due, started) > grace}
        return frozenset(
            target
            for target, entry in self._states.items()
            if (
                any(scope in late for scope in self._owners.get(target, ()))
                if entry.scoped  # polled by its scope's listing: late when that is
                else now - max(entry.due, started) > grace
            )
        )

    # --- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: object, tb: object
    ) -> None:
        # Leaving with an error (or cancelled): the change in hand may not have been handled.
        done = exc_type is None or issubclass(exc_type, GeneratorExit)
        await self._close(done=done)

    async def aclose(self) -> None:
        """Stop: cancel every request under way and wait until they are gone. With a store,
        acknowledge the change last yielded (the consumer is done with it; leaving ``async
        with`` on an error does not), write what is held back (for a few seconds at most) and
        close it; a replica leaves the fleet at once, so the others take its targets on their
        next beat."""
        await self._close(done=True)

    async def _close(self, *, done: bool) -> None:
        if done and self._in_hand is not None and self._ledger is not None:
            self._ledger.ack(self._in_hand)
        self._in_hand = None
        self._closed = True
        tasks: list[asyncio.Task[Any]] = [*self._inflight, *self._catching]
        if self._beating is not None:
            tasks.append(self._beating)
            self._beating = None
        self._inflight.clear()
        self._catching.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._wake is not None and not self._wake.done():
            self._wake.cancel()
        self._wake = None
        ledger = self._ledger
        if ledger is not None and not self._ledger_closed:
            self._ledger_closed = True
            await ledger.flush()
            if self._shared is not None and ledger.opened:
                with contextlib.suppress(StoreError, TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self._shared.leave()
            await ledger.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Change:
        loop = asyncio.get_running_loop()
        if self._started is None:
            self._started = loop.time()
        ledger = self._ledger
        if ledger is not None:
            if self._in_hand is not None:  # the consumer is done with it
                ledger.ack(self._in_hand)
                self._in_hand = None
            if self._shared is not None and self._beating is None and not self._closed:
                self._beating = asyncio.create_task(self._beat(self._shared))
        while not self._ready or (ledger is not None and ledger.acking):
            if self._fatal is not None:
                raise self._fatal
            if self._closed:
                raise StopAsyncIteration
            if ledger is not None and self._ready and not ledger.outage.down:
                # Changes ready, only the acknowledgement of the last one to write: wait for
                # that alone (results go on arriving meanwhile, and are absorbed after).
                if ledger.task is None and ledger.wants(loop.time()):
                    ledger.start(loop.time())
                if ledger.task is not None:
                    await asyncio.wait([ledger.task])
                    self._stored(ledger.finish(loop.time()))
                    continue
            if self._results or self._surveys or self._detailed:
                self._absorb(loop.time())
                continue
            now = loop.time()
            if self._members is not None and self._members != self._assigned:
                self._assign(self._members)
            if not self._ready or (ledger is not None and ledger.outage.down):
                # Changes ready and only their acknowledgement to wait for: no new polls (they
                # would pile up changes faster than they are taken), unless the store is away.
                self._launch(self._pop_due(now), now)
            if self._wake is None or self._wake.done():
                self._wake = loop.create_future()
            # A target still due now waits for a free slot: a result wakes the loop.
            timeout = None
            if self._heap and self._heap[0][0] > now:
                timeout = self._heap[0][0] - now
            waiting: set[asyncio.Future[Any]] = {*self._inflight, *self._catching, self._wake}
            if ledger is not None:
                if ledger.wants(now):
                    ledger.start(now)
                if ledger.task is not None:
                    waiting.add(ledger.task)
                elif ledger.retry_at > now:
                    retry = ledger.retry_at - now
                    timeout = retry if timeout is None else min(timeout, retry)
            done, _ = await asyncio.wait(
                waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task in self._inflight:
                    self._inflight.discard(task)
                    task.result()  # results arrived one by one; this surfaces a bug, if any
                elif task in self._catching:
                    self._catching.discard(task)
                    self._caught_up(*task.result())
                elif ledger is not None and task is ledger.task:
                    self._stored(ledger.finish(loop.time()))
        self._in_hand = self._ready_ids.popleft()
        return self._ready.popleft()

    # --- scheduling -----------------------------------------------------------------------------

    def _poke(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _schedule(self, target: Target, entry: Entry, due: float) -> None:
        entry.due = due
        entry.in_flight = False
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, target))

    def _fly(self, target: Target, entry: Entry) -> None:
        """``target`` goes out, in a slot of its transport."""
        assert isinstance(target.source, Adapter)
        entry.in_flight = entry.counted = True
        self._slots.take(target.source)

    def _land(self, target: Target, entry: Entry) -> None:
        """``target`` is no longer in flight (answered, or forgotten): its slot is free."""
        if entry.counted:
            entry.counted = False
            assert isinstance(target.source, Adapter)
            self._slots.free(target.source)

    def _pop_due(self, now: float) -> list[Target]:
        """The due targets that the free slots take, most overdue first (and the scopes due,
        and the batch riders the targets bring along); a due target that finds every slot
        taken stays at the top of the heap."""
        due: list[Target] = []
        heap, lag, late = self._heap, 0.0, 0
        while heap and heap[0][0] <= now:
            when, _, target = heap[0]
            if isinstance(target, Scope):
                heapq.heappop(heap)
                if self._due_scope(target, when, now):
                    due.append(target)
                continue
            entry = self._states.get(target)
            if entry is None or entry.in_flight or entry.due != when:
                heapq.heappop(heap)
                continue  # removed, or a stale entry
            source = target.source
            assert isinstance(source, Adapter)
            if self._slots.full(source):
                break  # every slot taken: the most overdue goes first when one frees
            heapq.heappop(heap)
            self._fly(target, entry)
            due.append(target)
            lateness = now - max(when, self._started or when)
            lag = max(lag, lateness)
            late += lateness > self.pacing.interval
        # A healthy target of a batching vendor brings along its adapter's other targets that
        # may ride along (see pace.rides_along).
        healthy = [t for t in due if not isinstance(t, Scope) and not self._states[t].failures]
        for source in {t.source for t in healthy if t.source.batches}:
            for other in self._batching.get(source, ()):  # type: ignore[call-overload]
                entry = self._states[other]
                if entry.scoped:
                    continue  # its scope's listing polls it
                if not entry.in_flight and rides_along(entry.pace, entry.due, now, self.pacing):
                    self._fly(other, entry)
                    due.append(other)
        if any(not isinstance(t, Scope) for t in due):
            self._lateness.sent(now, lag, late, targets=len(self._states), limit=self._slots.limit)
        return due

    def _launch(self, due: list[Target], now: float) -> None:
        """One task per adapter; each result comes back on its own as soon as it is known, so
        a slow target never holds back the others."""
        groups: dict[Adapter[Any], list[Target]] = {}
        for target in due:
            source = target.source
            assert isinstance(source, Adapter)
            if isinstance(target, Scope):
                self._track(self._survey(source, target))
                continue
            groups.setdefault(source, []).append(target)
        for source, group in groups.items():
            if source.batches:
                # One jitter draw for the whole batch keeps its targets in one request.
                factor = _pace.jitter(self._states[group[0]].pace.rounds, self._rng)
                for target in group:
                    self._states[target].factor = factor
            deliver = functools.partial(self._deliver, {t: self._states[t] for t in group}, now)
            task = asyncio.create_task(source.poll_targets(group, on_result=deliver))
            self._inflight.add(task)

    def _track(self, work: Any) -> None:
        task: asyncio.Task[dict[Target, Outcome]] = asyncio.create_task(work)
        self._inflight.add(task)

    def _deliver(
        self, entries: dict[Target, Entry], sent: float, target: Target, outcome: Outcome
    ) -> None:
        self._results.append((target, outcome, entries[target], sent))
        self._poke()

    # --- results --------------------------------------------------------------------------------

    def _absorb(self, now: float) -> None:
        while self._surveys:
            scope, found = self._surveys.popleft()
            self._absorb_survey(scope, found, now)
        self._absorb_details()
        while self._results:
            target, outcome, launched, sent = self._results.popleft()
            entry = self._states.get(target)
            if entry is not launched or not entry.in_flight:
                continue  # removed meanwhile, or a late answer for a target re-added since
            self._land(target, entry)
            if sent < entry.taken:
                # Polled before its memory came from the store (another replica advanced it):
                # possibly older than what it remembers now. Poll it again instead.
                if entry.scoped:
                    entry.in_flight = False
                else:
                    self._schedule(target, entry, now)
                continue
            if entry.pace.failures or not isinstance(outcome, Run):
                self._log(target, entry, outcome)
            if self._ledger is None:
                step = observe(entry.memory, outcome, errors=self.errors)
                entry.memory = step.memory
                if step.kind is not None:
                    change = Change(
                        target=target, previous=entry.shown, current=outcome, kind=step.kind
                    )
                    self._emit(change, detail=self._wants_detail(target, entry, step.kind, outcome))
                    entry.shown = outcome
                unchanged = step.unchanged
            else:
                unchanged = self._observe(target, entry, outcome, sent)
            entry.pace, wait = next_poll(
                entry.pace,
                outcome,
                self.pacing,
                unchanged=unchanged,
                rng=self._rng,
                batch_factor=entry.factor if target.source.batches else None,
            )
            if entry.scoped:
                entry.in_flight = False  # its scope's listing is its next poll
            else:
                self._schedule(target, entry, now + wait)

    def _log(self, target: Target, entry: Entry, outcome: Outcome) -> None:
        """An error at WARNING the first time it is met, at DEBUG while it repeats; the first
        answer after an error streak at INFO."""
        if isinstance(outcome, Run):
            if entry.failures:
                logger.info("%r is readable again", target)
                entry.logged = None
            return
        text = str(outcome)
        if entry.logged == text:
            logger.debug("%r still failing: %s", target, text)
            return
        entry.logged = text
        logger.warning("%r: %s", target, text)
