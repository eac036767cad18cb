"""The Redis store: state, outbox and membership of a fleet of watchers on one Redis server.

Keys, under a prefix (``pipestatus`` by default):

``<prefix>:schema``   a string naming this layout (``pipestatus-store/1``): another value is
                      someone else's data, refused
``<prefix>:state``    hash, target key -> record (JSON)
``<prefix>:heads``    hash, target key -> ``"<version> <event ID>"``, what a write compares
``<prefix>:outbox``   hash, event ID -> ``"<target key>\\x1f<event JSON>"``: committed changes
                      the consumer has not acknowledged
``<prefix>:members``  sorted set, member -> when its registration lapses (the server's clock, ms)

A commit is one Lua script, which Redis runs as one transaction: acknowledgements, then each
write compared and set, its event put into the outbox and, with a stream to publish to, appended
to that stream (``XADD ... MAXLEN ~``). A write already applied (same version, same event ID:
a retry after a lost answer, or a second replica that saw the very same change) is counted as
applied and appended nowhere a second time.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Sequence
from typing import Any, Final

from pipestatus.errors import StoreError
from pipestatus.store._redisio import Connection, Script
from pipestatus.watch.codec import (
    CodecError,
    decode_event,
    decode_record,
    encode_event,
    encode_record,
)
from pipestatus.watch.records import Destination, Event, Stored, Write
from pipestatus.watch.replicas import TTL

__all__ = ["LAYOUT", "RedisStore"]

#: The value of ``<prefix>:schema``.
LAYOUT: Final = "pipestatus-store/1"
#: Keys per ``HMGET``.
_CHUNK: Final = 500
#: Separates the target key from the event in an outbox entry (ASCII unit separator).
_SEP: Final = "\x1f"

_COMMIT: Final = Script(
    """
local state, heads, outbox, stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local publish = ARGV[1] == '1'
local maxlen = ARGV[2]
local i = 3
local nacks = tonumber(ARGV[i]); i = i + 1
for _ = 1, nacks do redis.call('HDEL', outbox, ARGV[i]); i = i + 1 end
local n = tonumber(ARGV[i]); i = i + 1
local out, refused = {}, {}
for w = 1, n do
  local key, before, id, record, event = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2],
    ARGV[i + 3], ARGV[i + 4]
  i = i + 5
  local head = redis.call('HGET', heads, key)
  local version, last = nil, ''
  if head then
    local space = string.find(head, ' ', 1, true)
    version = tonumber(string.sub(head, 1, space - 1))
    last = string.sub(head, space + 1)
  end
  if refused[key] then
    out[w] = redis.call('HGET', state, key) or ''
  elseif head and version == before + 1 and last == id then
    out[w] = 1
  elseif head and version ~= before then
    refused[key] = true
    out[w] = redis.call('HGET', state, key) or ''
  else
    redis.call('HSET', state, key, record)
    redis.call('HSET', heads, key, (before + 1) .. ' ' .. id)
    if event ~= '' then
      redis.call('HSET', outbox, id, key .. '\\31' .. event)
      if publish then
        redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'id', id, 'change', event)
      end
    end
    out[w] = 1
  end
end
return out
"""
)

_BEAT: Final = Script(
    """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""
)

#: The kinds each key may hold ("none": not there yet).
_KINDS: Final = {"state": "hash", "heads": "hash", "outbox": "hash", "members": "zset"}


