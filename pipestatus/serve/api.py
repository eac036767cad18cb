"""``/api/v1/runs`` and ``/healthz``: JSON documents of the board, as pure functions.

``/api/v1/runs`` holds every pipeline's record, that of ``pipestatus status --json``
(:func:`pipestatus.cli.records.pipeline_record`), with its page key, tags and whether its poll
is overdue (``stale``). ``/healthz`` says whether the watch runs (the service answers it with 200,
or 503 once the watch has stopped), how many pipelines are followed and overdue, and which
accounts cannot be used. Every string was cleaned on the way in, so the documents are valid
JSON in valid UTF-8.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from pipestatus.cli.records import pipeline_record
from pipestatus.cli.text import iso
from pipestatus.serve.board import Board

__all__ = ["dumps", "health_document", "runs_document"]


#: Characters written as JSON escapes, so a document is inert even pasted into HTML (they can
#: only occur inside JSON strings, where the escape means the same character).
_INERT: Final = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def dumps(document: Mapping[str, Any], *, ascii_only: bool = False) -> bytes:
    """``document`` as UTF-8 JSON (plain ASCII with ``ascii_only``), with ``<``, ``>`` and
    ``&`` escaped."""
    text = json.dumps(document, ensure_ascii=ascii_only, separators=(",", ":"))
    return text.translate(_INERT).encode("utf-8", "replace")


def runs_document(board: Board, now: datetime) -> dict[str, Any]:
    stale = board.stale()
    return {
        "generated_at": iso(now),
        "pipelines": [
            {
                "key": entry.key,
                "tags": list(entry.item.tags),
                **pipeline_record(entry.item, entry.outcome),
                "stale": entry.item.target in stale,
            }
            for entry in board.entries
        ],
    }


def health_document(
    board: Board, now: datetime, sinks_failing: Sequence[str] = ()
) -> dict[str, Any]:
    return {
        "status": "ok" if board.running else "stopped",
        "time": iso(now),
        "pipelines": len(board.entries),
        "overdue": len(board.stale()),
        "changes": board.changes,
        "accounts_down": board.accounts_down(),
        "sinks_failing": list(sinks_failing),
    }
