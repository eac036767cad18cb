"""Server-sent events for the page (``/events``), as pure functions and one subscriber class.

Two kinds of event, each a JSON object on one ``data:`` line (JSON written with
``ensure_ascii``, so the stream is plain ASCII whatever a vendor sent):

* ``row``: one pipeline's record (:func:`pipestatus.serve.board.row_of`), sent when it
  changes, and for every pipeline when a page connects (so it catches up with what changed
  since it was rendered);
* ``tick``: the heartbeat, every ``heartbeat`` seconds: the time, the keys of the pipelines
  whose poll is overdue, the accounts that cannot be used and the sinks that keep failing.
  A page that has heard no tick for a while says its data is stale.

A :class:`Subscriber` coalesces: a pipeline that changes ten times before the stream is
written is sent once, as it is then, so a slow page never holds the watch back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from pipestatus.serve.api import dumps
from pipestatus.serve.board import Board, Entry

__all__ = ["Subscriber", "format_event"]


def format_event(event: str, data: Mapping[str, Any], event_id: int | None = None) -> bytes:
    """One event in the ``text/event-stream`` format."""
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    head = "".join(line + "\n" for line in lines).encode("ascii")
    return head + b"data: " + dumps(data, ascii_only=True) + b"\n\n"


class Subscriber:
    """One connected page: the keys of the pipelines that changed since it was last written
    to, and an event that wakes its writer."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.pending: dict[str, None] = {e.key: None for e in board.entries}  # all, at first
        self.wake = asyncio.Event()
        self.wake.set()
        self._stop = board.listen(self._changed)

    def _changed(self, entry: Entry) -> None:
        self.pending[entry.key] = None
        self.wake.set()

    def take(self) -> list[str]:
        """The keys changed since the last call, in the order they changed."""
        keys = list(self.pending)
        self.pending.clear()
        self.wake.clear()
        return keys

    def close(self) -> None:
        self._stop()
