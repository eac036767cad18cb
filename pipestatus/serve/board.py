"""The board: what the service knows of every followed pipeline, the one state behind the page,
the events, the metrics, the feed and the API.

The watch hands it each change (:meth:`Board.observe`, already cleaned by
:func:`pipestatus.cli.follow.follow`); it keeps the latest outcome of each pipeline, the last
finished run seen, the accounts that cannot be used (:class:`~pipestatus.cli.follow.Health`)
and tells its listeners which pipeline changed. :func:`row_of` turns one entry into the plain
record the page draws and the events carry (every value a string, a number, a bool or ``None``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TypeAlias
from urllib.parse import urlsplit

import attrs

from pipestatus.cli.config import Config, Followed
from pipestatus.cli.follow import Health
from pipestatus.cli.render import make_row
from pipestatus.cli.text import ORDER, iso, page_of
from pipestatus.errors import PipestatusError
from pipestatus.model import Change, ChangeKind, Run, Scope, Target
from pipestatus.watch import Watcher

__all__ = ["Board", "Entry", "Row", "row_of", "safe_href"]

logger = logging.getLogger("pipestatus.serve")

Outcome: TypeAlias = Run | PipestatusError
Row: TypeAlias = dict[str, Any]

#: The group of a pipeline without tags, when the page groups by tag.
UNTAGGED: Final = "untagged"


def safe_href(url: str | None) -> str | None:
    """``url`` when it is an http(s) address a link may point to, else ``None`` (a vendor's
    ``javascript:`` URL must never become a link, escaped or not)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


@attrs.define
class Entry:
    """One followed pipeline on the board: its key on the page (``p0``, ``p1``, ... in file
    order: never a vendor string), what was seen last, the last finished run seen, and when."""

    key: str
    item: Followed
    outcome: Outcome | None = None
    last_finished: Run | None = None
    read_at: datetime | None = None
    removed: bool = False  # it left its scope: the page drops its row


def row_of(entry: Entry, now: datetime, *, stale: bool = False) -> Row:
    """The record of one pipeline for the page and its events."""
    row = make_row(entry.item, entry.outcome, now)
    run = entry.outcome if isinstance(entry.outcome, Run) else None
    when = None
    if run is not None:
        when = run.finished_at or run.started_at
    finished = entry.last_finished
    page = (page_of(run) if run else None) or entry.item.page
    return {
        "key": entry.key,
        "name": entry.item.label,
        "account": entry.item.account,
        "vendor": entry.item.vendor,
        "tags": list(entry.item.tags),
        "status": row.word,
        "raw_status": run.raw_status if run else None,
        "rank": ORDER.get(row.word, 0),
        "stage": row.cells["stage"],
        "run": row.cells["run"],
        "branch": row.cells["branch"],
        "duration": row.cells["duration"],
        "when": iso(when),
        "last_finished": finished.status.value if finished is not None else None,
        "url": safe_href(page),
        "problem": row.cells["problem"],
        "stale": stale,
        "removed": entry.removed,
    }


class Board:
    """Every followed pipeline's latest observation; listeners hear each entry that changed.
    The watch runs while :attr:`running` is true (``/healthz``)."""

    def __init__(
        self,
        config: Config,
        followed: Sequence[Followed],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        grace: float = 60.0,
    ) -> None:
        self.config = config
        self.clock = clock
        self.grace = grace  # seconds past its due time before a pipeline is stale
        self.entries = [Entry(key=f"p{n}", item=item) for n, item in enumerate(followed)]
        self.by_target: dict[Target, Entry] = {e.item.target: e for e in self.entries}
        self.by_key: dict[str, Entry] = {e.key: e for e in self.entries}
        self._next = len(self.entries)  # keys are never reused: a page may still show one
        self.health = Health(config, followed, self._account_note)
        self.watcher: Watcher | None = None
        self.running = False
        self.started_at = clock()
        self.changes = 0
        self._listeners: list[Callable[[Entry], None]] = []

    # --- the watch's side ---------------------------------------------------------------------

    def attach(self, watcher: Watcher) -> None:
        """The watch has started with ``watcher`` (asked which targets are overdue)."""
        self.watcher = watcher
        self.running = True

    def observe(self, item: Followed, change: Change) -> None:
        """Take one (cleaned) change in, and tell every listener. A pipeline that appears in a
        watched scope gets an entry; one that leaves it (``removed``) loses its entry, and the
        listeners hear it once more, marked removed. A scope's own error (its listing failed)
        is its account's business (:attr:`health`), not an entry."""
        entry = self.by_target.get(change.target)
        if isinstance(change.target, Scope):
            return
        if change.kind is ChangeKind.REMOVED:
            if entry is not None:
                self._drop(entry)
            return
        if entry is None:
            entry = Entry(key=f"p{self._next}", item=item)
            self._next += 1
            self.entries.append(entry)
            self.by_target[change.target] = entry
            self.by_key[entry.key] = entry
        entry.outcome = change.current
        entry.read_at = self.clock()
        if isinstance(change.current, Run) and change.current.status.is_terminal:
            entry.last_finished = change.current
        self.health.observe(item, change.current)
        self.changes += 1
        for listener in list(self._listeners):
            listener(entry)

    def _drop(self, entry: Entry) -> None:
        self.entries.remove(entry)
        del self.by_target[entry.item.target]
        del self.by_key[entry.key]
        self.health.forget(entry.item)
        entry.removed = True
        self.changes += 1
        for listener in list(self._listeners):
            listener(entry)

    def _account_note(self, text: str) -> None:
        logger.warning("%s", text)

    # --- the readers' side --------------------------------------------------------------------

    def listen(self, listener: Callable[[Entry], None]) -> Callable[[], None]:
        """Call ``listener`` with each entry that changes; returns the function that stops it."""
        self._listeners.append(listener)

        def stop() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return stop

    def stale(self) -> frozenset[Target]:
        """The pipelines whose poll is overdue by more than :attr:`grace` seconds."""
        if self.watcher is None or not self.running:
            return frozenset()
        return self.watcher.overdue(self.grace)

    def stale_keys(self) -> list[str]:
        stale = self.stale()
        return [entry.key for entry in self.entries if entry.item.target in stale]

    def accounts_down(self) -> list[str]:
        """The accounts none of whose pipelines can be read (unreachable, token refused)."""
        return sorted(self.health.unusable)

    def rows(self, now: datetime | None = None) -> list[Row]:
        """Every pipeline's record, in file order."""
        now = now or self.clock()
        stale = self.stale()
        return [row_of(e, now, stale=e.item.target in stale) for e in self.entries]

    def groups(self, by: str, now: datetime | None = None) -> list[tuple[str, list[Row]]]:
        """The rows grouped by account (or by tag: a pipeline is in the group of each of its
        tags), failing first within a group, and the groups with the worst first."""
        grouped: dict[str, list[Row]] = {}
        for row in self.rows(now):
            names = [row["account"]] if by == "account" else (row["tags"] or [UNTAGGED])
            for name in names:
                grouped.setdefault(name, []).append(row)
        out = []
        for name, rows in grouped.items():
            ranked = sorted(enumerate(rows), key=lambda pair: (pair[1]["rank"], pair[0]))
            out.append((name, [row for _, row in ranked]))
        out.sort(key=lambda group: min(row["rank"] for row in group[1]))
        return out

    def counts(self) -> dict[str, int]:
        """How many pipelines show each status word."""
        found: dict[str, int] = {}
        for row in self.rows():
            found[row["status"]] = found.get(row["status"], 0) + 1
        return found
