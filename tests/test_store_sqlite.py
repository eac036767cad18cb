"""The SQLite store: one file in WAL mode, worked on one thread off the event loop, locked
against a second watch, and never reset: a file that is not its own is a clear error naming it.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from watchkit import TOKEN, World, adapter, add, collect, sim

from pipestatus import Client, Run, Status
from pipestatus.errors import StoreError
from pipestatus.model import ChangeKind
from pipestatus.store import SQLiteStore
from pipestatus.store._sqlite import APPLICATION_ID
from pipestatus.testing import VendorServer
from pipestatus.watch.records import Event, Record, Write
from pipestatus.watch.tracker import Memory, observe

NOW = datetime(2025, 5, 17, tzinfo=UTC)


def a_run(number: int, status: Status) -> Run:
    return Run(
        vendor="toy",
        pipeline_id="p",
        run_id=str(number),
        number=number,
        status=status,
        raw_status=status.value,
    )


def write(key: str, version: int, number: int, status: Status, event: str) -> Write:
    current = a_run(number, status)
    memory = observe(Memory(), current, errors=False).memory
    change = Event(
        id=event,
        key=key,
        seq=version + 1,
        kind=ChangeKind.FIRST,
        previous=None,
        current=current,
        at=NOW,
    )
    record = Record(memory=memory, version=version + 1, shown=current)
    return Write(key=key, version=version, record=record, event=change)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_records_and_the_outbox_survive_closing_the_file(tmp_path: Path) -> None:
    """What is committed is there after the file is closed and opened again: the record, and
    the event until it is acknowledged."""
    path = tmp_path / "state.db"
    async with SQLiteStore(path) as store:
        assert await store.commit([write("a", 0, 1, Status.RUNNING, "e1")]) == [None]
        assert await store.commit([write("a", 1, 1, Status.SUCCESS, "e2")]) == [None]
    async with SQLiteStore(path) as store:
        found = await store.load(["a", "b"])
        assert list(found) == ["a"]
        assert found["a"].record.version == 2
        assert found["a"].record.memory.status is Status.SUCCESS
        assert [event.id for event in found["a"].pending] == ["e1", "e2"]
        await store.commit([], acks=["e1"])
    async with SQLiteStore(path) as store:
        assert [event.id for event in (await store.load(["a"]))["a"].pending] == ["e2"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID


async def test_a_write_on_a_stale_version_is_refused_and_a_retry_is_not_applied_twice(
    tmp_path: Path,
) -> None:
    """Compare and set: a write for a version the file is past is refused (what is stored
    comes back); the same write sent again counts as applied, once."""
    async with SQLiteStore(tmp_path / "state.db") as store:
        first = write("a", 0, 1, Status.RUNNING, "e1")
        assert await store.commit([first]) == [None]
        assert await store.commit([first]) == [None]  # a retry after a lost answer
        (conflict,) = await store.commit([write("a", 0, 9, Status.FAILED, "other")])
        assert conflict is not None
        assert conflict.record.version == 1
        found = await store.load(["a"])
    assert [event.id for event in found["a"].pending] == ["e1"]


async def test_every_call_runs_on_the_stores_own_thread(tmp_path: Path) -> None:
    """SQLite is worked on one dedicated thread, never on the event loop's."""
    seen: set[str] = set()
    async with SQLiteStore(tmp_path / "state.db") as store:
        assert store._conn is not None
        store._conn.set_trace_callback(lambda _: seen.add(threading.current_thread().name))
        await store.commit([write("a", 0, 1, Status.RUNNING, "e1")])
        await store.load(["a"])
    assert seen
    assert all(name.startswith("pipestatus-sqlite") for name in seen)
    assert threading.current_thread().name not in seen


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda path: path.write_bytes(b"\x00garbage" * 512), id="not-sqlite"),
        pytest.param(
            lambda path: sqlite3.connect(path).executescript(
                "CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ada');"
            ),
            id="another-application",
        ),
        pytest.param(
            lambda path: sqlite3.connect(path).executescript(
                f"PRAGMA application_id={APPLICATION_ID}; PRAGMA user_version=99;"
                "CREATE TABLE targets (key TEXT);"
            ),
            id="newer-schema",
        ),
    ],
)
async def test_a_file_that_is_not_ours_is_an_error_naming_it_and_left_as_it_is(
    tmp_path: Path, make: object
) -> None:
    """A file that is not a pipestatus state file raises StoreError naming the file, and the
    file is not touched."""
    path = tmp_path / "mine.db"
    make(path)  # type: ignore[operator]
    before = digest(path)
    with pytest.raises(StoreError, match=str(path)) as raised:
        async with SQLiteStore(path):
            pass
    assert raised.value.__context__ is None
    assert digest(path) == before


async def test_a_damaged_state_file_is_an_error_not_a_reset(tmp_path: Path) -> None:
    """A state file whose pages were overwritten is refused by name, and kept as it is."""
    path = tmp_path / "state.db"
    async with SQLiteStore(path) as store:
        writes = [write(f"k{i}", 0, i, Status.SUCCESS, f"e{i}") for i in range(300)]
        await store.commit(writes)
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    data[page : 3 * page] = b"\xff" * (2 * page)  # the first pages after the header
    path.write_bytes(bytes(data))
    before = digest(path)
    with pytest.raises(StoreError, match=str(path)):
        async with SQLiteStore(path):
            pass
    assert digest(path) == before


async def test_an_empty_file_is_set_up(tmp_path: Path) -> None:
    """A zero-byte file (touched before) becomes a state file."""
    path = tmp_path / "touched.db"
    path.touch()
    async with SQLiteStore(path) as store:
        assert await store.load(["x"]) == {}


async def test_a_second_watch_on_the_same_file_is_refused(tmp_path: Path) -> None:
    """While one process has the file open, another one is refused: in use."""
    path = tmp_path / "state.db"
    code = (
        "import asyncio, sys\n"
        "from pipestatus.store import SQLiteStore\n"
        "from pipestatus.errors import StoreError\n"
        "async def main():\n"
        "    try:\n"
        f"        await SQLiteStore({str(path)!r}).open()\n"
        "    except StoreError as exc:\n"
        "        print(exc)\n"
        "asyncio.run(main())\n"
    )
    async with SQLiteStore(path):
        other = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, err = await other.communicate()
    assert "in use by another watch" in out.decode(), err.decode()
    async with SQLiteStore(path):  # free again once closed
        pass


async def test_a_watch_on_a_foreign_file_ends_with_a_store_error(tmp_path: Path) -> None:
    """client.watch on a file it cannot use raises StoreError naming it at once (after no
    change) and leaves no task behind."""
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    server = VendorServer(token=TOKEN)
    await server.start()
    before = asyncio.all_tasks()
    async with Client() as client:
        world = World()
        ids = add(server, world, "yunxiao", 1, sim(1, "success"))
        target = adapter(client, server, "yunxiao").target(*ids)
        with pytest.raises(StoreError, match=r"notes\.db"):
            async with client.watcher([target], interval=0.01, store=SQLiteStore(path)) as w:
                await collect(w, 1)
    await server.close()  # the server shares this loop: end its handler tasks first
    assert asyncio.all_tasks() == before
    assert path.read_text().startswith("these are my notes")
