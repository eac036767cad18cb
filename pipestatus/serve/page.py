"""The dashboard, rendered by the server with :mod:`pipestatus.serve.html` (every value
escaped): the pipelines grouped by account or tag, failing first, each with its status colour,
current stage, run number, branch, duration, when it last finished or started and a link to the
run; above them the accounts that cannot be used and the notification sinks that keep failing.

Its one script and stylesheet ship in the package (``assets/``, served under ``/static/``): no
CDN, no build step. The script opens ``/events`` and applies each row it receives with
``textContent`` (never ``innerHTML``), re-sorts the group, and says when the data is stale (no
heartbeat for a while, or pipelines whose poll is overdue).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from importlib import resources
from typing import Final

from pipestatus._version import __version__
from pipestatus.cli.text import iso
from pipestatus.serve.board import Board, Row
from pipestatus.serve.html import Markup, el, join

__all__ = ["ASSETS", "COLUMNS", "asset", "render_page"]

#: The columns of a group's table: (field of a row, header).
COLUMNS: Final = (
    ("status", "Status"),
    ("name", "Pipeline"),
    ("stage", "Stage"),
    ("run", "Run"),
    ("branch", "Branch"),
    ("duration", "Duration"),
    ("when", "When"),
    ("problem", "Problem"),
)

#: The files under /static/: name -> content type.
ASSETS: Final = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}


def asset(name: str) -> bytes:
    """The bytes of a file the page needs, from the package."""
    if name not in ASSETS:
        raise KeyError(name)
    return resources.files("pipestatus.serve").joinpath("assets", name).read_bytes()


def _cell(row: Row, field: str) -> Markup:
    value = row[field]
    if field == "status":
        content = el("span", {"class": "badge"}, value)
    elif field == "name":
        url = row["url"]
        link = {"href": url, "rel": "noreferrer"}
        content = el("a", link, value) if url else el("span", {}, value)
    elif field == "when":
        content = el("time", {"datetime": value}, value or "")
    else:
        content = el("span", {}, value or "")
    return el("td", {"class": field, "data-field": field}, content)


def _row(row: Row) -> Markup:
    attributes = {
        "data-key": row["key"],
        "data-status": row["status"],
        "data-rank": row["rank"],
        "data-name": row["name"],
        "class": "stale" if row["stale"] else None,
    }
    return el("tr", attributes, (_cell(row, field) for field, _ in COLUMNS))


def _group(name: str, by: str, rows: Sequence[Row]) -> Markup:
    head = el("tr", {}, (el("th", {"scope": "col"}, header) for _, header in COLUMNS))
    return el(
        "section",
        {"class": "group"},
        el("h2", {}, el("span", {"class": "by"}, f"{by} "), name),
        el("table", {}, el("thead", {}, head), el("tbody", {}, (_row(row) for row in rows))),
    )


def _notes(item_id: str, title: str, lines: Sequence[str]) -> Markup:
    return el(
        "div",
        {"class": "notes", "id": item_id, "hidden": not lines},
        el("strong", {}, title),
        el("ul", {}, (el("li", {}, line) for line in lines)),
    )


def summary_text(counts: dict[str, int]) -> str:
    """``2 failing · 5 running · 40 ok`` (the script computes the same)."""
    failing = sum(counts.get(word, 0) for word in ("failed", "timedout", "error"))
    moving = sum(counts.get(word, 0) for word in ("running", "pending", "reading"))
    fine = sum(counts.values()) - failing - moving
    return f"{failing} failing · {moving} running · {fine} other"


def render_page(
    board: Board, *, group_by: str, heartbeat: float, sinks_failing: Sequence[str], now: datetime
) -> str:
    """The whole page, as the board is at ``now``."""
    counts = board.counts()
    groups = board.groups(group_by, now)
    down = [
        f"{name}: cannot be read (unreachable, or its token is refused)"
        for name in board.accounts_down()
    ]
    head = el(
        "head",
        {},
        el("meta", {"charset": "utf-8"}),
        el("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}),
        el("title", {}, "pipestatus"),
        el("link", {"rel": "stylesheet", "href": "/static/dashboard.css"}),
        el("script", {"src": "/static/dashboard.js", "defer": True}),
    )
    header = el(
        "header",
        {},
        el("h1", {}, "pipestatus"),
        el("span", {"id": "summary"}, summary_text(counts)),
        el(
            "span",
            {"id": "freshness", "class": "connecting", "data-since": iso(now)},
            f"as of {iso(now)}",
        ),
    )
    body = el(
        "body",
        {"data-stream": "/events", "data-heartbeat": heartbeat},
        header,
        _notes("accounts-down", "Accounts that cannot be used", down),
        _notes("sinks-failing", "Notification sinks failing", sinks_failing),
        el("main", {}, (_group(name, group_by, rows) for name, rows in groups)),
        el("footer", {}, f"pipestatus {__version__} · {len(board.entries)} pipelines"),
    )
    return "<!doctype html>\n" + join([el("html", {"lang": "en"}, head, body)]) + "\n"
