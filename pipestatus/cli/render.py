"""What the command shows, as pure functions from the model to text and JSON records: table
rows and the aligned table, one line per change, and the JSON records of ``--json``.

No I/O here and no clock: the caller passes ``now``. Every column is as wide as what it shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeAlias

from pipestatus.cli.config import Followed
from pipestatus.errors import PipestatusError
from pipestatus.model import Change, Job, Run, Stage
from pipestatus.status import Status

__all__ = [
    "HEADER",
    "change_line",
    "change_record",
    "current_stage",
    "elapsed",
    "format_duration",
    "iso",
    "paint",
    "pipeline_record",
    "render_table",
    "table_row",
]

Outcome: TypeAlias = Run | PipestatusError

#: The table's columns; an error's message follows them, unpadded.
HEADER: Final = ("VENDOR", "PIPELINE", "STATUS", "STAGE", "RUN", "DURATION")

_COLORS: Final[dict[str, str]] = {
    "pending": "33",
    "running": "1;36",
    "success": "32",
    "failed": "1;31",
    "timedout": "31",
    "canceled": "35",
    "skipped": "2",
    "error": "1;35",
}


# --- text ----------------------------------------------------------------------------------------


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, to the second."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def format_duration(value: timedelta | None) -> str:
    """``45s``, ``3m05s``, ``2h07m``, ``1d03h``; empty when unknown."""
    if value is None:
        return ""
    seconds = max(0, int(value.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def elapsed(run: Run, now: datetime) -> timedelta | None:
    """The run's duration, or how long it has been going."""
    if run.duration is not None:
        return run.duration
    if run.started_at is not None and not run.status.is_terminal:
        return now - run.started_at
    return None


def current_stage(run: Run) -> str | None:
    """The running stage; once finished, the stage that failed (or the last one that ran);
    before it starts, the next one."""
    names = [(stage, stage.name or stage.id) for stage in run.stages]
    for stage, name in names:
        if stage.status is Status.RUNNING:
            return name
    if run.status.is_terminal:
        bad = (Status.FAILED, Status.TIMEDOUT, Status.CANCELED)
        for stage, name in names:
            if stage.status in bad:
                return name
        ran = [name for stage, name in names if stage.status is not Status.SKIPPED]
        return ran[-1] if ran else None
    return next((name for stage, name in names if not stage.status.is_terminal), None)


def table_row(followed: Followed, outcome: Outcome | None, now: datetime) -> tuple[str, ...]:
    """The six cells of a table row; an error puts its message in a seventh."""
    head = (followed.vendor, followed.label)
    if outcome is None:
        return (*head, "", "", "", "")
    if isinstance(outcome, PipestatusError):
        return (*head, "error", "", "", "", f"{type(outcome).__name__}: {outcome}")
    number = f"#{outcome.number}" if outcome.number is not None else ""
    return (
        *head,
        outcome.status.value,
        current_stage(outcome) or "",
        number,
        format_duration(elapsed(outcome, now)),
    )


def paint(text: str, word: str, *, color: bool) -> str:
    """``text`` in the ANSI colour of the status ``word`` when ``color``."""
    code = _COLORS.get(word)
    return f"\x1b[{code}m{text}\x1b[0m" if color and code else text


def render_table(rows: Sequence[tuple[str, ...]], *, color: bool) -> list[str]:
    """Aligned lines, a header first; the status cell coloured (ANSI) when ``color``."""
    widths = [max(len(row[i]) for row in (HEADER, *rows)) for i in range(len(HEADER))]
    lines = []
    for n, row in enumerate((HEADER, *rows)):
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[: len(HEADER)])]
        if n:
            cells[2] = paint(cells[2], row[2], color=color)
        lines.append("  ".join([*cells, *row[len(HEADER) :]]).rstrip())
    return lines


def change_line(
    followed: Followed, change: Change, now: datetime, width: int = 0, vendor_width: int = 0
) -> str:
    """One plain line for a change: local time, kind, vendor (padded to ``vendor_width``),
    pipeline (padded to ``width``), then what it is now."""
    stamp = now.astimezone().strftime("%H:%M:%S")
    status, *rest = table_row(followed, change.current, now)[2:]
    cells = "  ".join([status.ljust(8), *(cell for cell in rest if cell)])
    kind, vendor, label = change.kind.value, followed.vendor, followed.label
    return f"{stamp}  {kind:<13}  {vendor:<{vendor_width}}  {label:<{width}}  {cells}"


# --- JSON ----------------------------------------------------------------------------------------

_PART: Final = ("status", "raw_status", "started_at", "finished_at")
_RUN_FIELDS: Final = ("run_id", "number", "ref", "sha", "trigger", "url")


def _part(item: Run | Stage | Job) -> dict[str, Any]:
    return {
        "status": item.status.value,
        "raw_status": item.raw_status,
        "started_at": iso(item.started_at),
        "finished_at": iso(item.finished_at),
    }


def pipeline_record(followed: Followed, outcome: Outcome | None) -> dict[str, Any]:
    """One pipeline as JSON: its names and IDs, then the run's fields (null when unknown),
    its stages and jobs, and ``error`` (null, or its type and message)."""
    run = outcome if isinstance(outcome, Run) else None
    error = outcome if isinstance(outcome, PipestatusError) else None
    duration = run.duration if run else None
    return {
        "name": followed.label,
        "account": followed.account,
        "vendor": followed.vendor,
        "ids": dict(followed.ids),
        **(_part(run) if run else dict.fromkeys(_PART)),
        **{key: getattr(run, key, None) for key in _RUN_FIELDS},
        "duration": duration.total_seconds() if duration is not None else None,
        "stages": [
            {
                "id": stage.id,
                "name": stage.name,
                **_part(stage),
                "jobs": [
                    {"id": job.id, "name": job.name, **_part(job), "url": job.url}
                    for job in stage.jobs
                ],
            }
            for stage in (run.stages if run else ())
        ],
        "error": {"type": type(error).__name__, "message": str(error)} if error else None,
    }


def change_record(followed: Followed, change: Change, now: datetime) -> dict[str, Any]:
    """One JSON Lines record for a change: time, kind and the previous status, then the
    pipeline's record."""
    previous = change.previous
    before = previous.status.value if isinstance(previous, Run) else None
    if isinstance(previous, PipestatusError):
        before = "error"
    record = {"time": iso(now), "kind": change.kind.value, "previous_status": before}
    record.update(pipeline_record(followed, change.current))
    return record
