"""Changes on a Redis Stream: appended by watches (``watch(..., publish=stream)``, in the
store's own transaction), read by consumer groups so each change reaches each group once.

An entry carries two fields: ``id`` (the change's stable ID, see
:func:`pipestatus.watch.records.event_id`) and ``change`` (the event as JSON, see
:mod:`pipestatus.watch.codec`). :meth:`RedisStream.consume` reads as one consumer of a group:

1. it creates the group if it is missing (``XGROUP CREATE ... MKSTREAM``, from ``start``);
2. it delivers again what this consumer name was given before and never acknowledged (a
   consumer restarted under the same name loses nothing);
3. every ``claim_idle / 2`` seconds it claims what other consumers of the group were given and
   left unacknowledged for ``claim_idle`` seconds (``XAUTOCLAIM``: a consumer that died
   mid-batch loses nothing either);
4. otherwise it waits for new entries (``XREADGROUP ... BLOCK``).

Each :class:`StreamEvent` must be acknowledged (``await event.ack()``) once handled; one that is
not is delivered again. When Redis is unreachable, consuming waits and tries again with
backoff, saying so once; a group that vanished (a Redis restarted without persistence) is
created again from the stream's start. Entries trimmed away before they were read, and entries
that are not pipestatus's, are acknowledged and skipped with a warning.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any, Final

import attrs

from pipestatus.errors import StoreUnavailableError
from pipestatus.model import Change
from pipestatus.store._redisio import Connection, Refused
from pipestatus.watch.codec import CodecError, decode_event
from pipestatus.watch.durable import Outage
from pipestatus.watch.keys import target_of
from pipestatus.watch.records import Destination, Store

__all__ = ["DEFAULT_STREAM", "RedisStream", "StreamEvent"]

logger = logging.getLogger("pipestatus.stream")

#: The stream a watch publishes to unless told otherwise.
DEFAULT_STREAM: Final = "pipestatus:changes"


@attrs.define(kw_only=True)
class StreamEvent:
    """One change read from the stream: ``id`` is the change's stable ID, ``stream_id`` the
    entry's ID in the stream, ``key`` the target's key, ``change`` the change itself (its
    target rebuilt from the key: it describes the pipeline and cannot be polled), ``at`` when
    the watch saw it."""

    id: str
    stream_id: str
    key: str
    change: Change
    at: datetime
    _stream: RedisStream = attrs.field(repr=False, alias="stream")
    _group: str = attrs.field(repr=False, alias="group")

    async def ack(self) -> None:
        """Done with it: it is not delivered to this group again. A ``StoreUnavailableError``
        means Redis did not take the acknowledgement (the change may come again)."""
        await self._stream._conn.call("XACK", self._stream.stream, self._group, self.stream_id)


class RedisStream:
    """The Redis Stream ``stream`` on the server at ``url``, trimmed to about ``maxlen``
    entries (a group that falls further behind than that loses the oldest ones).

    ``watch(..., publish=stream)`` appends each change in the same transaction as the state
    advance, so it needs the state on the same server (by default a ``RedisStore(url)``).
    ``consume(group=..., consumer=...)`` reads the changes as one consumer of a group. Needs
    the ``redis`` package (``pip install 'pipestatus[redis]'``).
    """

    def __init__(
        self,
        url: str,
        *,
        stream: str = DEFAULT_STREAM,
        maxlen: int = 100_000,
        timeout: float = 5.0,
    ) -> None:
        if not stream:
            raise ValueError("stream must not be empty")
        if isinstance(maxlen, bool) or maxlen < 1:
            raise ValueError("maxlen must be a positive integer")
        self._conn = Connection(url, timeout=timeout, what="RedisStream")
        self.stream = stream
        self.maxlen = maxlen

    def __repr__(self) -> str:
        return f"RedisStream({self._conn.safe!r}, stream={self.stream!r})"

    # --- publishing (what a watch asks) ---------------------------------------------------------

    @property
    def destination(self) -> Destination:
        return Destination(server=self._conn.server, stream=self.stream, maxlen=self.maxlen)

    def state_store(self) -> Store:
        from pipestatus.store._redis import RedisStore

        return RedisStore(self._conn.url)

    def check(self, store: Store) -> None:
        from pipestatus.store._redis import RedisStore

        if not isinstance(store, RedisStore) or store.server != self._conn.server:
            raise ValueError(
                f"publish={self!r} needs store=RedisStore(...) on the same Redis server "
                f"({self._conn.server}), so the state advance and the append are one "
                f"transaction; got store={store!r}"
            )

    # --- reading --------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the connection (a later call opens it again)."""
        await self._conn.aclose()

    async def entries(self) -> list[tuple[str, str]]:
        """Every entry the stream holds, oldest first, as ``(stream ID, change ID)``: to check
        what was published."""
        reply = await self._conn.call("XRANGE", self.stream, "-", "+")
        return [(entry_id, str(_fields(fields).get("id"))) for entry_id, fields in reply or ()]

    async def consume(
        self,
        group: str,
        consumer: str,
        *,
        start: str = "$",
        count: int = 100,
        block: float = 1.0,
        claim_idle: float = 30.0,
        retry_max: float = 5.0,
    ) -> AsyncGenerator[StreamEvent, None]:
        """The group's changes as ``consumer``, forever (see the module docstring).

        ``start``: where a new group begins, ``"$"`` (only what comes next) or ``"0"``
        (everything the stream still holds). ``count``: entries per read; ``block``: seconds a
        read waits for new ones; ``claim_idle``: seconds after which another consumer's
        unacknowledged entries are taken over; ``retry_max``: the longest wait between
        attempts while Redis is unreachable.
        """
        if not group or not consumer:
            raise ValueError("group and consumer must not be empty")
        loop = asyncio.get_running_loop()
        outage = Outage(
            f"event stream {self!r}", "reading waits and tries again", "reading goes on"
        )
        rng = random.Random()  # noqa: S311 - retry jitter
        failures = 0
        ready = False  # the group is known to exist
        backlog = True  # this consumer's own unacknowledged entries come first
        next_claim = loop.time()
        while True:
            try:
                if not ready:
                    await self._create(group, start)
                    ready = True
                if backlog:
                    batch = await self._read(group, consumer, "0", count, None)
                    backlog = bool(batch)
                elif loop.time() >= next_claim:
                    batch = await self._claim(group, consumer, claim_idle, count)
                    next_claim = loop.time() + claim_idle / 2
                else:
                    batch = await self._read(group, consumer, ">", count, block)
            except StoreUnavailableError as exc:
                outage.failed(exc)
                failures += 1
                ceiling = min(retry_max, 0.1 * 2 ** min(failures - 1, 16))
                await asyncio.sleep(rng.uniform(ceiling / 2, ceiling))
                continue
            failures = 0
            outage.recovered()
            if batch is None:  # the group vanished: make it again, from the stream's start
                logger.warning("%r: group %r is gone; creating it again", self, group)
                ready, start, backlog = False, "0", True
                continue
            for entry_id, fields in batch:
                event = await self._event(group, entry_id, fields)
                if event is not None:
                    yield event

    async def _create(self, group: str, start: str) -> None:
        await self._conn.call(
            "XGROUP", "CREATE", self.stream, group, start, "MKSTREAM", refused=("BUSYGROUP",)
        )

    async def _read(
        self, group: str, consumer: str, since: str, count: int, block: float | None
    ) -> list[tuple[str, Any]] | None:
        args: list[object] = ["XREADGROUP", "GROUP", group, consumer, "COUNT", count]
        if block is not None:
            args += ["BLOCK", max(1, int(block * 1000))]
        reply = await self._conn.call(*args, "STREAMS", self.stream, since, refused=("NOGROUP",))
        if isinstance(reply, Refused):
            return None
        return _entries(reply)

    async def _claim(
        self, group: str, consumer: str, idle: float, count: int
    ) -> list[tuple[str, Any]] | None:
        claimed: list[tuple[str, Any]] = []
        cursor = "0-0"
        while True:
            reply = await self._conn.call(
                "XAUTOCLAIM",
                self.stream,
                group,
                consumer,
                max(0, int(idle * 1000)),
                cursor,
                "COUNT",
                count,
                refused=("NOGROUP",),
            )
            if isinstance(reply, Refused):
                return None
            cursor, entries = str(reply[0]), reply[1]
            claimed += [(str(entry_id), fields) for entry_id, fields in entries or ()]
            if len(reply) > 2 and reply[2]:
                logger.warning(
                    "%r: %d entries of group %r were trimmed before they were acknowledged",
                    self,
                    len(reply[2]),
                    group,
                )
            if cursor == "0-0" or len(claimed) >= count:
                return claimed

    async def _event(self, group: str, entry_id: str, fields: Any) -> StreamEvent | None:
        values = _fields(fields)
        try:
            if not values:
                raise CodecError("trimmed away before it was read")
            event = decode_event(str(values.get("change", "")))
            target = target_of(event.key)
        except CodecError as exc:
            logger.warning("%r: entry %s skipped: %s", self, entry_id, exc)
            await self._conn.call("XACK", self.stream, group, entry_id)
            return None
        change = Change(
            target=target, previous=event.previous, current=event.current, kind=event.kind
        )
        return StreamEvent(
            id=event.id,
            stream_id=entry_id,
            key=event.key,
            change=change,
            at=event.at,
            stream=self,
            group=group,
        )


def _fields(fields: Any) -> dict[str, Any]:
    """An entry's fields, whether the client gave a mapping or a flat list."""
    if isinstance(fields, dict):
        return fields
    if isinstance(fields, list | tuple):
        return dict(zip(fields[::2], fields[1::2], strict=False))
    return {}


def _entries(reply: Any) -> list[tuple[str, Any]]:
    """The entries of an ``XREADGROUP`` reply (a list of ``[stream, entries]`` or a mapping)."""
    if not reply:
        return []
    streams = reply.items() if isinstance(reply, dict) else reply
    out: list[tuple[str, Any]] = []
    for _, entries in streams:
        out += [(str(entry_id), fields) for entry_id, fields in entries or ()]
    return out
