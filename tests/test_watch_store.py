"""Restart semantics: a watch started again on a store it used before, against the simulated
server, for each kind of store (in memory, SQLite, Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redisproc import RedisProcess
from watchkit import (
    TOKEN,
    Archive,
    World,
    adapter,
    add,
    collect,
    draining,
    history_adapter,
    sim,
    until,
)

from pipestatus import Client, Run, Status
from pipestatus.model import ChangeKind
from pipestatus.store import MemoryStore, RedisStore, SQLiteStore, Store
from pipestatus.testing import SimJob, SimRun, SimStage, VendorServer
from pipestatus.watch import Watcher

#: One vendor with a one-ID pipeline and no batching, one that batches, and the two-ID one.
VENDORS = ("yunxiao", "codearts_pipeline", "codearts_repo")

StoreFactory = Callable[[], Store]


@pytest.fixture
async def server() -> AsyncIterator[VendorServer]:
    async with VendorServer(token=TOKEN) as srv:
        yield srv


@pytest.fixture(params=["memory", "sqlite", "redis"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Makes the store a restarted watch opens: the same memory, the same file, the same
    Redis."""
    if request.param == "memory":
        memory = MemoryStore()
        return lambda: memory
    if request.param == "sqlite":
        path = tmp_path / "state.db"
        return lambda: SQLiteStore(path)
    redis: RedisProcess = request.getfixturevalue("redis_server")
    return lambda: RedisStore(redis.url, heartbeat=None)


def watcher(client: Client, targets: list, store: Store, **options: object) -> Watcher:
    return client.watcher(targets, interval=0.01, store=store, **options)  # type: ignore[arg-type]


async def quiet_round(w: Watcher, world: World, name: str) -> list:
    """Let ``w`` observe ``name`` a few times; the changes it yielded meanwhile."""
    async with draining(w) as got:
        start = world.polls[name]
        await until(lambda: world.polls[name] >= start + 3)
    return got


@pytest.mark.parametrize("vendor", VENDORS)
async def test_unchanged_target_gives_no_change_after_a_restart(
    server: VendorServer, stores: StoreFactory, vendor: str
) -> None:
    """Restarted on its store, a watch announces nothing for a pipeline that did not change."""
    world = World()
    ids = add(server, world, vendor, 1, sim(1, "success"))
    name = f"{vendor}/{'/'.join(ids)}"
    async with Client() as client:
        target = adapter(client, server, vendor).target(*ids)
        async with watcher(client, [target], stores()) as first:
            (change,) = await collect(first, 1)
        assert change.kind is ChangeKind.FIRST
        async with watcher(client, [target], stores()) as again:
            got = await quiet_round(again, world, name)
    assert got == []


@pytest.mark.parametrize("vendor", VENDORS)
async def test_a_run_that_broke_while_down_is_announced_broke(
    server: VendorServer, stores: StoreFactory, vendor: str
) -> None:
    """A run that failed while the watch was down is announced BROKE (after the success it
    remembers), never FIRST, and its previous is the running state it remembered."""
    world = World()
    ids = add(server, world, vendor, 1, sim(1, "success"))
    name = f"{vendor}/{'/'.join(ids)}"
    async with Client() as client:
        target = adapter(client, server, vendor).target(*ids)
        async with watcher(client, [target], stores()) as first:
            (seen,) = await collect(first, 1)
            world.runs[name] = sim(2, "running")
            (started,) = await collect(first, 1)
        assert (seen.kind, started.kind) == (ChangeKind.FIRST, ChangeKind.STARTED)
        world.runs[name] = sim(2, "failed")
        async with watcher(client, [target], stores()) as again:
            (change,) = await collect(again, 1)
            rest = await quiet_round(again, world, name)
    assert change.kind is ChangeKind.BROKE
    assert isinstance(change.current, Run)
    assert change.current.status is Status.FAILED
    assert isinstance(change.previous, Run)
    assert change.previous.status is Status.RUNNING
    assert change.previous == started.current
    assert rest == []


