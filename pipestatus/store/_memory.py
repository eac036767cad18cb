"""The in-memory store: the protocol with nothing durable behind it."""

from __future__ import annotations

from collections.abc import Sequence

from pipestatus.store._cas import Head, Verdict, plan
from pipestatus.watch.codec import decode_event, decode_record, encode_event, encode_record
from pipestatus.watch.records import Destination, Stored, Write

__all__ = ["MemoryStore"]


class MemoryStore:
    """A state store in this process's memory: it lasts as long as the object. Hand one to
    successive watches in one process and each goes on where the last one stopped (a watch
    without ``store=`` keeps its memory to itself and forgets it when it ends).

    Records and events are kept as the JSON the durable stores write, so a watch on it behaves
    exactly as on them.
    """

    def __init__(self) -> None:
        self._records: dict[str, tuple[Head, str]] = {}  # key -> ((version, event), record)
        self._outbox: dict[str, tuple[str, str]] = {}  # event ID -> (key, event), in order
        self._opened = 0

    def __repr__(self) -> str:
        return f"MemoryStore(targets={len(self._records)}, pending={len(self._outbox)})"

    async def __aenter__(self) -> MemoryStore:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def open(self) -> None:
        self._opened += 1

    async def aclose(self) -> None:
        self._opened = max(0, self._opened - 1)

    async def load(self, keys: Sequence[str]) -> dict[str, Stored]:
        wanted = set(keys)
        pending: dict[str, list[str]] = {}
        for key, event in self._outbox.values():
            if key in wanted:
                pending.setdefault(key, []).append(event)
        return {
            key: Stored(
                record=decode_record(self._records[key][1]),
                pending=tuple(decode_event(event) for event in pending.get(key, ())),
            )
            for key in keys
            if key in self._records
        }

    async def commit(
        self,
        writes: Sequence[Write],
        *,
        acks: Sequence[str] = (),
        publish: Destination | None = None,
    ) -> list[Stored | None]:
        if publish is not None:
            raise ValueError(
                "MemoryStore cannot publish: a stream needs the RedisStore of its server"
            )
        for event_id in acks:
            self._outbox.pop(event_id, None)
        heads = {w.key: self._records[w.key][0] for w in writes if w.key in self._records}
        results: list[Stored | None] = []
        for write, verdict in zip(writes, plan(writes, heads), strict=True):
            if verdict is Verdict.CONFLICT:
                results.append(Stored(record=decode_record(self._records[write.key][1])))
                continue
            if verdict is Verdict.APPLY:
                event = write.event
                head = (write.version + 1, event.id if event is not None else None)
                self._records[write.key] = (head, encode_record(write.record))
                if event is not None:
                    self._outbox[event.id] = (write.key, encode_event(event))
            results.append(None)
        return results
