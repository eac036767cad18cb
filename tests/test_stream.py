"""Changes on a Redis Stream: published in the state's own transaction, once per change; read
by consumer groups, once per group; nothing lost when a consumer dies mid-batch, when it is
restarted under its name, or when the group vanishes with a Redis restarted empty."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redisproc import RedisProcess
from watchkit import TOKEN, World, adapter, add, collect, sim

from pipestatus import Client, Run
from pipestatus.model import ChangeKind
from pipestatus.store import MemoryStore, RedisStore, SQLiteStore
from pipestatus.stream import RedisStream, StreamEvent
from pipestatus.testing import VendorServer
from pipestatus.watch import Watcher
from pipestatus.watch.keys import target_key


@pytest.fixture
async def server() -> AsyncIterator[VendorServer]:
    async with VendorServer(token=TOKEN) as srv:
        yield srv


async def take(stream: RedisStream, group: str, consumer: str, n: int, **options: object) -> list:
    """The first ``n`` events ``consumer`` of ``group`` reads, each acknowledged."""
    got: list[StreamEvent] = []
    reading = stream.consume(group, consumer, block=0.05, **options)  # type: ignore[arg-type]
    async with asyncio.timeout(20), contextlib.aclosing(reading):
        async for event in reading:
            await event.ack()
            got.append(event)
            if len(got) == n:
                break
    return got


async def publish_changes(server: VendorServer, url: str, stream: RedisStream, n: int) -> list:
    """Watch ``n`` pipelines through two changes each (first, finished), publishing them."""
    world = World()
    names = []
    for i in range(1, n + 1):
        ids = add(server, world, "yunxiao", i, sim(1, "running"))
        names.append(ids[0])
    async with Client() as client:
        flow = adapter(client, server, "yunxiao")
        targets = [flow.target(name) for name in names]
        store = RedisStore(url, heartbeat=None)
        async with client.watcher(targets, interval=0.01, store=store, publish=stream) as w:
            changes = await collect(w, n)
            for name in names:
                world.runs[f"yunxiao/{name}"] = sim(1, "success")
            changes += await collect(w, n)
    return changes


async def test_each_change_reaches_each_group_once(
    server: VendorServer, redis_server: RedisProcess
) -> None:
    """Every change published is read once by each of two groups, with its stable ID, its
    kind and its target's key, in order per target."""
    stream = RedisStream(redis_server.url, stream="s")
    try:
        async with RedisStore(redis_server.url) as probe:
            for group in ("bots", "dash"):
                await probe.call("XGROUP", "CREATE", "s", group, "$", "MKSTREAM")
        changes = await publish_changes(server, redis_server.url, stream, 4)
        bots = await take(stream, "bots", "bot-1", 8)
        dash = await take(stream, "dash", "dash-1", 8)
        entries = await stream.entries()
    finally:
        await stream.aclose()
    assert len(entries) == len({change_id for _, change_id in entries}) == 8
    for events in (bots, dash):
        assert [e.id for e in events] == [change_id for _, change_id in entries]
        assert [(e.key, e.change.kind) for e in events] == [
            (target_key(c.target), c.kind) for c in changes
        ]
        assert all(e.key == target_key(e.change.target) for e in events)
        assert {e.change.kind for e in events} == {ChangeKind.FIRST, ChangeKind.FINISHED}
        for event, change in zip(events, changes, strict=True):
            assert event.change.current == change.current
            assert event.change.previous == change.previous


async def test_the_same_change_seen_twice_is_published_once(
    server: VendorServer, redis_server: RedisProcess
) -> None:
    """Two watchers on one Redis state that both see the same new run (a replica race)
    publish it once: the same change has one ID, and the second write is the first's."""
    world = World()
    ids = add(server, world, "yunxiao", 1, sim(1, "running"))
    stream = RedisStream(redis_server.url, stream="s")
    try:
        async with Client() as one, Client() as two:
            targets = [adapter(c, server, "yunxiao").target(*ids) for c in (one, two)]
            watchers = [
                c.watcher([t], interval=0.01, store=RedisStore(redis_server.url, heartbeat=None),
                          publish=stream)
                for c, t in zip((one, two), targets, strict=True)
            ]  # fmt: skip
            async with watchers[0], watchers[1]:
                seen = await asyncio.gather(*(collect(w, 1) for w in watchers))
        entries = await stream.entries()
    finally:
        await stream.aclose()
    assert [c.kind for (c,) in seen] == [ChangeKind.FIRST, ChangeKind.FIRST]
    assert len(entries) == 1


