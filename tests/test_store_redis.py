"""The Redis store against a real redis-server: its keys checked before use, its errors in our
tree (never a redis exception, never a password), and a watch that keeps polling while Redis is
away, at start or mid-watch, or slow, says so once, and writes what it held back once Redis is
back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redisproc import RedisProcess
from watchkit import TOKEN, World, adapter, add, collect, draining, sim, until

from pipestatus import Client, Run, Status
from pipestatus.errors import StoreError, StoreUnavailableError
from pipestatus.model import ChangeKind
from pipestatus.store import RedisStore
from pipestatus.stream import RedisStream
from pipestatus.testing import VendorServer


@pytest.fixture
async def server() -> AsyncIterator[VendorServer]:
    async with VendorServer(token=TOKEN) as srv:
        yield srv


def outage_records(caplog: pytest.LogCaptureFixture, word: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "pipestatus.outage" and word in r.getMessage()]


async def test_foreign_data_at_its_keys_is_refused_and_left_alone(
    redis_server: RedisProcess,
) -> None:
    """Another application's value at the schema key, or a key of another type, is a
    StoreError naming it; nothing is overwritten."""
    async with RedisStore(redis_server.url, prefix="app") as probe:
        await probe.call("SET", "app:schema", "someone-else/3")
        await probe.call("SET", "other:state", "a string, not a hash")
    with pytest.raises(StoreError, match="someone-else/3") as raised:
        await RedisStore(redis_server.url, prefix="app").open()
    assert raised.value.__context__ is None
    with pytest.raises(StoreError, match="other:state is a string"):
        await RedisStore(redis_server.url, prefix="other").open()
    async with RedisStore(redis_server.url, prefix="fresh") as probe:
        assert await probe.call("GET", "app:schema") == "someone-else/3"
        assert await probe.call("GET", "other:state") == "a string, not a hash"


async def test_errors_name_the_server_never_the_password(tmp_path: Path) -> None:
    """A password in the URL shows neither in the repr nor in the error a refusal raises."""
    redis = RedisProcess(tmp_path, password="the-right-one")
    redis.start()
    try:
        url = f"redis://:hunter2-secret@127.0.0.1:{redis.port}/0"
        store = RedisStore(url)
        stream = RedisStream(url)
        assert "hunter2" not in repr(store) + repr(stream)
        with pytest.raises(StoreError) as raised:
            await store.open()
        async with RedisStore(f"redis://:the-right-one@127.0.0.1:{redis.port}/0") as good:
            await good.call("SET", "k", "v")
            with pytest.raises(StoreError) as wrong_type:
                await good.call("HGET", "k", "field")
    finally:
        redis.stop()
    text = str(raised.value)
    assert "hunter2" not in text
    assert "the-right-one" not in str(wrong_type.value)
    assert f"127.0.0.1:{redis.port}" in text
    assert raised.value.__context__ is None
    assert raised.value.__cause__ is None


async def test_an_unreachable_redis_is_unavailable_not_a_redis_exception(tmp_path: Path) -> None:
    """Nothing listening: StoreUnavailableError, with no redis exception in its chain."""
    nobody = RedisProcess(tmp_path)  # a free port, never started
    store = RedisStore(nobody.url, timeout=0.5)
    with pytest.raises(StoreUnavailableError, match="unreachable") as raised:
        await store.open()
    assert raised.value.__context__ is None
    await store.aclose()


async def test_a_watch_started_while_redis_is_down_polls_and_catches_up(
    server: VendorServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis unreachable at start: the watch keeps polling, announces nothing it cannot
    write, says so once, and yields the changes once Redis is there."""
    redis = RedisProcess(tmp_path)
    world = World()
    ids = add(server, world, "yunxiao", 1, sim(1, "running"))
    name = f"yunxiao/{ids[0]}"
    caplog.set_level(logging.INFO, logger="pipestatus")
    async with Client() as client:
        target = adapter(client, server, "yunxiao").target(*ids)
        store = RedisStore(redis.url, heartbeat=None, timeout=0.5)
        async with client.watcher([target], interval=0.01, store=store) as watcher:
            async with draining(watcher) as early:
                await until(lambda: world.polls[name] >= 5)
            assert early == []
            world.runs[name] = sim(1, "success")
            redis.start()
            try:
                (change,) = await collect(watcher, 1)
            except BaseException:
                redis.stop()
                raise
    redis.stop()
    assert change.kind is ChangeKind.FIRST
    assert isinstance(change.current, Run)
    assert change.current.status is Status.SUCCESS
    assert len(outage_records(caplog, "unavailable")) == 1
    assert len(outage_records(caplog, "reachable again")) == 1