def _member() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class RedisStore:
    """A state store on the Redis server at ``url`` (``redis://host:port/db``; a password in
    the URL never shows in a repr, log line or error), shared by every watcher on it: each is
    a member, registered with an expiring heartbeat, and the targets are split among the live
    members (``heartbeat`` seconds is how soon a dead member's targets are taken over;
    ``None`` turns the sharing off: one watcher, its state in Redis).

    ``prefix`` names its keys (see the module docstring); ``member`` this process among the
    members (default: host, process ID and a random suffix); ``timeout`` bounds each command
    (a slower Redis counts as unavailable: the watch holds its changes back and goes on).
    Needs the ``redis`` package (``pip install 'pipestatus[redis]'``).
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "pipestatus",
        heartbeat: float | None = 10.0,
        member: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        if heartbeat is not None and not heartbeat > 0:
            raise ValueError("heartbeat must be a positive number of seconds (or None)")
        if not prefix:
            raise ValueError("prefix must not be empty")
        self._conn = Connection(url, timeout=timeout, what="RedisStore")
        self.prefix = prefix
        self._heartbeat = heartbeat
        self._member = member or _member()
        self._keys = {name: f"{prefix}:{name}" for name in (*_KINDS, "schema")}
        self._opened = 0
        self._checked = False

    def __repr__(self) -> str:
        return f"RedisStore({self._conn.safe!r}, prefix={self.prefix!r})"

    @property
    def server(self) -> str:
        """Which server this is (see :attr:`pipestatus.store._redisio.Connection.server`)."""
        return self._conn.server

    @property
    def member(self) -> str:
        return self._member

    @property
    def heartbeat(self) -> float | None:
        return self._heartbeat

    async def __aenter__(self) -> RedisStore:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- lifecycle ------------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect and check the keys are this layout's (or not there yet)."""
        self._opened += 1
        if not self._checked:
            try:
                await self._check()
            except BaseException:
                self._opened -= 1
                if not self._opened:
                    await self._conn.aclose()
                raise
            self._checked = True

    async def _check(self) -> None:
        schema = self._keys["schema"]
        await self.call("SET", schema, LAYOUT, "NX")
        found = await self.call("GET", schema)
        if found != LAYOUT:
            raise StoreError(
                f"redis at {self._conn.safe}: {schema} holds {found!r}, not {LAYOUT!r}: the "
                "data of another application or version; pipestatus leaves it as it is"
            )
        for name, kind in _KINDS.items():
            key = self._keys[name]
            found = await self.call("TYPE", key)
            if found not in ("none", kind):
                raise StoreError(
                    f"redis at {self._conn.safe}: {key} is a {found}, not a {kind}: the data "
                    "of another application; pipestatus leaves it as it is"
                )

    async def aclose(self) -> None:
        self._opened = max(0, self._opened - 1)
        if not self._opened:
            self._checked = False
            await self._conn.aclose()

    async def call(self, *args: Any) -> Any:
        """One Redis command (errors translated: see :mod:`pipestatus.store._redisio`)."""
        return await self._conn.call(*args)

    # --- the protocol ---------------------------------------------------------------------------

    async def load(self, keys: Sequence[str]) -> dict[str, Stored]:
        wanted = list(dict.fromkeys(keys))
        records: dict[str, str] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            values = await self.call("HMGET", self._keys["state"], *chunk)
            records.update((k, v) for k, v in zip(chunk, values, strict=True) if v is not None)
        pending: dict[str, list[Event]] = {}
        if records:
            outbox = await self.call("HGETALL", self._keys["outbox"])
            for event_id, value in dict(outbox).items():
                key, _, text = str(value).partition(_SEP)
                if key in records:
                    pending.setdefault(key, []).append(self._decode(event_id, decode_event, text))
        return {
            key: Stored(
                record=self._decode(key, decode_record, text),
                pending=tuple(sorted(pending.get(key, ()), key=lambda e: e.seq)),
            )
            for key, text in records.items()
        }

    def _decode(self, name: str, decode: Any, text: str) -> Any:
        try:
            return decode(text)
        except CodecError as exc:
            problem = f"redis at {self._conn.safe}: {name}: not pipestatus's data ({exc})"
        raise StoreError(problem)

    async def commit(
        self,
        writes: Sequence[Write],
        *,
        acks: Sequence[str] = (),
        publish: Destination | None = None,
    ) -> list[Stored | None]:
        if publish is not None and publish.server != self.server:
            raise ValueError(
                f"cannot publish to {publish.stream} on {publish.server} in a transaction of "
                f"{self.server}: use the RedisStore of the stream's server"
            )
        args: list[object] = ["1" if publish else "0", publish.maxlen if publish else 0]
        args += [len(acks), *acks, len(writes)]
        for write in writes:
            event = write.event
            args += [
                write.key,
                write.version,
                event.id if event is not None else "",
                encode_record(write.record),
                encode_event(event) if event is not None else "",
            ]
        keys = [self._keys["state"], self._keys["heads"], self._keys["outbox"]]
        keys.append(publish.stream if publish else self._keys["outbox"])
        replies = await self._conn.run(_COMMIT, keys, args)
        results: list[Stored | None] = []
        for write, reply in zip(writes, replies, strict=True):
            if reply == 1:
                results.append(None)
            elif isinstance(reply, str) and reply:
                results.append(Stored(record=self._decode(write.key, decode_record, reply)))
            else:
                raise StoreError(
                    f"redis at {self._conn.safe}: {write.key} has a head but no record: "
                    "the keys were changed by someone else"
                )
        return results

    # --- membership -----------------------------------------------------------------------------

    async def beat(self) -> tuple[str, ...]:
        """Renew this member (for ``heartbeat * TTL`` seconds, on the server's clock), drop the
        members whose registration lapsed, and return the live ones, sorted."""
        heartbeat = self._heartbeat or 10.0
        ttl_ms = max(1, int(heartbeat * TTL * 1000))
        members = await self._conn.run(_BEAT, [self._keys["members"]], [self._member, ttl_ms])
        return tuple(sorted(str(member) for member in members))

    async def leave(self) -> None:
        await self.call("ZREM", self._keys["members"], self._member)
