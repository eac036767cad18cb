"""State stores: what a watch remembers, kept where a restart finds it again.

    from pipestatus.store import SQLiteStore, RedisStore
    async for change in client.watch(targets, store=SQLiteStore("pipestatus.db")): ...

* :class:`MemoryStore`: in this process's memory (what a watch does without ``store=``, but
  kept by the object, so successive watches in one process share it);
* :class:`SQLiteStore`: one SQLite file, written off the event loop;
* :class:`RedisStore`: one Redis server, shared by a fleet of watchers (needs
  ``pip install 'pipestatus[redis]'``; the redis package is imported only when one is made).

Every store keeps the small protocol of :class:`Store` (see
:mod:`pipestatus.watch.records`): per target a record of the tracker's memory, and the changes
committed but not yet acknowledged. Importing this package is cheap: each name loads on first
use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipestatus.store._memory import MemoryStore
    from pipestatus.store._redis import RedisStore
    from pipestatus.store._sqlite import SQLiteStore
    from pipestatus.watch.records import Event, Record, Shared, Store, Stored, Write

__all__ = [
    "Event",
    "MemoryStore",
    "Record",
    "RedisStore",
    "SQLiteStore",
    "Shared",
    "Store",
    "Stored",
    "Write",
]

_HOMES = {
    "Event": "pipestatus.watch.records",
    "MemoryStore": "pipestatus.store._memory",
    "Record": "pipestatus.watch.records",
    "RedisStore": "pipestatus.store._redis",
    "SQLiteStore": "pipestatus.store._sqlite",
    "Shared": "pipestatus.watch.records",
    "Store": "pipestatus.watch.records",
    "Stored": "pipestatus.watch.records",
    "Write": "pipestatus.watch.records",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'pipestatus.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
