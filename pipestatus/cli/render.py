"""The tables the command shows, as pure functions from the model to rich renderables: the
status table (its columns chosen and sized for the width at hand), the live view's frame
(failing first; rows that do not fit are summarized per vendor), and one plain line per change.

No I/O here and no clock: the caller passes ``now`` and the width. Widths are display cells
(``rich.cells.cell_len``), so a CJK name or an emoji takes the two cells it takes on screen
and every column starts at the same cell on every row. Cells are ``rich.text.Text`` objects
built from clean strings (:mod:`pipestatus.cli.safe`): nothing is ever read as markup.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Final, TypeAlias

import attrs
from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from pipestatus.cli.config import Followed
from pipestatus.cli.text import (
    ERROR,
    ORDER,
    STYLES,
    age,
    current_stage,
    elapsed,
    format_duration,
    run_label,
    short_sha,
    word_of,
)
from pipestatus.errors import PipestatusError
from pipestatus.model import Change, Run

__all__ = [
    "COLUMNS",
    "DETAIL_PRIORITY",
    "HEADER",
    "PROBLEM",
    "Column",
    "Row",
    "change_line",
    "layout",
    "live_frame",
    "make_row",
    "pad",
    "problem_of",
    "render_table",
    "sort_rows",
    "status_table",
    "status_text",
]

Outcome: TypeAlias = Run | PipestatusError

#: Cells between two columns.
GAP: Final = 2
#: The narrowest a shrinking column gets (its header is never cut).
MIN_SHRUNK: Final = 6


@attrs.frozen
class Column:
    """A column of the status table: its key in a row's cells and its header. A column that
    ``shrinks`` is cut with an ellipsis when the width is short; a ``detail`` column is shown
    only when the width leaves room for it (or always with ``--wide``)."""

    key: str
    header: str
    shrinks: bool = False
    detail: bool = False


COLUMNS: Final = (
    Column("vendor", "VENDOR"),
    Column("pipeline", "PIPELINE", shrinks=True),
    Column("status", "STATUS"),
    Column("stage", "STAGE", shrinks=True),
    Column("run", "RUN"),
    Column("duration", "DURATION"),
    Column("branch", "BRANCH", shrinks=True, detail=True),
    Column("commit", "COMMIT", detail=True),
    Column("trigger", "TRIGGER", detail=True),
    Column("age", "AGE", detail=True),
)
#: Why a pipeline could not be read; last, and only when some row has a problem.
PROBLEM: Final = Column("problem", "PROBLEM", shrinks=True)
#: The detail columns in the order they get room when the width is short.
DETAIL_PRIORITY: Final = ("age", "branch", "commit", "trigger")
#: The headers of the columns every table has.
HEADER: Final = tuple(column.header for column in COLUMNS if not column.detail)


@attrs.frozen
class Row:
    """One pipeline's row: what it is, what was seen, and the text of every cell."""

    item: Followed
    outcome: Outcome | None
    word: str
    cells: Mapping[str, str]


def problem_of(outcome: Outcome | None) -> str:
    """An error as ``Type: message``; empty for anything else."""
    if isinstance(outcome, PipestatusError):
        return f"{type(outcome).__name__}: {outcome}"
    return ""


def make_row(item: Followed, outcome: Outcome | None, now: datetime) -> Row:
    """The row of ``item`` given what was seen of it (``None``: nothing yet)."""
    cells = dict.fromkeys((column.key for column in (*COLUMNS, PROBLEM)), "")
    word = word_of(outcome)
    cells.update(vendor=item.vendor, pipeline=item.label, status=word)
    if isinstance(outcome, Run):
        cells.update(
            stage=current_stage(outcome) or "",
            run=run_label(outcome),
            duration=format_duration(elapsed(outcome, now)),
            branch=outcome.ref or "",
            commit=short_sha(outcome.sha),
            trigger=outcome.trigger or "",
            age=format_duration(age(outcome, now)),
        )
    elif outcome is not None:
        cells.update(problem=problem_of(outcome))
    return Row(item=item, outcome=outcome, word=word, cells=cells)