async def test_a_consumer_killed_mid_batch_loses_nothing(
    server: VendorServer, redis_server: RedisProcess
) -> None:
    """A consumer that read a batch and acknowledged part of it before it died: another
    consumer of the group claims the rest once it has been idle long enough; together they
    acknowledge every change once, and only the unacknowledged ones come twice."""
    stream = RedisStream(redis_server.url, stream="s")
    try:
        async with RedisStore(redis_server.url) as probe:
            await probe.call("XGROUP", "CREATE", "s", "bots", "$", "MKSTREAM")
        await publish_changes(server, redis_server.url, stream, 5)
        reading = stream.consume("bots", "doomed", count=10, block=0.05)
        handled = []
        async with asyncio.timeout(20):
            async for event in reading:
                if len(handled) < 3:
                    await event.ack()
                handled.append(event)
                if len(handled) == 5:
                    break  # dies with 7 delivered, unacknowledged
        await reading.aclose()
        rest = await take(stream, "bots", "heir", 7, claim_idle=0.2)
        async with RedisStore(redis_server.url) as probe:
            pending = await probe.call("XPENDING", "s", "bots")
        entries = await stream.entries()
    finally:
        await stream.aclose()
    acked = [e.id for e in handled[:3]] + [e.id for e in rest]
    assert sorted(acked) == sorted(change_id for _, change_id in entries)
    assert len(set(acked)) == 10
    assert pending["pending"] == 0  # nothing left unacknowledged in the group


async def test_a_consumer_restarted_under_its_name_gets_its_unacknowledged_changes_first(
    server: VendorServer, redis_server: RedisProcess
) -> None:
    """What a consumer name was given and never acknowledged comes back to it first."""
    stream = RedisStream(redis_server.url, stream="s")
    try:
        async with RedisStore(redis_server.url) as probe:
            await probe.call("XGROUP", "CREATE", "s", "bots", "$", "MKSTREAM")
        await publish_changes(server, redis_server.url, stream, 2)
        reading = stream.consume("bots", "bot-1", count=10, block=0.05)
        unacked = [await anext(reading), await anext(reading)]
        await reading.aclose()
        back = await take(stream, "bots", "bot-1", 4)
    finally:
        await stream.aclose()
    assert [e.id for e in back[:2]] == [e.id for e in unacked]
    assert len({e.id for e in back}) == 4


async def test_a_group_gone_with_a_restarted_redis_is_made_again(
    server: VendorServer, tmp_path: Path
) -> None:
    """Redis restarted without its data while a consumer reads: reading waits, makes the
    group again and reads what is published after, without raising."""
    redis = RedisProcess(tmp_path)
    redis.start()
    stream = RedisStream(redis.url, stream="s", timeout=0.5)
    try:
        reading = stream.consume("bots", "bot-1", start="0", block=0.05, retry_max=0.2)
        waiting = asyncio.create_task(anext(reading))
        await asyncio.sleep(0.2)
        redis.restart()
        changes = await publish_changes(server, redis.url, stream, 1)
        async with asyncio.timeout(20):
            first = await waiting
        second = await anext(reading)
        await reading.aclose()
    finally:
        await stream.aclose()
        redis.stop()
    assert [first.change.kind, second.change.kind] == [c.kind for c in changes]


@pytest.mark.parametrize("kind", ["memory", "sqlite", "other-redis"])
async def test_publishing_needs_the_state_on_the_streams_redis(
    redis_server: RedisProcess, tmp_path: Path, kind: str
) -> None:
    """publish= with a store that cannot share the stream's transaction is refused at once."""
    store = {
        "memory": lambda: MemoryStore(),
        "sqlite": lambda: SQLiteStore(tmp_path / "s.db"),
        "other-redis": lambda: RedisStore("redis://127.0.0.1:1/0"),
    }[kind]()
    with pytest.raises(ValueError, match="same Redis server"):
        Watcher([], store=store, publish=RedisStream(redis_server.url))


async def test_publish_alone_keeps_the_state_on_the_streams_redis(
    server: VendorServer, redis_server: RedisProcess
) -> None:
    """publish= without store= keeps the state in the stream's own Redis."""
    world = World()
    ids = add(server, world, "yunxiao", 1, sim(1, "success"))
    stream = RedisStream(redis_server.url, stream="s")
    try:
        async with Client() as client:
            target = adapter(client, server, "yunxiao").target(*ids)
            async with client.watcher([target], interval=0.01, publish=stream) as w:
                (change,) = await collect(w, 1)
        async with RedisStore(redis_server.url) as probe:
            stored = await probe.load([target_key(target)])
        entries = await stream.entries()
    finally:
        await stream.aclose()
    assert isinstance(change.current, Run)
    assert stored[target_key(target)].record.shown == change.current
    assert len(entries) == 1
