"""The SQLite store: one file, the standard library's :mod:`sqlite3`, off the event loop.

Every call runs on one dedicated worker thread that owns the connection, so the event loop never
waits on the disk and the connection is never shared between threads. The file is opened in
WAL mode with ``synchronous=NORMAL`` (a commit survives the process being killed; a power cut
may lose the last commits, which a watch then announces again, never wrongly) and with an
exclusive lock held while it is open, so a second watch on the same file is refused instead of
announcing everything twice.

The file is marked as ours (``PRAGMA application_id``) with its schema version in
``PRAGMA user_version``. An empty or new file is set up; anything else that is not ours (another
application's database, a file that is not SQLite, a damaged one, a newer schema) is a
:class:`~pipestatus.errors.StoreError` naming the file, and the file is left as it is.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final, TypeVar

from pipestatus.errors import StoreError, StoreUnavailableError
from pipestatus.store._cas import Head, Verdict, plan
from pipestatus.watch.codec import (
    CodecError,
    decode_event,
    decode_record,
    encode_event,
    encode_record,
)
from pipestatus.watch.records import Destination, Stored, Write

__all__ = ["APPLICATION_ID", "SCHEMA", "SQLiteStore"]

T = TypeVar("T")

#: ``PRAGMA application_id`` of a pipestatus state file: "psta".
APPLICATION_ID: Final = 0x70737461
#: The schema this pipestatus writes (``PRAGMA user_version``).
SCHEMA: Final = 1
#: Keys per ``IN (...)`` query (well under SQLite's limit on parameters).
_CHUNK: Final = 500
#: How long opening waits for a lock another process holds.
_LOCK_WAIT: Final = 0.2

_TABLES: Final = (
    "CREATE TABLE targets (key TEXT PRIMARY KEY, version INTEGER NOT NULL, event TEXT,"
    " record TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE outbox (n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, key TEXT NOT NULL,"
    " event TEXT NOT NULL)",
    "CREATE INDEX outbox_by_key ON outbox (key, n)",
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
)
_OURS: Final = frozenset({"targets", "outbox", "meta"})


def _chunks(keys: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(keys), _CHUNK):
        yield keys[start : start + _CHUNK]


class SQLiteStore:
    """A state store in one SQLite file at ``path`` (created if missing); see the module
    docstring. Opened by the watch that uses it, or with ``async with``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._opened = 0

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    async def __aenter__(self) -> SQLiteStore:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- the worker thread ----------------------------------------------------------------------

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        executor, conn = self._executor, self._conn
        if executor is None or conn is None:
            raise StoreError(f"{self.path}: the store is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, self._guarded, fn, conn)

    def _guarded(self, fn: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection) -> T:
        """Run ``fn`` on the worker; sqlite3's and the codec's failures become ours here."""
        try:
            return fn(conn)
        except sqlite3.OperationalError as exc:
            # The disk is full, or failing: try again later; the file is not at fault.
            error: StoreError = StoreUnavailableError(f"{self.path}: {exc}")
        except sqlite3.Error as exc:
            error = StoreError(f"{self.path}: unreadable ({exc}); move it away to start afresh")
        except CodecError as exc:
            error = StoreError(f"{self.path}: a record that is not pipestatus's: {exc}")
        raise error

    # --- lifecycle ------------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the file (set it up if it is new), check it is ours and whole, and lock it."""
        self._opened += 1
        if self._conn is not None:
            return
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipestatus-sqlite")
        loop = asyncio.get_running_loop()
        try:
            self._conn = await loop.run_in_executor(executor, self._connect)
        except BaseException:
            self._opened -= 1
            executor.shutdown(wait=False)
            raise
        self._executor = executor

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=_LOCK_WAIT, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            problem = f"{self.path}: cannot open ({exc})"
        else:
            try:
                self._check(conn)
                return conn
            except sqlite3.OperationalError as exc:
                conn.close()
                problem = (
                    f"{self.path}: in use by another watch (locked)"
                    if "locked" in str(exc)
                    else f"{self.path}: cannot be read ({exc})"
                )
            except sqlite3.DatabaseError as exc:
                conn.close()
                problem = (
                    f"{self.path}: not a pipestatus state file (not an SQLite database, or "
                    f"damaged: {exc}); it is left as it is"
                )
            except StoreError:
                conn.close()
                raise
        raise StoreError(problem)

    def _check(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        application_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if application_id != APPLICATION_ID:
            if application_id != 0 or tables:
                names = ", ".join(sorted(tables)) or "none"
                raise StoreError(
                    f"{self.path}: an SQLite database of another application (tables: {names});"
                    " pipestatus leaves it as it is"
                )
            self._create(conn)
        else:
            schema = conn.execute("PRAGMA user_version").fetchone()[0]
            if schema > SCHEMA:
                raise StoreError(
                    f"{self.path}: written by a newer pipestatus (schema {schema}; this one "
                    f"reads {SCHEMA})"
                )
            if not tables >= _OURS:
                raise StoreError(
                    f"{self.path}: a pipestatus state file without its tables "
                    f"({', '.join(sorted(_OURS - tables))}): damaged; it is left as it is"
                )
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{self.path}: cannot use write-ahead logging (journal mode {mode})")
        conn.execute("PRAGMA synchronous=NORMAL")
        verdict = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
        if verdict != "ok":
            raise StoreError(f"{self.path}: damaged ({verdict}); it is left as it is")
        # The first write takes the exclusive lock, held until close: one watch per file.
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT OR REPLACE INTO meta (name, value) VALUES ('opened_by', ?)", (str(os.getpid()),)
        )
        conn.execute("COMMIT")

    def _create(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _TABLES:
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version={SCHEMA}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def aclose(self) -> None:
        """Close the file (on the last of as many ``aclose`` as ``open``)."""
        self._opened = max(0, self._opened - 1)
        if self._opened or self._conn is None:
            return
        executor, conn = self._executor, self._conn
        self._executor, self._conn = None, None
        assert executor is not None
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(executor, conn.close)
        finally:
            executor.shutdown(wait=False)

    # --- the protocol ---------------------------------------------------------------------------

    async def load(self, keys: Sequence[str]) -> dict[str, Stored]:
        wanted = list(dict.fromkeys(keys))
        return await self._call(lambda conn: self._load(conn, wanted))

    def _load(self, conn: sqlite3.Connection, keys: Sequence[str]) -> dict[str, Stored]:
        records: dict[str, str] = {}
        pending: dict[str, list[str]] = {}
        for chunk in _chunks(keys):
            marks = ",".join("?" * len(chunk))
            for key, record in conn.execute(
                f"SELECT key, record FROM targets WHERE key IN ({marks})",  # noqa: S608 - marks only
                chunk,
            ):
                records[key] = record
            for key, event in conn.execute(
                f"SELECT key, event FROM outbox WHERE key IN ({marks}) ORDER BY n",  # noqa: S608
                chunk,
            ):
                pending.setdefault(key, []).append(event)
        out: dict[str, Stored] = {}
        for key, record in records.items():
            try:
                out[key] = Stored(
                    record=decode_record(record),
                    pending=tuple(decode_event(text) for text in pending.get(key, ())),
                )
            except CodecError as exc:
                raise CodecError(f"target {key}: {exc}") from None
        return out

    async def commit(
        self,
        writes: Sequence[Write],
        *,
        acks: Sequence[str] = (),
        publish: Destination | None = None,
    ) -> list[Stored | None]:
        if publish is not None:
            raise ValueError(
                "SQLiteStore cannot publish: a stream needs the RedisStore of its server"
            )
        batch, done = list(writes), list(acks)
        return await self._call(lambda conn: self._commit(conn, batch, done))

    def _commit(
        self, conn: sqlite3.Connection, writes: Sequence[Write], acks: Sequence[str]
    ) -> list[Stored | None]:
        if not writes:
            # Acknowledgements alone (one per change yielded): one statement, its own
            # transaction. Each call into sqlite3 takes the GIL back from a busy event loop,
            # which can cost a switch interval (5 ms) each, so the fewer the better.
            for chunk in _chunks(list(acks)):
                marks = ",".join("?" * len(chunk))
                conn.execute(f"DELETE FROM outbox WHERE id IN ({marks})", chunk)  # noqa: S608
            return []
        encoded = [
            (
                encode_record(w.record),
                encode_event(w.event) if w.event is not None else None,
            )
            for w in writes
        ]
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("DELETE FROM outbox WHERE id = ?", ((a,) for a in acks))
            heads = self._heads(conn, [w.key for w in writes])
            verdicts = plan(writes, heads)
            results: list[Stored | None] = []
            for write, verdict, (record, event) in zip(writes, verdicts, encoded, strict=True):
                if verdict is Verdict.CONFLICT:
                    results.append(self._stored(conn, write.key))
                    continue
                if verdict is Verdict.APPLY:
                    self._apply(conn, write, record, event)
                results.append(None)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return results

    def _heads(self, conn: sqlite3.Connection, keys: Sequence[str]) -> dict[str, Head]:
        heads: dict[str, Head] = {}
        for chunk in _chunks(list(dict.fromkeys(keys))):
            marks = ",".join("?" * len(chunk))
            for key, version, event in conn.execute(
                f"SELECT key, version, event FROM targets WHERE key IN ({marks})",  # noqa: S608
                chunk,
            ):
                heads[key] = (version, event)
        return heads

    def _apply(
        self, conn: sqlite3.Connection, write: Write, record: str, event: str | None
    ) -> None:
        event_id = write.event.id if write.event is not None else None
        conn.execute(
            "INSERT INTO targets (key, version, event, record) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET version = excluded.version,"
            " event = excluded.event, record = excluded.record",
            (write.key, write.version + 1, event_id, record),
        )
        if event is not None:
            conn.execute(
                "INSERT OR IGNORE INTO outbox (id, key, event) VALUES (?, ?, ?)",
                (event_id, write.key, event),
            )

    def _stored(self, conn: sqlite3.Connection, key: str) -> Stored:
        (record,) = conn.execute("SELECT record FROM targets WHERE key = ?", (key,)).fetchone()
        return Stored(record=decode_record(record))
