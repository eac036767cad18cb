"""``/cctray.xml``: the CCTray feed of the board, by the command's own pure functions
(:func:`pipestatus.cli.cctray.cctray_project`, :func:`~pipestatus.cli.cctray.render_cctray`),
optionally narrowed with ``?account=NAME`` and ``?name=GLOB`` (each may be repeated; a pipeline
is kept when it matches one value of every filter given)."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from datetime import datetime

from pipestatus.cli.cctray import cctray_project, render_cctray
from pipestatus.serve.board import Board, Entry

__all__ = ["render_feed", "select"]


def select(entries: Sequence[Entry], accounts: Sequence[str], names: Sequence[str]) -> list[Entry]:
    """The entries of one of ``accounts`` (empty: any) whose name matches one of the
    ``names`` globs (empty: any), in file order."""
    kept = []
    for entry in entries:
        if accounts and entry.item.account not in accounts:
            continue
        if names and not any(fnmatch.fnmatchcase(entry.item.label, n) for n in names):
            continue
        kept.append(entry)
    return kept


def render_feed(
    board: Board, now: datetime, accounts: Sequence[str] = (), names: Sequence[str] = ()
) -> str:
    """The feed of the board's pipelines that the filters keep."""
    return render_cctray(
        cctray_project(e.item, e.outcome, e.last_finished, e.read_at or now)
        for e in select(board.entries, accounts, names)
    )
