"""Following pipelines: a watch over the client, until a duration ends (or forever)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeAlias

from pipestatus.cli.config import Followed
from pipestatus.client import Client
from pipestatus.errors import PipestatusError
from pipestatus.model import Change, Run, Target
from pipestatus.watch.records import Publisher, Store

__all__ = ["follow"]

Outcome: TypeAlias = Run | PipestatusError


async def follow(
    client: Client,
    followed: Sequence[Followed],
    *,
    interval: float,
    duration: float | None,
    on_change: Callable[[Followed, Change], None],
    first_round: Callable[[dict[Target, Outcome]], Awaitable[list[str]]] | None = None,
    idle_interval: float | None = None,
    store: Store | None = None,
    publish: Publisher | None = None,
) -> list[str]:
    """Watch until ``duration`` ends (or forever), handing each change to ``on_change``; after
    each target's first observation, ``first_round`` may return problems, which end the watch
    and are returned. ``store`` and ``publish``: see ``Client.watch``."""
    by_target = {item.target: item for item in followed}
    first: dict[Target, Outcome] = {}
    watcher = client.watcher(
        by_target,
        interval=interval,
        idle_interval=idle_interval,
        errors=True,
        store=store,
        publish=publish,
    )
    async with watcher:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration):
                async for change in watcher:
                    on_change(by_target[change.target], change)
                    if first_round is not None and change.target not in first:
                        first[change.target] = change.current
                        if len(first) == len(by_target):
                            problems = await first_round(first)
                            if problems:
                                return problems
    return []