def sort_rows(rows: Sequence[Row]) -> list[Row]:
    """Failing first, then running, pending and unread, then the rest; ties keep their order."""
    ranked = sorted(enumerate(rows), key=lambda pair: (ORDER.get(pair[1].word, 0), pair[0]))
    return [row for _, row in ranked]


def status_text(word: str, text: str | None = None) -> Text:
    """``text`` (default: ``word``) in the style of the status ``word``."""
    return Text(word if text is None else text, style=STYLES.get(word, ""))


def pad(text: str, width: int) -> str:
    """``text`` padded with spaces to ``width`` display cells."""
    return text + " " * max(0, width - cell_len(text))


# --- the status table -----------------------------------------------------------------------


def _natural(column: Column, rows: Sequence[Row]) -> int:
    return max([cell_len(column.header), *(cell_len(row.cells[column.key]) for row in rows)])


def _total(widths: Sequence[int]) -> int:
    return sum(widths) + GAP * max(0, len(widths) - 1)


def _fit(columns: Sequence[Column], natural: Sequence[int], width: int) -> list[int]:
    """Natural widths, the shrinking columns cut (widest first) until the table fits."""
    widths = list(natural)
    if _total(widths) <= width:
        return widths
    shrinking = [i for i, column in enumerate(columns) if column.shrinks]
    floors = {i: min(natural[i], max(MIN_SHRUNK, cell_len(columns[i].header))) for i in shrinking}
    room = width - _total([w for i, w in enumerate(widths) if i not in floors]) - GAP * len(floors)
    if floors and room >= sum(floors.values()):
        cap = max(natural[i] for i in floors)
        while cap > 0 and sum(max(floors[i], min(natural[i], cap)) for i in floors) > room:
            cap -= 1
        for i in floors:
            widths[i] = max(floors[i], min(natural[i], cap))
    else:
        for i in floors:
            widths[i] = floors[i]
    return widths


def layout(
    rows: Sequence[Row], *, width: int | None, wide: bool = False
) -> list[tuple[Column, int]]:
    """The columns to show and their widths. Every table has the six core columns (and
    PROBLEM when a row has one); detail columns are added in ``DETAIL_PRIORITY`` order while
    the table, each column at its natural width, fits in ``width`` (all of them with ``wide``;
    none when ``width`` is ``None``, output that is not for a screen, unless ``wide``); then
    shrinking columns are cut to fit."""
    chosen = {column.key for column in COLUMNS if not column.detail}
    last = [PROBLEM] if any(row.cells[PROBLEM.key] for row in rows) else []
    if wide:
        chosen |= set(DETAIL_PRIORITY)
    elif width is not None:
        for key in DETAIL_PRIORITY:
            trial = [c for c in COLUMNS if c.key in chosen | {key}] + last
            if _total([_natural(c, rows) for c in trial]) <= width:
                chosen.add(key)
    columns = [column for column in COLUMNS if column.key in chosen] + last
    natural = [_natural(column, rows) for column in columns]
    widths = natural if width is None else _fit(columns, natural, width)
    return list(zip(columns, widths, strict=True))


def _cell(row: Row, column: Column) -> Text:
    text = row.cells[column.key]
    if column.key == "status":
        return status_text(row.word, text)
    if column.key == PROBLEM.key:
        return Text(text, style=STYLES[ERROR])
    return Text(text)


