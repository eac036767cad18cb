"""The ``Watcher``: the one part of a watch that owns the event loop. It keeps the heap of due
targets, launches ``adapter.poll_targets(group, on_result=...)``, absorbs each result as it
comes (the tracker names the change, the pace says when to poll next) and yields changes.

Under overload it stays fair: it sends no more requests at once than the client's transport
takes (``max_concurrency``), and each freed slot goes to the most overdue target, so every
target is answered in turn however far behind the watch falls. Falling behind (a poll sent
more than one interval after it was due) is counted (:attr:`Watcher.late_polls`), measured
(:attr:`Watcher.lag`) and logged: a WARNING when it starts (again at most every
:data:`BEHIND_LOG_EVERY` seconds while it lasts), an INFO when the pace is kept again."""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import random
from collections import deque
from collections.abc import Iterable
from typing import Any, Final, Self

import attrs

from pipestatus.errors import PipestatusError
from pipestatus.model import Change, Run, Target
from pipestatus.vendors._base import Adapter
from pipestatus.watch import pace as _pace
from pipestatus.watch.pace import Pace, Pacing, next_poll, rides_along
from pipestatus.watch.tracker import Memory, observe

__all__ = ["BEHIND_LOG_EVERY", "Watcher"]

logger = logging.getLogger("pipestatus.client")

Outcome = Run | PipestatusError

