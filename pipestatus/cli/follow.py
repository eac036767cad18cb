"""Following pipelines: a watch over the client until a duration ends (or forever), whose
changes are cleaned on the way in (:mod:`pipestatus.cli.safe`), and the health of each account
while it runs.

A long-running command starts and keeps going when some accounts are down, refused or hang:
their pipelines are changes of kind ``error`` like any other (shown as unreadable) and the watch
retries them on its own backoff. :class:`Health` says once when an account becomes unusable
(its endpoint cannot be reached, its token is refused) and once when it reads again. With
``--strict``, the first round's problems end the watch instead (``first_round``), as in 0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeAlias

import attrs

from pipestatus.cli.config import Config, Followed, setup_problems
from pipestatus.cli.safe import clean, clean_change
from pipestatus.client import Client
from pipestatus.errors import AuthError, PipestatusError, TransportError
from pipestatus.model import Change, ChangeKind, Run, Scope, Target
from pipestatus.vendors import REGISTRY
from pipestatus.watch import Watcher
from pipestatus.watch.records import Publisher, Store

__all__ = ["Health", "follow"]

Outcome: TypeAlias = Run | PipestatusError


class Health:
    """Tells ``say`` once when an account's every pipeline fails the way a misconfigured
    account does (see :func:`~pipestatus.cli.config.setup_problems`), and once when it reads
    again. Each observation costs the same whatever the account's size: it keeps, per account,
    how many of its pipelines were read and how many of those failed each such way, and looks
    at the account as a whole only when that verdict flips."""

    def __init__(
        self, config: Config, followed: Sequence[Followed], say: Callable[[str], None]
    ) -> None:
        self.config = config
        self.say = say
        self.latest: dict[Target, Outcome] = {}
        self.unusable: set[str] = set()
        self._accounts: dict[str, list[Followed]] = {}
        self._kinds: dict[Target, str] = {}  # the kind of failure last seen, or "other"
        self._counts: dict[str, dict[str, int]] = {}  # account -> kind -> pipelines
        for item in followed:
            self._accounts.setdefault(item.account, []).append(item)

    def observe(self, item: Followed, outcome: Outcome) -> None:
        if item.target not in self.latest:  # found in a scope as the watch runs
            mine = self._accounts.setdefault(item.account, [])
            if item not in mine:
                mine.append(item)
        self.latest[item.target] = outcome
        kind = _failure_kind(outcome)
        counts = self._counts.setdefault(item.account, {})
        before = self._kinds.get(item.target)
        if before is not None:
            counts[before] -= 1
        counts[kind] = counts.get(kind, 0) + 1
        self._kinds[item.target] = kind
        mine = self._accounts.get(item.account, [])
        if sum(counts.values()) < len(mine):
            return  # not every pipeline of the account was read yet
        broken = any(counts.get(k, 0) == len(mine) for k in ("transport", "auth"))
        if broken and item.account not in self.unusable:
            self.unusable.add(item.account)
            for problem in setup_problems(self.config, mine, self.latest):
                self.say(f"{problem}; retrying")
        elif not broken and item.account in self.unusable:
            self.unusable.discard(item.account)
            self.say(f"{self.config.source}: accounts.{item.account}: readable again")

    def forget(self, item: Followed) -> None:
        """``item`` left its scope: it no longer counts for its account."""
        mine = self._accounts.get(item.account, [])
        if item in mine:
            mine.remove(item)
        self.latest.pop(item.target, None)
        kind = self._kinds.pop(item.target, None)
        if kind is not None:
            self._counts[item.account][kind] -= 1


def _failure_kind(outcome: Outcome) -> str:
    """How :func:`~pipestatus.cli.config.setup_problems` sees one outcome."""
    if isinstance(outcome, TransportError):
        return "transport"
    if isinstance(outcome, AuthError):
        return "auth"
    return "other"


async def follow(
    client: Client,
    followed: Sequence[Followed],
    *,
    interval: float,
    duration: float | None,
    on_change: Callable[[Followed, Change], None],
    first_round: Callable[[dict[Target, Outcome]], Awaitable[list[str]]] | None = None,
    idle_interval: float | None = None,
    scopes: Mapping[Scope, Followed] | None = None,
    on_start: Callable[[Watcher], None] | None = None,
    store: Store | None = None,
    publish: Publisher | None = None,
    on_resume: Callable[[Followed, Change], None] | None = None,
) -> list[str]:
    """Watch until ``duration`` ends (or forever), handing each change, cleaned, to
    ``on_change``; once every target was observed, ``first_round`` may return problems, which
    end the watch and are returned.

    ``scopes`` (from :func:`~pipestatus.cli.config.account_scopes`) are watched too: a
    pipeline that appears in one is followed as ``account/id``, one that leaves yields its
    ``removed`` change, and a scope whose listing fails is reported under its account.
    ``on_start`` is handed the watcher before it polls (a service asks it which targets are
    overdue). ``store`` and ``publish``: see :meth:`~pipestatus.client.Client.watch`; with a
    store, ``on_resume`` is handed each pipeline's remembered observation, cleaned, as a change
    of kind ``first`` that was not seen now (a dashboard shows it; nothing is announced)."""
    by_target: dict[Target, Followed] = {item.target: item for item in followed}
    initial = set(by_target)
    scopes = scopes or {}
    by_source: dict[object, Followed] = {scope.source: item for scope, item in scopes.items()}
    for scope, account in scopes.items():  # a scope's own change (its listing failed) shows
        by_target[scope] = account  # as its account
    first: dict[Target, Outcome] = {}
    # A pipeline found by listing its account is watched through the account's scope (so it
    # is removed when it leaves), unless that scope is not watched.
    watched = [
        target
        for target, item in by_target.items()
        if not (item.found and target.source in by_source)
    ]
    watcher = client.watcher(
        watched,
        interval=interval,
        idle_interval=idle_interval,
        errors=True,
        store=store,
        publish=publish,
    )
    if on_resume is not None:

        def resumed(target: Target, outcome: Outcome) -> None:
            item = by_target.get(target)
            if item is None:
                item = by_target[target] = _appeared(target, by_source)
            change = Change(target=target, previous=None, current=outcome, kind=ChangeKind.FIRST)
            on_resume(item, clean_change(change))

        watcher.on_resume = resumed
    if on_start is not None:
        on_start(watcher)
    async with watcher:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration):
                async for change in watcher:
                    change = clean_change(change)
                    item = by_target.get(change.target)
                    if item is None:
                        item = by_target[change.target] = _appeared(change.target, by_source)
                    on_change(item, change)
                    if first_round is not None and change.target in initial - first.keys():
                        first[change.target] = change.current
                        if len(first) == len(initial):
                            problems = await first_round(first)
                            if problems:
                                return problems
    return []


def _appeared(target: Target, by_source: Mapping[object, Followed]) -> Followed:
    """A pipeline a watched scope found after the start: named ``account/id``."""
    account = by_source[target.source]
    ids = tuple(clean(value) for value in target.ids)
    names = REGISTRY[account.vendor].id_names
    return attrs.evolve(
        account,
        label=f"{account.account}/{'/'.join(ids)}",
        ids=tuple(zip(names, ids, strict=True)),
        target=target,
    )
