"""Small pure facts the renderers share: times and durations as people read them, the stage a
run is at, the word and style of a status, and the order that puts failing pipelines first.

No I/O here and no clock: the caller passes ``now``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final, TypeAlias

from pipestatus.errors import PipestatusError
from pipestatus.model import Run
from pipestatus.status import Status

__all__ = [
    "ERROR",
    "ORDER",
    "READING",
    "STYLES",
    "SYMBOLS",
    "age",
    "current_stage",
    "elapsed",
    "format_duration",
    "iso",
    "short_sha",
    "word_of",
]

Outcome: TypeAlias = Run | PipestatusError

#: The word shown for a pipeline that could not be read, and for one not read yet.
ERROR: Final = "error"
READING: Final = "reading"

#: The rich style of each word a status cell can hold.
STYLES: Final[dict[str, str]] = {
    "pending": "yellow",
    "running": "bold cyan",
    "success": "green",
    "failed": "bold red",
    "timedout": "red",
    "canceled": "magenta",
    "skipped": "dim",
    ERROR: "bold magenta",
    READING: "dim",
}

#: One narrow symbol per status, for trees (each one terminal cell wide).
SYMBOLS: Final[dict[str, str]] = {
    "pending": "○",
    "running": "●",
    "success": "✓",
    "failed": "✗",
    "timedout": "!",
    "canceled": "⊘",
    "skipped": "-",
    ERROR: "?",
    READING: "…",
}

#: Failing first, then what is moving, then what is fine: the live view's sort order.
ORDER: Final[dict[str, int]] = {
    word: rank
    for rank, word in enumerate(
        (
            ERROR,
            "failed",
            "timedout",
            "canceled",
            "running",
            "pending",
            READING,
            "success",
            "skipped",
        )
    )
}


def word_of(outcome: Outcome | None) -> str:
    """The status word of an observation: the run's status, ``error``, or ``reading``."""
    if outcome is None:
        return READING
    if isinstance(outcome, PipestatusError):
        return ERROR
    return outcome.status.value


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


def span(started: datetime | None, finished: datetime | None, now: datetime) -> timedelta | None:
    """How long something took, or has been going (started, not finished)."""
    if started is None:
        return None
    return (finished or now) - started


def age(run: Run, now: datetime) -> timedelta | None:
    """How long ago the run finished, or started while it is going."""
    when = run.finished_at or run.started_at
    return None if when is None else now - when


def short_sha(sha: str | None) -> str:
    """The first eight characters of a commit."""
    return (sha or "")[:8]


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


def run_label(run: Run) -> str:
    """``#12``, or the run's ID, or nothing (v4 runs have neither)."""
    if run.number is not None:
        return f"#{run.number}"
    return run.run_id or ""


def page_of(run: Run) -> str | None:
    """The run's own web page; else that of the job that matters most (the first that failed,
    else the last one with a page): v4 gives pages on jobs only."""
    if run.url:
        return run.url
    jobs = [job for job in run.jobs if job.url]
    bad = (Status.FAILED, Status.TIMEDOUT, Status.CANCELED)
    for job in jobs:
        if job.status in bad:
            return job.url
    return jobs[-1].url if jobs else None
