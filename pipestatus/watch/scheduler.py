"""The ``Watcher``: the one part of a watch that owns the event loop. It keeps the heap of due
targets, launches ``adapter.poll_targets(group, on_result=...)``, absorbs each result as it
comes (the tracker names the change, the pace says when to poll next) and yields changes.

Scopes (``adapter.scope(...)``) are re-expanded on the same heap: a pipeline that appears is
watched (its first observation yields ``FIRST``), one that goes away yields ``REMOVED``. Where
the listing carries latest runs (``adapter.lists_latest``) it is the poll of its pipelines,
which are then not polled one by one. Where the status poll has no jobs
(``adapter.details_on_end``), a run seen to end is read in detail once before its change is
yielded, so the change names the failed job.

Under overload it stays fair and says so (:mod:`pipestatus.watch.slots`): no more requests at
once than the client's transport takes, each freed slot to the most overdue target, and the
polls sent late counted (:attr:`Watcher.late_polls`, :attr:`Watcher.lag`) and logged."""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
from collections import deque
from collections.abc import Iterable
from typing import Any, Final, Self

import attrs

from pipestatus.errors import NotFoundError, PipestatusError
from pipestatus.model import Change, ChangeKind, Pipeline, Run, Scope, Target
from pipestatus.vendors._base import Adapter, contained
from pipestatus.watch import pace as _pace
from pipestatus.watch.pace import IDLE_GROWTH, Pace, Pacing, next_poll, rides_along
from pipestatus.watch.slots import Lateness, Slots
from pipestatus.watch.tracker import Memory, RunKey, depart, observe, run_key

__all__ = ["Watcher"]

logger = logging.getLogger("pipestatus.client")

Outcome = Run | PipestatusError
Survey = list[tuple[Pipeline, Outcome | None]]

#: A scope is re-expanded at least this often, in watch intervals.
MAX_RESCAN: Final = 10
#: The kinds after which a run is read in detail (where the status has no jobs).
_ENDS: Final = frozenset(
    {ChangeKind.FINISHED, ChangeKind.FIXED, ChangeKind.BROKE, ChangeKind.STILL_FAILING}
)


@attrs.define
class _Entry:
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
    counted: bool = False  # in flight and counted against its transport's slots (_fly)

    @property
    def delay(self) -> float:
        return self.pace.delay

    @property
    def failures(self) -> int:
        return self.pace.failures


@attrs.define
class _ScopeEntry:
    """One watched scope: its pipelines at the last listing and its pace."""

    pace: Pace
    members: set[Target] = attrs.Factory(set)
    memory: Memory = attrs.Factory(Memory)  # for its own errors only
    due: float = 0.0
    in_flight: bool = False
    logged: str | None = None