async def test_a_finish_already_announced_is_not_announced_again(
    server: VendorServer, stores: StoreFactory
) -> None:
    """A failure announced before the restart is not announced after it, nor is the start
    of a run seen before."""
    world = World()
    ids = add(server, world, "yunxiao", 1, sim(1, "running"))
    name = f"yunxiao/{ids[0]}"
    async with Client() as client:
        target = adapter(client, server, "yunxiao").target(*ids)
        async with watcher(client, [target], stores()) as first:
            await collect(first, 1)
            world.runs[name] = sim(1, "failed")
            (finished,) = await collect(first, 1)
        assert finished.kind is ChangeKind.FINISHED
        async with watcher(client, [target], stores()) as again:
            got = await quiet_round(again, world, name)
    assert got == []


async def test_the_change_in_hand_at_a_crash_comes_again_once(
    server: VendorServer, stores: StoreFactory
) -> None:
    """A change yielded and never followed by a request for the next one (the consumer died
    with it in hand) is yielded again by the next watch; one the consumer went past is not."""
    world = World()
    ids_a = add(server, world, "yunxiao", 1, sim(1, "success"))
    ids_b = add(server, world, "yunxiao", 2, sim(1, "failed"))
    async with Client() as client:
        flow = adapter(client, server, "yunxiao")
        a, b = flow.target(*ids_a), flow.target(*ids_b)
        first = watcher(client, [a, b], stores())
        await first.__aenter__()
        done, in_hand = await collect(first, 2)  # asking for the second acks the first
        # The consumer dies with the second in hand: the watch is left on an error.
        await first.__aexit__(RuntimeError, RuntimeError("died"), None)
        assert {done.target, in_hand.target} == {a, b}
        async with watcher(client, [a, b], stores()) as again:
            (repeated,) = await collect(again, 1)
            rest = await quiet_round(again, world, f"yunxiao/{ids_a[0]}")
    assert (repeated.target, repeated.kind, repeated.current) == (
        in_hand.target,
        in_hand.kind,
        in_hand.current,
    )
    assert rest == []


@pytest.mark.parametrize("vendor", ["yunxiao", "codearts_pipeline"])
async def test_history_announces_a_finish_hidden_by_a_newer_run(
    server: VendorServer, stores: StoreFactory, vendor: str
) -> None:
    """With a run history, a run that broke while the watch was down is announced BROKE
    even though a newer run has started since; then the newer run's start. Finishes
    remembered are not announced again."""
    world = World()
    ids = add(server, world, vendor, 1, sim(1, "success"))
    name = f"{vendor}/{'/'.join(ids)}"
    archive = Archive()
    async with Client() as client:
        source = history_adapter(client, server, vendor, archive)
        target = source.target(*ids)
        await archive.record(client, target)  # run 1: success
        async with watcher(client, [target], stores()) as first:
            (seen,) = await collect(first, 1)
        assert seen.kind is ChangeKind.FIRST
        world.runs[name] = sim(2, "failed")  # while the watch is down: run 2 fails...
        broken = await archive.record(client, target)
        world.runs[name] = sim(3, "running")  # ...and run 3 starts
        async with watcher(client, [target], stores()) as again:
            changes = await collect(again, 2)
            rest = await quiet_round(again, world, name)
    assert [c.kind for c in changes] == [ChangeKind.BROKE, ChangeKind.STARTED]
    assert changes[0].current == broken
    assert changes[0].previous == seen.current
    assert isinstance(changes[1].current, Run)
    assert changes[1].current.number == 3
    assert changes[1].previous == broken
    assert rest == []
    assert archive.reads == 1


