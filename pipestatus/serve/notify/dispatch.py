"""Sending notifications without ever slowing the watch: each sink has a queue and a worker
task of its own; the watch only offers changes (:meth:`Notifier.submit`, which never waits).

A worker sends one message at a time, each attempt bounded by the sink's ``timeout``, retried
``retries`` times with exponential backoff (the ``sleep`` is injectable); a sink that hangs or
keeps failing only delays its own queue, which holds at most ``max_queue`` messages (the oldest
is dropped, and counted, beyond that). Each change goes to a sink once, however many rules send
it there and however often it is offered. Addresses and secrets are never logged: a failure is
logged as the sink's name and what went wrong (``HTTP 500``, ``timed out``, ``errcode 310000``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

import aiohttp
import attrs
import yarl

from pipestatus.cli.config import Followed
from pipestatus.cli.serveconf import Rule, Sink
from pipestatus.model import Change
from pipestatus.serve.notify.messages import Notice, accepted, notice_of, outgoing
from pipestatus.serve.notify.rules import identity, matches

__all__ = ["Notifier", "SinkState", "SinkWorker"]

logger = logging.getLogger("pipestatus.serve.notify")

#: The most of an answer read, to check a chat's error code.
ANSWER_LIMIT: Final = 64 * 1024
#: How many sent changes are remembered to send each only once.
REMEMBERED: Final = 10_000


@attrs.define
class SinkState:
    """What the page and ``/metrics`` show of a sink."""

    name: str
    kind: str
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    queued: int = 0
    failing: bool = False
    last_error: str | None = None


class SinkWorker:
    """One sink's queue and the loop that empties it."""

    def __init__(
        self,
        sink: Sink,
        *,
        sleep: Callable[[float], Awaitable[None]],
        clock: Callable[[], datetime],
        max_queue: int,
        backoff_base: float,
        backoff_max: float,
    ) -> None:
        self.sink = sink
        self.state = SinkState(name=sink.name, kind=sink.kind)
        self._sleep = sleep
        self._clock = clock
        self._max_queue = max_queue
        self._backoff = (backoff_base, backoff_max)
        self._queue: deque[Notice] = deque()
        self._ready = asyncio.Event()

    def offer(self, notice: Notice) -> None:
        """Queue ``notice`` (never waits); beyond ``max_queue`` the oldest is dropped."""
        if len(self._queue) >= self._max_queue:
            self._queue.popleft()
            self.state.dropped += 1
        self._queue.append(notice)
        self.state.queued = len(self._queue)
        self._ready.set()

    async def run(self, session: aiohttp.ClientSession) -> None:
        """Send until cancelled."""
        while True:
            await self._ready.wait()
            while self._queue:
                notice = self._queue.popleft()
                self.state.queued = len(self._queue)
                await self.deliver(session, notice)
            self._ready.clear()

    async def deliver(self, session: aiohttp.ClientSession, notice: Notice) -> bool:
        """Send one notice, with the sink's retries; whether it was taken."""
        sink = self.sink
        why = "not sent"
        for attempt in range(sink.retries + 1):
            if attempt:
                base, cap = self._backoff
                await self._sleep(min(cap, base * 2 ** (attempt - 1)))
            why_not = await self._attempt(session, notice)
            if why_not is None:
                self.state.sent += 1
                if self.state.failing:
                    logger.info("notification sink %s: sending again", sink.name)
                self.state.failing = False
                self.state.last_error = None
                return True
            why = why_not
            logger.debug("notification sink %s: attempt %d: %s", sink.name, attempt + 1, why)
        self.state.failed += 1
        self.state.failing = True
        self.state.last_error = why
        logger.warning(
            "notification sink %s: gave up after %d attempts: %s",
            sink.name,
            sink.retries + 1,
            why,
        )
        return False

    async def _attempt(self, session: aiohttp.ClientSession, notice: Notice) -> str | None:
        sink = self.sink
        request = outgoing(
            sink.kind,
            notice,
            url=sink.url,
            secret=sink.secret,
            msgtype=sink.msgtype,
            now=self._clock(),
        )
        headers = {"Content-Type": "application/json; charset=utf-8", **request.headers}
        why: str | None = None
        try:
            async with asyncio.timeout(sink.timeout):
                async with session.post(
                    yarl.URL(request.url, encoded=True),
                    data=request.body,
                    headers=headers,
                    allow_redirects=False,
                ) as response:
                    answer = await response.content.read(ANSWER_LIMIT)
                    why = accepted(sink.kind, response.status, answer)
        except TimeoutError:
            why = f"timed out after {sink.timeout:g} s"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            why = type(exc).__name__  # its message may hold the address: never shown
        return why


class Notifier:
    """The rules and a worker per sink. :meth:`submit` offers a change (from the watch);
    :meth:`run` sends until cancelled."""

    def __init__(
        self,
        rules: Sequence[Rule],
        sinks: Mapping[str, Sink],
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_queue: int = 1000,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
    ) -> None:
        self.rules = tuple(rules)
        self.clock = clock
        self.workers = {
            name: SinkWorker(
                sink,
                sleep=sleep,
                clock=clock,
                max_queue=max_queue,
                backoff_base=backoff_base,
                backoff_max=backoff_max,
            )
            for name, sink in sinks.items()
        }
        self._sent: OrderedDict[tuple[object, ...], None] = OrderedDict()

    def submit(self, item: Followed, change: Change) -> int:
        """Offer ``change`` of ``item`` to the sinks whose rules match it; how many sinks it
        was queued for (a change already queued for a sink is not queued again)."""
        notice: Notice | None = None
        queued = 0
        seen = identity(change)
        for rule in self.rules:
            if not matches(rule, item, change):
                continue
            for name in rule.sinks:
                key = (name, *seen)
                if key in self._sent:
                    continue
                self._sent[key] = None
                if len(self._sent) > REMEMBERED:
                    self._sent.popitem(last=False)
                notice = notice or notice_of(item, change, self.clock())
                self.workers[name].offer(notice)
                queued += 1
        return queued

    def states(self) -> list[SinkState]:
        return [worker.state for worker in self.workers.values()]

    def failing(self) -> list[str]:
        """A line for each sink whose last message failed after every retry."""
        return [
            f"{state.name} ({state.kind}): {state.last_error}"
            for state in self.states()
            if state.failing
        ]

    async def run(self) -> None:
        """Send from every queue until cancelled (with one HTTP session for all sinks)."""
        if not self.workers:
            await asyncio.Event().wait()
        connector = aiohttp.TCPConnector(limit=len(self.workers) * 2)
        async with (
            aiohttp.ClientSession(connector=connector, trust_env=False) as session,
            asyncio.TaskGroup() as tasks,
        ):
            for worker in self.workers.values():
                tasks.create_task(worker.run(session))
