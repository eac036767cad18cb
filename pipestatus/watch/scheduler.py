"""The ``Watcher``: the one part of a watch that owns the event loop. It keeps the heap of due
targets, launches ``adapter.poll_targets(group, on_result=...)``, absorbs each result as it
comes (the tracker names the change, the pace says when to poll next) and yields changes.

With a state store (``store=``) it also remembers: each target's memory is loaded before its
first observation counts, each change is written (with the memory it leaves, in the store's
outbox) before it is yielded, and acknowledged when the consumer asks for the next one, so a
crash repeats at most the one change in hand (:mod:`pipestatus.watch.durable`). A target
resumed from the store whose adapter keeps a run history catches up on the finishes it missed
(:mod:`pipestatus.watch.history`). With a shared store (Redis) the watchers on it split the
targets between them (:mod:`pipestatus.watch.replicas`). Without a store nothing of this runs:
the watch is exactly the in-memory one.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
from collections import deque
from collections.abc import Iterable
from typing import Any, Self

from pipestatus.errors import StoreError
from pipestatus.model import Change, Run, Target
from pipestatus.vendors._base import Adapter
from pipestatus.watch import pace as _pace
from pipestatus.watch._entry import Entry, Outcome
from pipestatus.watch.keys import account_key, target_key
from pipestatus.watch.pace import Pace, Pacing, next_poll, rides_along
from pipestatus.watch.records import Publisher, Store
from pipestatus.watch.remembering import Remembering
from pipestatus.watch.replicas import owned
from pipestatus.watch.tracker import observe

__all__ = ["Watcher"]

logger = logging.getLogger("pipestatus.client")


class Watcher(Remembering):
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
    targets (:attr:`owned`), renewing its membership on a task of its own.
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
        self._results: deque[tuple[Target, Outcome]] = deque()
        self._batching: dict[Adapter[Any], set[Target]] = {}
        self._inflight: set[asyncio.Task[dict[Target, Outcome]]] = set()
        self._wake: asyncio.Future[None] | None = None
        self._closed = False
        self._ready_ids: deque[str | None] = deque()  # the event of each ready change
        self._ledger_closed = False
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
        with a store that remembers it, whatever changed since)."""
        if not isinstance(target.source, Adapter):
            raise TypeError(f"{target!r} was not made by an adapter of this library")
        if self._ledger is None:
            if target not in self._states:
                self._start(target)
            return
        if target in self._keys:
            return
        key = target_key(target)
        if key in self._by_key:
            raise ValueError(f"{target!r} has the key of another target watched: {key}")
        self._keys[target] = key
        self._by_key[key] = target
        if self._shared is not None:
            self._groups[target] = account_key(target) if target.source.batches else key
            if self._assigned is None or target not in owned(
                {target: self._groups[target]}, self._assigned, self._shared.member
            ):
                return  # the next beat says who polls it
        self._start(target)

    def remove(self, target: Target) -> None:
        """Stop watching ``target``; a request already under way is left to finish unread."""
        key = self._keys.pop(target, None)
        if key is not None:
            self._by_key.pop(key, None)
        self._groups.pop(target, None)
        self._stop(target)

    def _start(self, target: Target) -> None:
        source = target.source
        assert isinstance(source, Adapter)
        entry = self._states[target] = Entry(pace=Pace(delay=self.pacing.interval))
        if source.batches:
            self._batching.setdefault(source, set()).add(target)
        if self._ledger is not None:
            entry.key = self._keys[target]
            entry.ready = False
            self._ledger.load(entry.key)
        self._schedule(target, entry, 0.0)
        self._poke()

    def _stop(self, target: Target) -> None:
        entry = self._states.pop(target, None)
        group = self._batching.get(target.source)  # type: ignore[call-overload]
        if group is not None:
            group.discard(target)
        if entry is not None and self._ledger is not None:
            self._ledger.forget(entry.key)

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
                    ledger.start()
                if ledger.task is not None:
                    await asyncio.wait([ledger.task])
                    self._stored(ledger.finish(loop.time()))
                    continue
            if self._results:
                self._absorb(loop.time())
                continue
            now = loop.time()
            if self._members is not None and self._members != self._assigned:
                self._assign(self._members)
            if not self._ready or (ledger is not None and ledger.outage.down):
                # Changes ready and only their acknowledgement to wait for: no new polls (they
                # would pile up changes faster than they are taken), unless the store is away.
                self._launch(self._pop_due(now))
            if self._wake is None or self._wake.done():
                self._wake = loop.create_future()
            timeout = max(0.0, self._heap[0][0] - now) if self._heap else None
            waiting: set[asyncio.Future[Any]] = {*self._inflight, *self._catching, self._wake}
            if ledger is not None:
                if ledger.wants(now):
                    ledger.start()
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

    def _pop_due(self, now: float) -> list[Target]:
        due: list[Target] = []
        while self._heap and self._heap[0][0] <= now:
            when, _, target = heapq.heappop(self._heap)
            entry = self._states.get(target)
            if entry is None or entry.in_flight or entry.due != when:
                continue  # removed, or a stale entry
            entry.in_flight = True
            due.append(target)
        # A healthy target of a batching vendor brings along its adapter's other targets that
        # may ride along (see pace.rides_along).
        for source in {t.source for t in due if t.source.batches and not self._states[t].failures}:
            for other in self._batching.get(source, ()):  # type: ignore[call-overload]
                entry = self._states[other]
                if not entry.in_flight and rides_along(entry.pace, entry.due, now, self.pacing):
                    entry.in_flight = True
                    due.append(other)
        return due

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
            if entry.pace.failures or not isinstance(outcome, Run):
                self._log(target, entry, outcome)
            if self._ledger is None:
                step = observe(entry.memory, outcome, errors=self.errors)
                entry.memory = step.memory
                if step.kind is not None:
                    self._ready.append(
                        Change(target=target, previous=entry.shown, current=outcome, kind=step.kind)
                    )
                    self._ready_ids.append(None)
                    entry.shown = outcome
                unchanged = step.unchanged
            else:
                unchanged = self._observe(target, entry, outcome)
            entry.pace, wait = next_poll(
                entry.pace,
                outcome,
                self.pacing,
                unchanged=unchanged,
                rng=self._rng,
                batch_factor=entry.factor if target.source.batches else None,
            )
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