#: While a watch cannot keep its pace, it says so at most this often (seconds).
BEHIND_LOG_EVERY: Final = 60.0


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

    @property
    def delay(self) -> float:
        return self.pace.delay

    @property
    def failures(self) -> int:
        return self.pace.failures


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
        self._wake: asyncio.Future[None] | None = None
        self._closed = False
        self._started: float | None = None  # loop time of the first iteration
        # Fair pacing: targets in flight per adapter, requests in flight per transport.
        self._flying: dict[Adapter[Any], int] = {}
        self._requests: dict[object, int] = {}
        #: Polls sent more than one interval after they were due (the watch fell behind).
        self.late_polls = 0
        #: How late, in seconds, the most overdue poll of the last launch went out.
        self.lag = 0.0
        self._behind = False
        self._said_behind = -math.inf
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

    # --- targets --------------------------------------------------------------------------------

    @property
    def targets(self) -> frozenset[Target]:
        return frozenset(self._states)

    def add(self, target: Target) -> None:
        """Watch ``target`` too (polled at once; its first observation yields a change)."""
        if not isinstance(target.source, Adapter):
            raise TypeError(f"{target!r} was not made by an adapter of this library")
        if target in self._states:
            return
        entry = self._states[target] = _Entry(pace=Pace(delay=self.pacing.interval))
        if target.source.batches:
            self._batching.setdefault(target.source, set()).add(target)
        # Due now: behind the targets overdue since earlier (before the watch runs, due from
        # its start, see _pop_due).
        self._schedule(target, entry, _loop_time())
        self._poke()

    def remove(self, target: Target) -> None:
        """Stop watching ``target``; a request already under way is left to finish unread."""
        entry = self._states.pop(target, None)
        if entry is not None and entry.in_flight:
            self._land(target)
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
            if self._results:
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

    def _fly(self, source: Adapter[Any]) -> None:
        """One more target of ``source`` in flight (a request more when it starts a batch)."""
        flying = self._flying.get(source, 0)
        self._flying[source] = flying + 1
        if flying % source.batch_size == 0:
            transport = source.transport
            self._requests[transport] = self._requests.get(transport, 0) + 1

    def _land(self, target: Target) -> None:
        """``target`` is no longer in flight (answered, or removed)."""
        source = target.source
        assert isinstance(source, Adapter)
        flying = self._flying.get(source, 0) - 1
        if flying < 0:
            return
        self._flying[source] = flying
        if flying % source.batch_size == 0:
            self._requests[source.transport] -= 1

    def _pop_due(self, now: float) -> list[Target]:
        """The due targets that the free slots take, most overdue first, and the batch
        riders they bring along; a due target that finds every slot taken stays at the top."""
        due: list[Target] = []
        heap, lag, late = self._heap, 0.0, 0
        while heap and heap[0][0] <= now:
            when, _, target = heap[0]
            entry = self._states.get(target)
            if entry is None or entry.in_flight or entry.due != when:
                heapq.heappop(heap)
                continue  # removed, or a stale entry
            source = target.source
            assert isinstance(source, Adapter)
            transport = source.transport
            if self._requests.get(transport, 0) >= transport.max_concurrency:
                break  # every slot taken: the most overdue goes first when one frees
            heapq.heappop(heap)
            entry.in_flight = True
            self._fly(source)
            due.append(target)
            lateness = now - max(when, self._started or when)
            lag = max(lag, lateness)
            late += lateness > self.pacing.interval
        # A healthy target of a batching vendor brings along its adapter's other targets that
        # may ride along (see pace.rides_along).
        for batcher in {t.source for t in due if t.source.batches and not self._states[t].failures}:
            assert isinstance(batcher, Adapter)
            for other in self._batching.get(batcher, ()):
                entry = self._states[other]
                if not entry.in_flight and rides_along(entry.pace, entry.due, now, self.pacing):
                    entry.in_flight = True
                    self._fly(batcher)
                    due.append(other)
        if due:
            self._pace_kept(now, lag, late)
        return due

    def _pace_kept(self, now: float, lag: float, late: int) -> None:
        """Count and say whether the polls just sent went out in time."""
        self.lag = lag
        self.late_polls += late
        if late:
            if not self._behind or now - self._said_behind >= BEHIND_LOG_EVERY:
                logger.warning(
                    "the watch cannot keep its %gs pace: polls go out up to %.1f s late "
                    "(%d late so far, %d targets, at most %d requests at once); poll less "
                    "often or allow more concurrency",
                    self.pacing.interval,
                    lag,
                    self.late_polls,
                    len(self._states),
                    max((t.max_concurrency for t in self._transports()), default=0),
                )
                self._said_behind = now
            self._behind = True
        elif self._behind and lag <= self.pacing.interval:
            self._behind = False
            logger.info("the watch keeps its %gs pace again", self.pacing.interval)

    def _transports(self) -> set[Any]:
        return {source.transport for source in self._flying}

    def _launch(self, due: list[Target]) -> None:
        """One task per adapter; each result comes back on its own as soon as it is known, so
        a slow target never holds back the others."""
        groups: dict[Adapter[Any], list[Target]] = {}
        for target in due:
            source = target.source
            assert isinstance(source, Adapter)
            groups.setdefault(source, []).append(target)
        for source, group in groups.items():
            if source.batches:
                # One jitter draw for the whole batch keeps its targets in one request.
                factor = _pace.jitter(self._states[group[0]].pace.rounds, self._rng)
                for target in group:
                    self._states[target].factor = factor
            task = asyncio.create_task(source.poll_targets(group, on_result=self._deliver))
            self._inflight.add(task)

    def _deliver(self, target: Target, outcome: Outcome) -> None:
        self._results.append((target, outcome))
        self._poke()

    def _absorb(self, now: float) -> None:
        while self._results:
            target, outcome = self._results.popleft()
            entry = self._states.get(target)
            if entry is None or not entry.in_flight:
                continue  # removed meanwhile, or a late answer for a target re-added since
            self._land(target)
            if entry.pace.failures or not isinstance(outcome, Run):
                self._log(target, entry, outcome)
            step = observe(entry.memory, outcome, errors=self.errors)
            entry.memory = step.memory
            if step.kind is not None:
                self._ready.append(
                    Change(target=target, previous=entry.shown, current=outcome, kind=step.kind)
                )
                entry.shown = outcome
            entry.pace, wait = next_poll(
                entry.pace,
                outcome,
                self.pacing,
                unchanged=step.unchanged,
                rng=self._rng,
                batch_factor=entry.factor if target.source.batches else None,
            )
            self._schedule(target, entry, now + wait)

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