def _table(laid: Sequence[tuple[Column, int]], cells: Sequence[Sequence[Text]]) -> Table:
    table = Table(
        box=None,
        show_edge=False,
        pad_edge=False,
        padding=(0, GAP // 2),
        header_style="bold",
        expand=False,
    )
    for column, width in laid:
        table.add_column(
            Text(column.header), width=width, min_width=width, no_wrap=True, overflow="ellipsis"
        )
    for row in cells:
        table.add_row(*row)
    return table


def status_table(rows: Sequence[Row], *, width: int | None, wide: bool = False) -> Table:
    """The status table of ``rows`` (see :func:`layout` for its columns)."""
    laid = layout(rows, width=width, wide=wide)
    return _table(laid, [[_cell(row, column) for column, _ in laid] for row in rows])


def render_table(rows: Sequence[tuple[str, ...]], *, color: bool) -> list[str]:
    """Rows of plain cells (the six core columns, then an optional problem) as aligned lines,
    a header first; the status cell coloured (ANSI) when ``color``."""
    columns = [column for column in COLUMNS if not column.detail]
    if any(len(row) > len(columns) and row[len(columns)] for row in rows):
        columns.append(PROBLEM)
    texts = [
        [
            status_text(row[i]) if column.key == "status" else Text(row[i] if i < len(row) else "")
            for i, column in enumerate(columns)
        ]
        for row in rows
    ]
    widths = [
        max([cell_len(column.header), *(text.cell_len for text in (t[i] for t in texts))])
        for i, column in enumerate(columns)
    ]
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=_total(widths) + 1,
        color_system="standard" if color else None,
        no_color=not color,
        markup=False,
        emoji=False,
        highlight=False,
        legacy_windows=False,
    )
    console.print(_table(list(zip(columns, widths, strict=True)), texts))
    return [line.rstrip() for line in buffer.getvalue().splitlines()]


# --- the live view ----------------------------------------------------------------------------


def _counts(rows: Sequence[Row]) -> Text:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.word] = counts.get(row.word, 0) + 1
    text = Text()
    for word in sorted(counts, key=lambda w: ORDER.get(w, 0)):
        if text:
            text.append(", ")
        text.append(f"{counts[word]} {word}", style=STYLES.get(word, ""))
    return text


def live_frame(
    title: str,
    rows: Sequence[Row],
    *,
    width: int,
    height: int,
    changes: int,
    wide: bool = False,
    notes: Sequence[str] = (),
) -> RenderableType:
    """One frame of the live view: a title, the table sorted failing first, a count of changes
    and of each status, then ``notes`` (what happened to accounts). Rows that do not fit in
    ``height`` lines are summarized, one line per vendor (``… 8 more of <vendor>: 6 success, 2
    pending``), so no vendor vanishes."""
    ordered = sort_rows(rows)
    # The title, the header, the footer, the notes, and the line the cursor is on.
    room = max(1, height - 4 - len(notes))
    shown = len(ordered)
    if shown > room:
        for shown in range(room, -1, -1):
            vendors = {row.item.vendor for row in ordered[shown:]}
            if shown + len(vendors) <= room:
                break
    visible, hidden = ordered[:shown], ordered[shown:]
    parts: list[RenderableType] = [Text(title, style="bold")]
    parts.append(status_table(visible, width=width, wide=wide))
    by_vendor: dict[str, list[Row]] = {}
    for row in hidden:
        by_vendor.setdefault(row.item.vendor, []).append(row)
    for vendor, group in by_vendor.items():
        line = Text(f"… {len(group)} more of {vendor}: ", style="dim")
        line.append_text(_counts(group))
        line.truncate(width, overflow="ellipsis")
        parts.append(line)
    footer = Text(f"{changes} changes   ")
    footer.append_text(_counts(rows))
    footer.truncate(width, overflow="ellipsis")
    parts.append(footer)
    for note in notes:
        line = Text(note, style="magenta")
        line.truncate(width, overflow="ellipsis")
        parts.append(line)
    return Group(*parts)


# --- one line per change ----------------------------------------------------------------------


def change_line(
    followed: Followed, change: Change, now: datetime, width: int = 0, vendor_width: int = 0
) -> str:
    """One plain line for a change: local time, kind, vendor (padded to ``vendor_width``
    cells), pipeline (padded to ``width`` cells), then what it is now."""
    stamp = now.astimezone().strftime("%H:%M:%S")
    row = make_row(followed, change.current, now)
    rest = [row.cells[key] for key in ("stage", "run", "duration", "problem") if row.cells[key]]
    cells = "  ".join([pad(row.word, 8), *rest]).rstrip()
    kind = pad(change.kind.value, 13)
    vendor, label = pad(followed.vendor, vendor_width), pad(followed.label, width)
    return f"{stamp}  {kind}  {vendor}  {label}  {cells}"
