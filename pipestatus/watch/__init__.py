"""Watching: what counts as a change and what it means, the pace of each target, and the
``Watcher`` that polls while it is iterated."""

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

from pipestatus.errors import (
    AuthError,
    ForbiddenError,
    NotFoundError,
    PipestatusError,
    RateLimitedError,
)
from pipestatus.model import Change, ChangeKind, Run, Target
from pipestatus.status import Status
from pipestatus.vendors._base import Adapter

__all__ = ["Watcher", "classify", "signature"]

logger = logging.getLogger("pipestatus.client")

Outcome = Run | PipestatusError

_FAILURES: Final = frozenset({Status.FAILED, Status.TIMEDOUT})
#: Errors that will not go away by asking again soon: watched with the longest backoff.
_PERMANENT: Final = (AuthError, ForbiddenError, NotFoundError)


# --- what counts as a change, and what it means ---------------------------------------------------


def _run_key(run: Run) -> tuple[object, ...]:
    """Which run this is: its ID and number, or (v4, which has neither) its jobs' IDs."""
    if run.run_id is not None or run.number is not None:
        return (run.run_id, run.number)
    return tuple(job.id for job in run.jobs)


def signature(run: Run) -> tuple[object, ...]:
    """Everything a watch compares: the run's identity and every status and raw status."""
    return (
        _run_key(run),
        run.status,
        run.raw_status,
        tuple(
            (
                stage.id,
                stage.status,
                stage.raw_status,
                tuple((job.id, job.status, job.raw_status) for job in stage.jobs),
            )
            for stage in run.stages
        ),
    )


def classify(previous: Run | None, current: Run, last_final: Status | None) -> ChangeKind:
    """Name a change. ``last_final`` is the final status of the run before ``current``'s
    finish, if one was seen (so a success after a failure is FIXED)."""
    if previous is None:
        return ChangeKind.FIRST
    another = _run_key(previous) != _run_key(current)
    finished_now = current.status.is_terminal and (
        another or not previous.status.is_terminal or previous.status != current.status
    )
    if finished_now:
        if current.status in _FAILURES:
            if last_final in _FAILURES:
                return ChangeKind.STILL_FAILING
            return ChangeKind.BROKE if last_final is Status.SUCCESS else ChangeKind.FINISHED
        if current.status is Status.SUCCESS and last_final in _FAILURES:
            return ChangeKind.FIXED
        return ChangeKind.FINISHED
    if another:
        return ChangeKind.STARTED
    return ChangeKind.MOVED


@attrs.define
class _State:
    due: float
    delay: float
    run: Run | None = None  # the last run seen
    shown: Outcome | None = None  # the last observation yielded
    sig: tuple[object, ...] | None = None
    final: Status | None = None  # final status of the last run seen to finish
    final_key: tuple[object, ...] | None = None  # ...and which run that was
    failures: int = 0
    rounds: int = 0
    in_flight: bool = False
    factor: float | None = None  # the jitter shared by a batch this target was polled in


