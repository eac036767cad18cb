"""Replicas on one Redis, in one process (each with its own client, like separate bots): the
targets split among the live members, v5 targets of one project kept together, a member that
stops renewing replaced within one heartbeat period, one that leaves replaced at once, and
every change published once. (The same with processes killed by SIGKILL: test_kill.py.)"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from redisproc import RedisProcess
from watchkit import TOKEN, World, adapter, add, sim, until

from pipestatus import Client, Target
from pipestatus.model import Change, ChangeKind
from pipestatus.store import RedisStore
from pipestatus.stream import RedisStream
from pipestatus.testing import VendorServer
from pipestatus.vendors import REGISTRY
from pipestatus.watch import Watcher
from pipestatus.watch.keys import target_key

HEARTBEAT = 0.9
#: Scheduling on a shared two-core machine: how late a takeover may be past the heartbeat.
SLACK = 0.5
#: 25 groups (the v5 pipelines are one): a member owns none with odds of 3 * (2/3)**25.
COUNTS = {"codearts_repo": 12, "codearts_pipeline": 10, "yunxiao": 12}


@pytest.fixture
async def server() -> AsyncIterator[VendorServer]:
    async with VendorServer(token=TOKEN) as srv:
        yield srv


class Replica:
    """One member: its own client and adapters, its watcher, draining in the background."""

    def __init__(self, name: str, url: str, server: VendorServer, stream: RedisStream) -> None:
        self.name = name
        self.client = Client()
        self.targets: list[Target] = []
        for vendor, count in COUNTS.items():
            source = adapter(self.client, server, vendor)
            spec = REGISTRY[vendor]
            self.targets += [source.target(*spec.demo.ids(n)) for n in range(1, count + 1)]
        store = RedisStore(url, heartbeat=HEARTBEAT, member=name)
        self.watcher: Watcher = self.client.watcher(
            self.targets, interval=0.05, store=store, publish=stream
        )
        self.changes: list[Change] = []
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.client.__aenter__()

        async def drain() -> None:
            async for change in self.watcher:
                self.changes.append(change)

        self.task = asyncio.create_task(drain())

    def owned(self) -> set[str]:
        return {target_key(target) for target in self.watcher.owned}

    async def die(self) -> None:
        """Stop renewing and polling at once, without leaving (as a killed process would)."""
        assert self.task is not None
        beating = self.watcher._beating
        assert beating is not None
        beating.cancel()
        self.task.cancel()
        await asyncio.gather(beating, self.task, return_exceptions=True)
        self.watcher._beating = None

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.watcher.aclose()
        await self.client.__aexit__(None, None, None)


def fleet(server: VendorServer) -> tuple[World, list[str]]:
    world = World()
    names = []
    for vendor, count in COUNTS.items():
        for n in range(1, count + 1):
            ids = add(server, world, vendor, n, sim(1, "running"))
            names.append(f"{vendor}/{'/'.join(ids)}")
    return world, names


def partitioned(replicas: list[Replica], everything: set[str]) -> bool:
    shares = [replica.owned() for replica in replicas]
    return set().union(*shares) == everything and sum(map(len, shares)) == len(everything)


@contextlib.asynccontextmanager
async def running(replicas: list[Replica]) -> AsyncIterator[None]:
    try:
        for replica in replicas:
            await replica.start()
        yield
    finally:
        for replica in replicas:
            await replica.stop()


async def test_replicas_share_the_targets_and_take_over_a_dead_members_within_a_heartbeat(
    server: VendorServer, redis_server: RedisProcess
) -> None:
    """Three members split the targets (none polled by two, v5 targets of one project on one
    member); when one stops renewing, the others cover its targets within one heartbeat
    period and poll them; every change is published once."""
    world, names = fleet(server)
    stream = RedisStream(redis_server.url, stream="changes")
    replicas = [Replica(name, redis_server.url, server, stream) for name in "abc"]
    everything = {target_key(t) for t in replicas[0].targets}
    v5 = {target_key(t) for t in replicas[0].targets if t.source.batches}
    loop = asyncio.get_running_loop()
    try:
        async with running(replicas):
            # Every member in, and the targets split between them (before the last one's
            # first beat, the others may split everything between the two of them).
            await until(
                lambda: partitioned(replicas, everything) and all(r.owned() for r in replicas)
            )
            assert any(replica.owned() >= v5 for replica in replicas)
            await until(lambda: sum(len(r.changes) for r in replicas) >= len(names))

            victim = max(replicas, key=lambda r: len(r.owned()))
            orphans = victim.owned()
            survivors = [r for r in replicas if r is not victim]
            await victim.die()
            died = loop.time()
            await until(lambda: partitioned(survivors, everything))
            taken_over = loop.time() - died
            polls = {name: world.polls[name] for name in names}
            await until(lambda: all(world.polls[n] > polls[n] for n in names))

            for name in names:
                world.runs[name] = sim(1, "success")
            await until(lambda: len({target_key(c.target) for r in survivors for c in r.changes
                                     if c.kind is ChangeKind.FINISHED}) == len(names))  # fmt: skip
        entries = await stream.entries()
    finally:
        await stream.aclose()
    assert orphans
    assert taken_over <= HEARTBEAT + SLACK, taken_over
    ids = [change_id for _, change_id in entries]
    assert len(ids) == len(set(ids)) == 2 * len(names)  # first and finished, once each


async def test_a_member_that_leaves_is_replaced_on_the_next_beat(
    server: VendorServer, redis_server: RedisProcess
) -> None:
    """A member closed cleanly deregisters: the others take its targets on their next beat,
    well within the heartbeat period."""
    fleet(server)
    stream = RedisStream(redis_server.url, stream="changes")
    replicas = [Replica(name, redis_server.url, server, stream) for name in "ab"]
    everything = {target_key(t) for t in replicas[0].targets}
    loop = asyncio.get_running_loop()
    try:
        async with running(replicas):
            await until(
                lambda: partitioned(replicas, everything) and all(r.owned() for r in replicas)
            )
            await replicas[1].stop()
            replicas[1].task = None
            left = loop.time()
            await until(lambda: replicas[0].owned() == everything)
            handover = loop.time() - left
    finally:
        await stream.aclose()
    assert handover <= HEARTBEAT / 3 + SLACK, handover
