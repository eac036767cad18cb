"""The command's door to the library: the followed pipelines, one poll of them, and one run,
each cleaned on the way in (:mod:`pipestatus.cli.safe`), and the choice of pipelines by name.

:func:`fetch_run` is the one place ``view`` and ``wait`` read a run: the latest run through the
client's poll, then its detail where the vendor's status has stages only (``adapter.detail``).
"""

from __future__ import annotations

import asyncio
import difflib
import fnmatch
import logging
from collections.abc import Mapping, Sequence
from typing import TypeAlias

import attrs

from pipestatus.cli.config import (
    Config,
    ConfigError,
    Followed,
    Secret,
    account_adapters,
    discover_targets,
    follow_targets,
)
from pipestatus.cli.progress import Meter
from pipestatus.cli.safe import clean, clean_outcome
from pipestatus.client import Client
from pipestatus.errors import PipestatusError
from pipestatus.model import Run, Target
from pipestatus.vendors._base import Adapter

logger = logging.getLogger("pipestatus.cli")

__all__ = ["UsageError", "fetch_run", "find", "followed_pipelines", "read_all", "select"]

Outcome: TypeAlias = Run | PipestatusError


class UsageError(ConfigError):
    """The command line asks for something the configuration does not have (exit 2)."""


def _cleaned(item: Followed) -> Followed:
    return attrs.evolve(
        item,
        label=clean(item.label),
        ids=tuple((key, clean(value)) for key, value in item.ids),
        home=clean(item.home),
        page=None if item.page is None else clean(item.page),
        tags=tuple(clean(tag) for tag in item.tags),
    )


async def followed_pipelines(
    client: Client, config: Config, tokens: Mapping[str, Secret]
) -> list[Followed]:
    """The configured pipelines with their targets, their names, IDs and pages cleaned for the
    screen: those named in ``[[pipelines]]`` (no request), then those of accounts with
    ``pipelines = "GLOB"`` (one listing per such account)."""
    made = account_adapters(client, config, tokens)  # one adapter per account for both
    named = follow_targets(client, config, tokens, made=made)
    found = (
        await discover_targets(client, config, tokens, named, made=made) if _globs(config) else []
    )
    return [_cleaned(item) for item in [*named, *found]]


def _globs(config: Config) -> bool:
    return any(account.pipelines is not None for account in config.accounts.values())


async def read_all(
    client: Client, followed: Sequence[Followed], meter: Meter | None = None
) -> dict[Target, Outcome]:
    """Every pipeline's latest run or error, cleaned. Each account is one poll of the client
    (so batching vendors keep their batches), all at once; ``meter`` hears which accounts are
    still being waited for."""
    meter = meter or Meter()
    by_account: dict[str, list[Followed]] = {}
    for item in followed:
        by_account.setdefault(item.account, []).append(item)

    async def one(account: str, items: list[Followed]) -> dict[Target, Outcome]:
        meter.start(account, items[0].home, len(items))
        try:
            return await client.poll(item.target for item in items)
        finally:
            meter.finish(account, len(items))

    async with asyncio.TaskGroup() as tasks:
        running = [tasks.create_task(one(name, items)) for name, items in by_account.items()]
    merged: dict[Target, Outcome] = {}
    for task in running:
        merged.update(task.result())
    return {item.target: clean_outcome(merged[item.target]) for item in followed}


async def fetch_run(client: Client, item: Followed, *, detail: bool = True) -> Outcome:
    """``item``'s run as ``view`` and ``wait`` show it: its latest run (or the error met),
    cleaned; where the vendor's status has no jobs (``adapter.details_on_end``), read in
    detail too (``detail=False``: not), so its jobs show. A detail that cannot be read leaves
    the run as polled."""
    outcome = (await client.poll([item.target]))[item.target]
    source = item.target.source
    if (
        detail
        and isinstance(outcome, Run)
        and isinstance(source, Adapter)
        and source.details_on_end
    ):
        try:
            outcome = await source.detail(outcome)
        except PipestatusError as exc:
            logger.info("%s: no run detail: %s", item.label, exc)
    return clean_outcome(outcome)


def _names(followed: Sequence[Followed]) -> str:
    return ", ".join(item.label for item in followed)


def find(followed: Sequence[Followed], name: str, source: str) -> Followed:
    """The pipeline called ``name`` (its ``name``, or ``account/id``), or a
    :class:`UsageError` naming the close ones."""
    name = clean(name)  # as the labels are
    for item in followed:
        if item.label == name:
            return item
    close = difflib.get_close_matches(name, [item.label for item in followed], n=3)
    hint = f"did you mean {', '.join(close)}?" if close else f"pipelines: {_names(followed)}"
    raise UsageError(f"{source}: no pipeline named {name!r} ({hint})")


def select(followed: Sequence[Followed], patterns: Sequence[str], source: str) -> list[Followed]:
    """The pipelines whose name matches one of ``patterns`` (``fnmatch`` globs; none: all), in
    the file's order; a pattern that matches nothing is a :class:`UsageError`."""
    if not patterns:
        return list(followed)

    patterns = [clean(pattern) for pattern in patterns]  # as the labels are

    def matches(label: str, pattern: str) -> bool:
        return label == pattern or fnmatch.fnmatchcase(label, pattern)

    for pattern in patterns:
        if not any(matches(item.label, pattern) for item in followed):
            find(followed, pattern, source)  # raises, naming the close ones
    return [item for item in followed if any(matches(item.label, p) for p in patterns)]