class Watcher:
    """Watches targets and yields ``Change`` objects; targets can be added and removed while
    it runs. ``async with client.watcher(targets) as w: async for change in w: ...``

    Pace: each target is polled every ``interval`` seconds (±10 % jitter, spread over the
    interval after the first round). A target whose run is terminal and unchanged is polled
    less and less often, up to ``idle_interval`` (default 10 * interval), and is back to
    ``interval`` as soon as it changes. A target that errors backs off on its own, up to
    ``max_error_interval`` (default 10 * interval). Targets of batching vendors (v5) keep one
    pace per adapter so they stay in one request.

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
        if not (interval > 0 and math.isfinite(interval)):
            raise ValueError("interval must be a positive number of seconds")
        self.interval = interval
        self.idle_interval = max(
            interval, idle_interval if idle_interval is not None else 10 * interval
        )
        self.max_error_interval = max(
            interval, max_error_interval if max_error_interval is not None else 10 * interval
        )
        self.errors = errors
        self._rng = random.Random(seed)  # noqa: S311 - scheduling jitter
        self._states: dict[Target, _State] = {}
        self._heap: list[tuple[float, int, Target]] = []
        self._seq = 0
        self._ready: deque[Change] = deque()
        self._results: deque[tuple[Target, Outcome]] = deque()
        self._batching: dict[Adapter[Any], set[Target]] = {}
        self._inflight: set[asyncio.Task[dict[Target, Outcome]]] = set()
        self._wake: asyncio.Future[None] | None = None
        self._closed = False
        self._logged: dict[Target, str] = {}
        for target in targets:
            self.add(target)

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
        state = self._states[target] = _State(due=0.0, delay=self.interval)
        if target.source.batches:
            self._batching.setdefault(target.source, set()).add(target)
        self._schedule(target, state, 0.0)
        self._poke()

    def remove(self, target: Target) -> None:
        """Stop watching ``target``; a request already under way is left to finish unread."""
        self._states.pop(target, None)
        self._logged.pop(target, None)
        group = self._batching.get(target.source)  # type: ignore[call-overload]
        if group is not None:
            group.discard(target)

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
            timeout = max(0.0, self._heap[0][0] - now) if self._heap else None
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

    def _schedule(self, target: Target, state: _State, due: float) -> None:
        state.due = due
        state.in_flight = False
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, target))

    def _pop_due(self, now: float) -> list[Target]:
        due: list[Target] = []
        while self._heap and self._heap[0][0] <= now:
            when, _, target = heapq.heappop(self._heap)
            state = self._states.get(target)
            if state is None or state.in_flight or state.due != when:
                continue  # removed, or a stale entry
            state.in_flight = True
            due.append(target)
        # A healthy target of a batching vendor brings along its adapter's other healthy
        # targets due within one interval: added at another time or back from an error, they
        # join the same request (it costs nothing) and keep its pace from then on.
        for source in {t.source for t in due if t.source.batches and not self._states[t].failures}:
            for other in self._batching.get(source, ()):  # type: ignore[call-overload]
                state = self._states[other]
                if not state.in_flight and not state.failures and state.due <= now + self.interval:
                    state.in_flight = True
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
                factor = self._jitter(self._states[group[0]])
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
            state = self._states.get(target)
            if state is None or not state.in_flight:
                continue  # removed meanwhile, or a late answer for a target re-added since
            self._observe(target, state, outcome)
            if target.source.batches and not state.failures:
                factor, delay = state.factor or self._jitter(state), self.interval
            else:
                factor, delay = self._jitter(state), state.delay
            state.rounds += 1
            self._schedule(target, state, now + delay * factor)

    def _jitter(self, state: _State) -> float:
        if state.rounds == 0:
            return self._rng.uniform(0.5, 1.5)  # spread the fleet after the first round
        return self._rng.uniform(0.9, 1.1)

    def _observe(self, target: Target, state: _State, outcome: Outcome) -> None:
        if isinstance(outcome, PipestatusError):
            state.failures += 1
            cap = self.max_error_interval
            if isinstance(outcome, _PERMANENT):
                state.delay = cap
            else:
                state.delay = min(cap, self.interval * 2 ** min(state.failures - 1, 16))
            if isinstance(outcome, RateLimitedError) and outcome.retry_after is not None:
                # The server said when to come back: that wins, even past our own cap.
                state.delay = max(state.delay, outcome.retry_after)
            self._log_error(target, outcome)
            if self.errors and not _same_error(state.shown, outcome):
                self._ready.append(
                    Change(
                        target=target, previous=state.shown, current=outcome, kind=ChangeKind.ERROR
                    )
                )
                state.shown = outcome
            return
        if state.failures:
            logger.info("%r is readable again", target)
            self._logged.pop(target, None)
            state.delay = self.interval  # back to the normal pace, not the error backoff
        state.failures = 0
        sig = signature(outcome)
        if state.run is not None and sig == state.sig:
            # Unchanged: slow down while terminal; after an error that was shown, say so.
            if outcome.status.is_terminal:
                state.delay = min(self.idle_interval, state.delay * 1.5)
            if isinstance(state.shown, PipestatusError):
                self._ready.append(
                    Change(
                        target=target,
                        previous=state.shown,
                        current=outcome,
                        kind=ChangeKind.RECOVERED,
                    )
                )
                state.shown = outcome
            state.run = outcome
            return
        key = _run_key(outcome)
        if outcome.status.is_terminal and (key, outcome.status) == (state.final_key, state.final):
            # This run's end was announced already; something in between (a garbled answer
            # read as an unknown word, say) moved it away and back: not a second finish.
            kind = ChangeKind.MOVED
        else:
            kind = classify(state.run, outcome, state.final)
        if outcome.status.is_terminal:
            state.final, state.final_key = outcome.status, key
        state.delay = self.interval
        self._ready.append(Change(target=target, previous=state.shown, current=outcome, kind=kind))
        state.run, state.shown, state.sig = outcome, outcome, sig

    def _log_error(self, target: Target, error: PipestatusError) -> None:
        text = str(error)
        if self._logged.get(target) == text:
            logger.debug("%r still failing: %s", target, text)
            return
        self._logged[target] = text
        logger.warning("%r: %s", target, text)


def _same_error(shown: Any, error: PipestatusError) -> bool:
    return (
        isinstance(shown, PipestatusError)
        and type(shown) is type(error)
        and str(shown) == str(error)
    )
