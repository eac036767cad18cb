"""The JSON records of ``--json``, as pure functions of the model: one pipeline (its names,
IDs, run, stages, jobs and error) and one change (JSON Lines). Every string in them was cleaned
on the way in (:mod:`pipestatus.cli.safe`), so the document is valid UTF-8 and holds no
control character."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, TypeAlias

from pipestatus.cli.config import Followed
from pipestatus.cli.text import iso, page_of
from pipestatus.errors import PipestatusError
from pipestatus.model import Change, Job, Run, Stage

__all__ = ["change_record", "pipeline_record"]

Outcome: TypeAlias = Run | PipestatusError

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
    its web page (the run's, else its key job's, else the configured one), its stages and
    jobs, and ``error`` (null, or its type and message)."""
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
        "page": (page_of(run) if run else None) or followed.page,
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