class Watcher:
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
    ) -> None:
        self.pacing = Pacing.of(
            interval, idle_interval=idle_interval, max_error_interval=max_error_interval
        )
        self.errors = errors
        self._rng = random.Random(seed)  # noqa: S311 - scheduling jitter
        self._states: dict[Target, _Entry] = {}
        self._heap: list[tuple[float, int, Target]] = []
        self._seq = 0
        self._ready: deque[Change] = deque()
        self._results: deque[tuple[Target, Outcome]] = deque()
        self._batching: dict[Adapter[Any], set[Target]] = {}
        self._inflight: set[asyncio.Task[dict[Target, Outcome]]] = set()
        self._scopes: dict[Scope, _ScopeEntry] = {}
        self._owners: dict[Target, set[Scope]] = {}  # a scope's pipelines: which scopes
        self._explicit: set[Target] = set()  # targets added by name, not only by a scope
        self._surveys: deque[tuple[Scope, Survey | PipestatusError]] = deque()
        self._detailed: deque[tuple[Target, Change, Outcome]] = deque()
        self._wake: asyncio.Future[None] | None = None
        self._closed = False
        self._started: float | None = None  # loop time of the first iteration
        self._slots = Slots()  # requests in flight per transport: sent while one is free
        self._lateness = Lateness(self.pacing.interval)
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
        return frozenset(self._states)

    def add(self, target: Target) -> None:
        """Watch ``target`` too (polled at once; its first observation yields a change). A
        ``Scope`` is listed at once, and again at least every ten intervals."""
        if not isinstance(target.source, Adapter):
            raise TypeError(f"{target!r} was not made by an adapter of this library")
        if isinstance(target, Scope):
            if target not in self._scopes:
                scope = self._scopes[target] = _ScopeEntry(pace=Pace(delay=self.pacing.interval))
                self._schedule_scope(target, scope, 0.0)
                self._poke()
            return
        self._explicit.add(target)
        if target in self._states:
            return
        # Due now: behind the targets overdue since earlier (before the watch runs, due from
        # its start, see _pop_due).
        self._watch(target, _loop_time())
        self._poke()

    def _watch(self, target: Target, due: float) -> _Entry:
        entry = self._states[target] = _Entry(pace=Pace(delay=self.pacing.interval))
        source = target.source
        assert isinstance(source, Adapter)
        if source.batches:
            self._batching.setdefault(source, set()).add(target)
        self._schedule(target, entry, due)
        return entry

    def remove(self, target: Target) -> None:
        """Stop watching ``target`` (a ``Scope``: and its pipelines not watched otherwise); a
        request already under way is left to finish unread."""
        if isinstance(target, Scope):
            scope = self._scopes.pop(target, None)
            for member in scope.members if scope is not None else ():
                owners = self._owners.get(member, set())
                owners.discard(target)
                if not owners:
                    self._owners.pop(member, None)
                    if member not in self._explicit:
                        self._forget(member)
            return
        self._explicit.discard(target)
        if target in self._owners:
            return  # still watched through a scope
        self._forget(target)

    def _forget(self, target: Target) -> None:
        entry = self._states.pop(target, None)
        if entry is not None:
            self._land(target, entry)
        group = self._batching.get(target.source)  # type: ignore[call-overload]
        if group is not None:
            group.discard(target)

    def overdue(self, grace: float) -> frozenset[Target]:
        """The targets whose poll was due more than ``grace`` seconds ago and has not
        answered yet (a request hanging past its timeouts, or a starved loop): a service
        reports them as stale. Call it while the watcher runs, in its event loop."""
        if self._started is None:
            return frozenset()
        now = asyncio.get_running_loop().time()
        started = self._started  # targets added before the first poll are due from then
        return frozenset(
            target
            for target, entry in self._states.items()
            if now - max(entry.due, started) > grace
        )

    # --- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop: cancel every request under way and wait until they are gone."""
        self._closed = True
        tasks = list(self._inflight)
        self._inflight.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._wake is not None and not self._wake.done():
            self._wake.cancel()
        self._wake = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Change:
        loop = asyncio.get_running_loop()
        if self._started is None:
            self._started = loop.time()
        while not self._ready:
            if self._closed:
                raise StopAsyncIteration
            if self._results or self._surveys or self._detailed:
                self._absorb(loop.time())
                continue
            now = loop.time()
            self._launch(self._pop_due(now))
            if self._wake is None or self._wake.done():
                self._wake = loop.create_future()
            # A target still due now waits for a free slot: a result wakes the loop.
            timeout = None
            if self._heap and self._heap[0][0] > now:
                timeout = self._heap[0][0] - now
            waiting: set[asyncio.Future[Any]] = {*self._inflight, self._wake}
            done, _ = await asyncio.wait(
                waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task in self._inflight:
                    self._inflight.discard(task)
                    task.result()  # results arrived one by one; this surfaces a bug, if any
        return self._ready.popleft()

    # --- scheduling -----------------------------------------------------------------------------

    def _poke(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _schedule(self, target: Target, entry: _Entry, due: float) -> None:
        entry.due = due
        entry.in_flight = False
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, target))

    def _schedule_scope(self, scope: Scope, entry: _ScopeEntry, due: float) -> None:
        entry.due = due
        entry.in_flight = False
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, scope))

    def _fly(self, target: Target, entry: _Entry) -> None:
        """``target`` goes out, in a slot of its transport."""
        assert isinstance(target.source, Adapter)
        entry.in_flight = entry.counted = True
        self._slots.take(target.source)

    def _land(self, target: Target, entry: _Entry) -> None:
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
                scope = self._scopes.get(target)
                if scope is not None and not scope.in_flight and scope.due == when:
                    scope.in_flight = True
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

    def _launch(self, due: list[Target]) -> None:
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
            task = asyncio.create_task(source.poll_targets(group, on_result=self._deliver))
            self._inflight.add(task)

    def _track(self, work: Any) -> None:
        task: asyncio.Task[dict[Target, Outcome]] = asyncio.create_task(work)
        self._inflight.add(task)

    async def _survey(self, source: Adapter[Any], scope: Scope) -> dict[Target, Outcome]:
        found = await contained(source.survey(scope), vendor=source.vendor)
        self._surveys.append((scope, found))
        self._poke()
        return {}

    async def _detail(
        self, source: Adapter[Any], target: Target, change: Change
    ) -> dict[Target, Outcome]:
        run = change.current
        assert isinstance(run, Run)
        found = await contained(source.detail(run), vendor=source.vendor)
        if isinstance(found, Run) and run_key(found) == run_key(run):
            change = attrs.evolve(change, current=found)
        else:
            logger.debug("%r: no detail for run %s: %s", target, run.run_id, found)
        self._detailed.append((target, change, run))
        self._poke()
        return {}

    def _deliver(self, target: Target, outcome: Outcome) -> None:
        self._results.append((target, outcome))
        self._poke()

    def _absorb(self, now: float) -> None:
        while self._surveys:
            scope, found = self._surveys.popleft()
            self._absorb_survey(scope, found, now)
        while self._detailed:
            target, change, polled = self._detailed.popleft()
            entry = self._states.get(target)
            if entry is not None and entry.shown is polled:  # nothing yielded since: the
                entry.shown = change.current  # next change's previous is the detailed run
            self._ready.append(change)
        while self._results:
            target, outcome = self._results.popleft()
            entry = self._states.get(target)
            if entry is None or not entry.in_flight:
                continue  # removed meanwhile, or a late answer for a target re-added since
            self._land(target, entry)
            if entry.pace.failures or not isinstance(outcome, Run):
                self._log(target, entry, outcome)
            step = observe(entry.memory, outcome, errors=self.errors)
            entry.memory = step.memory
            if step.kind is not None:
                change = Change(
                    target=target, previous=entry.shown, current=outcome, kind=step.kind
                )
                source = target.source
                if (
                    step.kind in _ENDS
                    and isinstance(outcome, Run)
                    and isinstance(source, Adapter)
                    and source.details_on_end
                    and entry.detailed != run_key(outcome)
                ):
                    # Read the ended run in detail (once) before yielding, to name its jobs.
                    entry.detailed = run_key(outcome)
                    self._track(self._detail(source, target, change))
                else:
                    self._ready.append(change)
                entry.shown = outcome
            entry.pace, wait = next_poll(
                entry.pace,
                outcome,
                self.pacing,
                unchanged=step.unchanged,
                rng=self._rng,
                batch_factor=entry.factor if target.source.batches else None,
            )
            if entry.scoped:
                entry.in_flight = False  # its scope's listing is its next poll
            else:
                self._schedule(target, entry, now + wait)

    def _absorb_survey(self, scope: Scope, found: Survey | PipestatusError, now: float) -> None:
        """A scope's listing: watch what appeared, yield ``REMOVED`` for what went away, and
        (where the listing carries latest runs) take each pipeline's run as its poll."""
        entry = self._scopes.get(scope)
        if entry is None or not entry.in_flight:
            return  # removed meanwhile
        source = scope.source
        assert isinstance(source, Adapter)
        if isinstance(found, PipestatusError):
            text = str(found)
            if entry.logged != text:
                logger.warning("%r: %s", scope, text)
                entry.logged = text
            step = observe(entry.memory, found, errors=self.errors)
            entry.memory = step.memory
            if step.kind is not None:
                self._ready.append(
                    Change(target=scope, previous=None, current=found, kind=step.kind)
                )
            entry.pace, wait = next_poll(
                entry.pace, found, self.pacing, unchanged=False, rng=self._rng
            )
            self._schedule_scope(scope, entry, now + min(wait, self._rescan()))
            return
        entry.logged = None
        entry.memory = Memory()
        listed = {pipeline.target: latest for pipeline, latest in found}
        for gone in entry.members - listed.keys():
            self._leave(scope, gone)
        busy = False
        for target, latest in listed.items():
            self._owners.setdefault(target, set()).add(scope)
            member = self._states.get(target)
            if member is None:
                member = self._watch(target, now)
                busy = True
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
            self._results.append((target, outcome))
        entry.members = set(listed)
        if source.lists_latest:
            delay = self.pacing.interval if busy else entry.pace.delay * IDLE_GROWTH
        else:
            delay = self._rescan()
        delay = min(delay, self._rescan())
        entry.pace = Pace(delay=delay, rounds=entry.pace.rounds + 1)
        self._schedule_scope(scope, entry, now + delay * _pace.jitter(entry.pace.rounds, self._rng))

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
                self._schedule(target, entry, _loop_time())
            return
        self._forget(target)
        step = depart(entry.memory)
        if step.kind is not None:
            gone = NotFoundError(
                status=404,
                vendor=target.vendor,
                message=f"pipeline {'/'.join(target.ids)} is no longer in {scope!r}",
            )
            self._ready.append(
                Change(target=target, previous=entry.shown, current=gone, kind=step.kind)
            )

    def _log(self, target: Target, entry: _Entry, outcome: Outcome) -> None:
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


def _loop_time() -> float:
    """The running loop's time, or 0.0 outside one (a watcher made before it runs)."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return 0.0
