"""Compare and set, as the stores without a server-side script decide it (the Redis store does
the same in Lua). Pure."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

from pipestatus.watch.records import Write

__all__ = ["Head", "Verdict", "plan"]

#: What decides a write: the stored version of its key and the ID of the event that made it.
Head = tuple[int, str | None]


class Verdict(enum.Enum):
    APPLY = "apply"  # the stored version is the one the write replaces (or nothing is stored)
    ALREADY = "already"  # this very write is stored already (a retry after a lost answer)
    CONFLICT = "conflict"  # another writer advanced the key first


def plan(writes: Sequence[Write], heads: Mapping[str, Head]) -> list[Verdict]:
    """Each write's verdict, in order; a write after a conflict on its key is a conflict too
    (it follows one that was refused)."""
    current = dict(heads)
    refused: set[str] = set()
    verdicts: list[Verdict] = []
    for write in writes:
        key = write.key
        head = current.get(key)
        event = write.event.id if write.event is not None else None
        if key in refused:
            verdict = Verdict.CONFLICT
        elif head is not None and head == (write.version + 1, event):
            verdict = Verdict.ALREADY
        elif head is not None and head[0] != write.version:
            verdict = Verdict.CONFLICT
            refused.add(key)
        else:
            verdict = Verdict.APPLY
            current[key] = (write.version + 1, event)
        verdicts.append(verdict)
    return verdicts