@pytest.mark.parametrize("vendor", ["yunxiao", "codearts_pipeline"])
async def test_the_vendors_own_history_announces_a_finish_hidden_by_a_newer_run(
    server: VendorServer, stores: StoreFactory, vendor: str
) -> None:
    """Over the vendor's own run history (v5 and Yunxiao list a pipeline's runs, newest
    first): a run that broke while the watch was down is announced BROKE after the restart,
    though a newer run has started since, and then the newer run's start."""
    now = datetime.now(UTC)

    def run(number: int, status: str, minutes_ago: int) -> SimRun:
        started = now - timedelta(minutes=minutes_ago)
        done = started + timedelta(minutes=1) if status != "running" else None
        stages = [SimStage("build", [SimJob("make", status)])]
        return SimRun(number, status, stages, started_at=started, finished_at=done)

    world = World()
    first_run = run(1, "success", 30)
    ids = add(server, world, vendor, 1, first_run)
    name = f"{vendor}/{'/'.join(ids)}"
    (served,) = server.pipelines(vendor)
    async with Client() as client:
        target = adapter(client, server, vendor).target(*ids)
        async with watcher(client, [target], stores()) as first:
            (seen,) = await collect(first, 1)
        assert seen.kind is ChangeKind.FIRST
        served.history = (first_run, run(2, "failed", 20))  # while the watch is down
        world.runs[name] = run(3, "running", 5)
        async with watcher(client, [target], stores()) as again:
            changes = await collect(again, 2)
    assert [c.kind for c in changes] == [ChangeKind.BROKE, ChangeKind.STARTED]
    assert [c.run.number for c in changes if c.run is not None] == [2, 3]


async def test_without_history_a_newer_run_is_all_there_is_to_see(
    server: VendorServer, stores: StoreFactory
) -> None:
    """An adapter without a history: the newer run's start is announced, and the hidden
    finish cannot be (the limit the history seam lifts)."""
    world = World()
    ids = add(server, world, "yunxiao", 1, sim(1, "success"))
    name = f"yunxiao/{ids[0]}"
    async with Client() as client:
        target = adapter(client, server, "yunxiao").target(*ids)
        async with watcher(client, [target], stores()) as first:
            await collect(first, 1)
        world.runs[name] = sim(3, "running")
        async with watcher(client, [target], stores()) as again:
            (change,) = await collect(again, 1)
    assert change.kind is ChangeKind.STARTED


async def test_a_history_that_fails_is_logged_and_the_watch_goes_on(
    server: VendorServer, stores: StoreFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A history read that fails costs the catch-up only: the newer run is announced and the
    failure is logged."""
    world = World()
    ids = add(server, world, "yunxiao", 1, sim(1, "success"))
    name = f"yunxiao/{ids[0]}"
    archive = Archive()
    async with Client(retries=0) as client:
        source = history_adapter(client, server, "yunxiao", archive)
        target = source.target(*ids)
        async with watcher(client, [target], stores()) as first:
            await collect(first, 1)
        world.runs[name] = sim(3, "running")

        def broken(*args: object, **kwargs: object) -> object:
            raise RuntimeError("history endpoint exploded")

        source.history = broken  # type: ignore[attr-defined]
        with caplog.at_level("WARNING", logger="pipestatus"):
            async with watcher(client, [target], stores()) as again:
                (change,) = await collect(again, 1)
    assert change.kind is ChangeKind.STARTED
    assert any("history could not be read" in r.getMessage() for r in caplog.records)


async def test_errors_shown_before_a_restart_are_not_shown_again(
    server: VendorServer, stores: StoreFactory
) -> None:
    """With errors=True, the error yielded before the restart is not yielded again; the
    recovery after it is."""
    world = World()
    ids = add(server, world, "yunxiao", 1, sim(1, "running"))
    name = f"yunxiao/{ids[0]}"
    async with Client(retries=0) as client:
        target = adapter(client, server, "yunxiao").target(*ids)
        server.fault(vendor="yunxiao", status=404)
        options = {"errors": True, "max_error_interval": 0.01}
        async with watcher(client, [target], stores(), **options) as first:
            (error,) = await collect(first, 1)
        assert error.kind is ChangeKind.ERROR
        async with watcher(client, [target], stores(), **options) as again:
            start = server.request_count
            async with draining(again) as quiet:
                await until(lambda: server.request_count >= start + 3)
            assert quiet == []
            server.clear_faults()
            (recovered,) = await collect(again, 1)
    assert recovered.kind is ChangeKind.FIRST
    assert world.polls[name] >= 1


def test_a_store_is_checked_when_the_watcher_is_made() -> None:
    """store= refuses what is not a store, at once."""
    with pytest.raises(TypeError, match="state store"):
        Watcher([], store=object())  # type: ignore[arg-type]
