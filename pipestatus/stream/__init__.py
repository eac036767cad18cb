"""Event streams: each change a watch yields, published for fleets of consumers.

    from pipestatus.stream import RedisStream
    stream = RedisStream("redis://127.0.0.1:6379/0", stream="pipestatus:changes")
    async for change in client.watch(targets, store=RedisStore(url), publish=stream): ...
    async for event in stream.consume(group="bots", consumer="bot-1"):  # each change once per group
        event.id, event.change
        await event.ack()

Needs the ``redis`` package (``pip install 'pipestatus[redis]'``), imported only when a stream
is made. Importing this package is cheap: each name loads on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipestatus.stream._redis import DEFAULT_STREAM, RedisStream, StreamEvent

__all__ = ["DEFAULT_STREAM", "RedisStream", "StreamEvent"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'pipestatus.stream' has no attribute {name!r}")
    value = getattr(importlib.import_module("pipestatus.stream._redis"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
