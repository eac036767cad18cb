"""A watch under overload stays fair and says so: it sends no more than the client takes at
once, always serves the most overdue target first (so every target is answered in turn), and
counts and logs the polls it sends late. A server's Retry-After pauses a target, within a
bound (the pace's own tests check the bound itself)."""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any

import pytest

from pipestatus import Client, Run, Status, Target
from pipestatus._sansio import Endpoint
from pipestatus.auth import HeaderToken
from pipestatus.model import Change
from pipestatus.testing import SimJob, SimRun, SimStage, VendorServer
from pipestatus.vendors._base import Adapter
from pipestatus.watch import Watcher
from pipestatus.watch.pace import FIRST_JITTER, MAX_SERVER_WAIT

TARGETS = 1000
#: Requests the toy transport takes at once.
SLOTS = 4


class _Transport:
    """What an adapter sends through, as the watch sees it: its limit, open."""

    max_concurrency = SLOTS
    timeout = 10.0
    closed = False


class _Toy(Adapter[None]):
    """An adapter whose every request waits for one of ``SLOTS`` slots and a few turns of the
    loop, then answers a run with a new number (so every answer is a change). It counts the
    requests in flight at once."""

    vendor = "toy"
    _parse = staticmethod(lambda payload: payload)

    def __init__(self) -> None:
        endpoint = Endpoint.create("toy", "https://toy.example", HeaderToken("X-T", "t"), _none)
        super().__init__(_Transport(), endpoint, None, conditional=False)  # type: ignore[arg-type]
        self.slots = asyncio.Semaphore(SLOTS)
        self.numbers: collections.Counter[str] = collections.Counter()
        self.in_flight = self.peak = 0

    def target(self, name: str) -> Target:
        return self._target(name)

    def _run_path(self, target: Target) -> str:
        return target.ids[0]

    async def _get_run(self, path: str, parse: Any) -> Run:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            async with self.slots:
                for _ in range(3):
                    await asyncio.sleep(0)
        finally:
            self.in_flight -= 1
        self.numbers[path] += 1
        return Run(
            vendor="toy",
            pipeline_id=path,
            run_id=str(self.numbers[path]),
            number=self.numbers[path],
            status=Status.RUNNING,
            raw_status="RUNNING",
        )


def _none(body: bytes) -> tuple[str | None, str | None]:
    return None, None


async def _answers(watcher: Watcher, count: int) -> collections.Counter[Target]:
    seen: collections.Counter[Target] = collections.Counter()
    async with asyncio.timeout(60):
        async for change in watcher:
            assert isinstance(change, Change)
            seen[change.target] += 1
            if sum(seen.values()) >= count:
                break
    return seen


async def test_an_overloaded_watch_answers_every_target_in_turn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """1,000 targets at a pace far beyond what 4 slots can serve: never more than 4 requests
    at once, every target answered in turn (after 5 answers per target on average, each has
    between 3 and 7), the late polls counted, and the falling behind logged once."""
    caplog.set_level(logging.INFO, logger="pipestatus")
    toy = _Toy()
    targets = [toy.target(f"t{n:04d}") for n in range(TARGETS)]
    async with Watcher(targets, interval=0.001, seed=1) as watcher:
        seen = await _answers(watcher, 5 * TARGETS)
    assert toy.peak <= SLOTS
    assert len(seen) == TARGETS
    spread = collections.Counter(seen.values())
    assert min(seen.values()) >= 3, spread
    assert max(seen.values()) <= 7, spread
    assert watcher.late_polls > TARGETS
    assert watcher.lag > watcher.interval
    behind = [r for r in caplog.records if "cannot keep its" in r.getMessage()]
    assert len(behind) == 1
    assert behind[0].levelno == logging.WARNING


async def test_a_watch_that_keeps_its_pace_counts_nothing_late(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Ten targets at a pace the slots easily serve: no late poll, no warning."""
    caplog.set_level(logging.INFO, logger="pipestatus")
    toy = _Toy()
    async with Watcher([toy.target(f"t{n}") for n in range(10)], interval=0.05) as watcher:
        await _answers(watcher, 30)
    assert watcher.late_polls == 0
    assert not [r for r in caplog.records if "cannot keep its" in r.getMessage()]


async def test_a_huge_retry_after_pauses_a_watched_target_within_the_bound() -> None:
    """A 429 with ``Retry-After: 1000000000`` schedules the target's next poll at most
    MAX_SERVER_WAIT later, not 31 years."""
    run = SimRun(1, "running", [SimStage("b", [SimJob("m", "running")])])
    async with VendorServer(token="t") as server, Client(retries=0) as client:
        server.add_yunxiao_pipeline("9", run)
        server.fault(status=429, retry_after=1_000_000_000)
        target = client.yunxiao(server.url, token="t").target("9")
        async with client.watcher([target], interval=1, errors=True) as watcher:
            async with asyncio.timeout(10):
                await anext(watcher)
            loop = asyncio.get_running_loop()
            due = watcher._states[target].due - loop.time()
    assert 0 < due <= MAX_SERVER_WAIT * FIRST_JITTER[1]  # a first poll's jitter: up to 1.5
