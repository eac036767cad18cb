"""Helpers for the tests of durable and shared watching: a world of pipelines the test moves by
hand, an adapter with a run history (test-only), and the usual waits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import attrs

from pipestatus import Change, Client, Run, Target
from pipestatus.auth import token_auth
from pipestatus.testing import SimJob, SimRun, SimStage, VendorServer
from pipestatus.vendors import REGISTRY
from pipestatus.vendors._base import Adapter

TOKEN = "store-secret-token"


def sim(number: int, status: str) -> SimRun:
    return SimRun(number, status, [SimStage("build", [SimJob("make", status)])])


class World:
    """Each pipeline's current run, set by the test; the server serves what is set now (a
    time-driven source that reads the test's clock, not the wall's). ``polls`` counts the
    requests that reached each pipeline."""

    def __init__(self) -> None:
        self.runs: dict[str, SimRun | None] = {}
        self.polls: dict[str, int] = {}

    def source(self, name: str) -> Callable[[float], SimRun | None]:
        self.polls.setdefault(name, 0)

        def current(_: float) -> SimRun | None:
            self.polls[name] += 1
            return self.runs.get(name)

        return current


def add(server: VendorServer, world: World, vendor: str, n: int, run: SimRun) -> tuple[str, ...]:
    """Serve the vendor's n-th demo pipeline from ``world``, starting at ``run``; its IDs."""
    spec = REGISTRY[vendor]
    ids = spec.demo.ids(n)
    name = f"{vendor}/{'/'.join(ids)}"
    world.runs[name] = run
    server.add_pipeline(vendor, ids, world.source(name), **spec.demo.options)
    return ids


def adapter(client: Client, server: VendorServer, vendor: str) -> Adapter[Any]:
    """The vendor's adapter for the demo account on ``server``."""
    factory = getattr(client, vendor)
    result: Adapter[Any] = factory(server.url, token=TOKEN, **REGISTRY[vendor].demo.options)
    return result


@attrs.define
class Archive:
    """A vendor's run history, as the test recorded it: each target's runs, oldest first."""

    runs: dict[Target, list[Run]] = attrs.Factory(dict)
    reads: int = 0

    async def record(self, client: Client, target: Target) -> Run:
        """Read the target's run now (through the real API) and keep it in the history."""
        run = (await client.poll([target]))[target]
        assert isinstance(run, Run), run
        self.runs.setdefault(target, []).append(run)
        return run


def history_adapter(
    client: Client, server: VendorServer, vendor: str, archive: Archive
) -> Adapter[Any]:
    """The vendor's adapter with a run history: a test-only subclass whose ``history`` lists
    what ``archive`` recorded, newest first (what issue 12 adds for real, over the vendor's
    history endpoints)."""
    spec = REGISTRY[vendor]

    class WithHistory(spec.adapter):  # type: ignore[name-defined,misc]
        def history(self, target: Target, *, since: datetime | None) -> AsyncIterator[Run]:
            archive.reads += 1

            async def runs() -> AsyncIterator[Run]:
                for run in reversed(archive.runs.get(target, [])):
                    if since is None or run.started_at is None or run.started_at >= since:
                        yield run

            return runs()

    with_history = attrs.evolve(spec, adapter=WithHistory)
    options = spec.options(**spec.demo.options)
    return client._connect(with_history, server.url, token_auth(spec.header, TOKEN), options)


async def until(condition: Callable[[], bool], *, guard: float = 20.0) -> None:
    """Wait for ``condition`` (checked every 10 ms); the timeout only guards against a hang."""
    async with asyncio.timeout(guard):
        while not condition():  # noqa: ASYNC110 - the state polled has no event to wait on
            await asyncio.sleep(0.01)


async def collect(
    changes: AsyncIterator[Change], count: int, *, guard: float = 20.0
) -> list[Change]:
    """Take ``count`` changes; the timeout only guards the suite against a hang."""
    got: list[Change] = []
    async with asyncio.timeout(guard):
        async for change in changes:
            got.append(change)
            if len(got) == count:
                break
    return got


@contextlib.asynccontextmanager
async def draining(changes: AsyncIterator[Change]) -> AsyncIterator[list[Change]]:
    """Consume ``changes`` in the background (a watch polls only while it is iterated)."""
    got: list[Change] = []

    async def drain() -> None:
        async for change in changes:
            got.append(change)

    task = asyncio.create_task(drain())
    try:
        yield got
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