@pytest.mark.parametrize("persist", [True, False], ids=["persistent", "in-memory"])
async def test_redis_restarted_mid_watch_loses_no_change_and_repeats_none(
    server: VendorServer, tmp_path: Path, caplog: pytest.LogCaptureFixture, persist: bool
) -> None:
    """Redis killed and started again on its port while changes happen: the watch keeps
    polling, says so once, and publishes every change once after (a Redis that lost its data
    is written again from the watch's memory: nothing is announced as first again)."""
    redis = RedisProcess(tmp_path, persist=persist)
    redis.start()
    world = World()
    names = []
    for n in range(1, 6):
        ids = add(server, world, "yunxiao", n, sim(1, "running"))
        names.append(f"yunxiao/{ids[0]}")
    caplog.set_level(logging.INFO, logger="pipestatus")
    stream = RedisStream(redis.url, stream="changes")
    try:
        async with Client() as client:
            flow = adapter(client, server, "yunxiao")
            targets = [flow.target(name.split("/")[1]) for name in names]
            store = RedisStore(redis.url, heartbeat=None, timeout=0.5)
            async with client.watcher(targets, interval=0.01, store=store, publish=stream) as w:
                firsts = await collect(w, 5)
                redis.kill()
                for name in names:
                    world.runs[name] = sim(1, "failed")
                async with draining(w) as during:
                    await until(lambda: all(world.polls[n] >= 10 for n in names))
                assert during == []  # nothing is yielded before it is written
                redis.start()
                finals = during + await collect(w, 5 - len(during))
            entries = await stream.entries()
    finally:
        await stream.aclose()
        redis.stop()
    assert {c.kind for c in firsts} == {ChangeKind.FIRST}
    assert {c.kind for c in finals} == {ChangeKind.FINISHED}
    ids_published = [change_id for _, change_id in entries]
    assert len(ids_published) == len(set(ids_published))
    assert len(ids_published) == (10 if persist else 5)
    assert len(outage_records(caplog, "unavailable")) == 1
    assert len(outage_records(caplog, "reachable again")) == 1


async def test_a_slow_redis_holds_changes_back_while_polling_goes_on(
    server: VendorServer, redis_server: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis paused longer than the store's timeout: polls go on meanwhile, the change is
    yielded once Redis answers again, exactly once."""
    world = World()
    ids = add(server, world, "yunxiao", 1, sim(1, "running"))
    name = f"yunxiao/{ids[0]}"
    caplog.set_level(logging.INFO, logger="pipestatus")
    async with Client() as client:
        target = adapter(client, server, "yunxiao").target(*ids)
        store = RedisStore(redis_server.url, heartbeat=None, timeout=0.3)
        async with client.watcher([target], interval=0.01, store=store) as watcher:
            (first,) = await collect(watcher, 1)
            loop = asyncio.get_running_loop()
            async with RedisStore(redis_server.url, prefix="pause") as other:
                await other.call("CLIENT", "PAUSE", 1500, "ALL")
            resumed = loop.time() + 1.5
            world.runs[name] = sim(1, "success")
            start = world.polls[name]
            polled_while_paused: list[int] = []
            loop.call_at(resumed, lambda: polled_while_paused.append(world.polls[name] - start))
            (change,) = await collect(watcher, 1)
            arrived = loop.time()
            async with draining(watcher) as after:
                await until(lambda: world.polls[name] >= start + polled_while_paused[0] + 10)
    assert first.kind is ChangeKind.FIRST
    assert change.kind is ChangeKind.FINISHED
    assert arrived >= resumed - 0.05  # it could not be written before Redis answered
    assert polled_while_paused[0] >= 5  # polling went on meanwhile
    assert after == []  # and it came once
    assert len(outage_records(caplog, "unavailable")) == 1
