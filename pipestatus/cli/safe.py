"""The one place where vendor- and configuration-supplied strings are made safe to show.

The unsafe code points are the library's own definition (:mod:`pipestatus._safe`, which also
cleans vendor text where it enters an error). A vendor string (a pipeline or job name, a status
word, a branch, an error message echoed from a response body) and a string from the
configuration file (a pipeline's display name: TOML reads ``"\\u001b"`` as an ESC) may hold
anything. Shown as they are, an ESC, OSC or CSI sequence would drive the reader's terminal
(retitle it, move the cursor, hide lines, write a hyperlink), a CR or LF would forge a line of
output, and a lone surrogate would make the JSON document invalid UTF-8. So every such string
is cleaned here, once, as it enters the command
(:mod:`pipestatus.cli.reading` and :mod:`pipestatus.cli.follow` call these functions on every
run, error and followed pipeline they hand on), and every renderer after that point only sees
clean text. The renderers also never let a string be read as rich markup: they build
``rich.text.Text`` objects.

Replaced by U+FFFD (the replacement character):

* C0 controls (U+0000-U+001F: ESC, CR, LF, TAB, BEL...), DEL (U+007F) and C1 controls
  (U+0080-U+009F: CSI, OSC, ST as single code points);
* lone surrogates (U+D800-U+DFFF), which cannot be encoded as UTF-8;
* the bidirectional embedding, override and isolate controls (U+202A-U+202E, U+2066-U+2069),
  which reorder what follows them on screen, and the line and paragraph separators
  (U+2028, U+2029), which some terminals and viewers break lines at.

Everything else is kept, CJK and emoji (with their joiners and variation selectors) included.
"""

from __future__ import annotations

import copy
from typing import Final, TypeVar

import attrs

from pipestatus._safe import REPLACEMENT, UNSAFE, clean
from pipestatus.errors import PipestatusError, WaitTimeout
from pipestatus.model import Change, Job, Run, Stage

__all__ = ["REPLACEMENT", "clean", "clean_change", "clean_error", "clean_outcome", "clean_run"]

#: The unsafe code points: the library's one definition (:mod:`pipestatus._safe`).
_UNSAFE: Final = UNSAFE

E = TypeVar("E", bound=PipestatusError)


def clean_lines(text: str) -> str:
    """``text`` cleaned line by line: its LF line breaks are kept, every other unsafe code
    point replaced (for multi-line text pipestatus writes itself, such as a log record)."""
    return "\n".join(clean(line) for line in text.split("\n"))


def _maybe(text: str | None) -> str | None:
    return None if text is None else clean(text)


def _dirty(*texts: str | None) -> bool:
    return any(text is not None and _UNSAFE.search(text) is not None for text in texts)


def _clean_job(job: Job) -> Job:
    fields = (job.id, job.name, job.raw_status, job.url, job.ref, job.sha, job.build_id)
    if not _dirty(*fields, job.stage_id, job.stage_name):
        return job
    return attrs.evolve(
        job,
        id=clean(job.id),
        name=_maybe(job.name),
        raw_status=_maybe(job.raw_status),
        url=_maybe(job.url),
        ref=_maybe(job.ref),
        sha=_maybe(job.sha),
        build_id=_maybe(job.build_id),
        stage_id=_maybe(job.stage_id),
        stage_name=_maybe(job.stage_name),
    )


def _clean_stage(stage: Stage) -> Stage:
    jobs = tuple(_clean_job(job) for job in stage.jobs)
    same_jobs = all(new is old for new, old in zip(jobs, stage.jobs, strict=True))
    if same_jobs and not _dirty(stage.id, stage.name, stage.raw_status):
        return stage
    return attrs.evolve(
        stage,
        id=clean(stage.id),
        name=_maybe(stage.name),
        raw_status=_maybe(stage.raw_status),
        jobs=jobs,
    )


def clean_run(run: Run) -> Run:
    """``run`` with every string of the run, its stages and jobs cleaned (the same object when
    nothing needed it)."""
    stages = tuple(_clean_stage(stage) for stage in run.stages)
    same_stages = all(new is old for new, old in zip(stages, run.stages, strict=True))
    texts = (run.vendor, run.pipeline_id, run.run_id, run.raw_status, run.ref, run.sha)
    if same_stages and not _dirty(*texts, run.trigger, run.url):
        return run
    return attrs.evolve(
        run,
        vendor=clean(run.vendor),
        pipeline_id=clean(run.pipeline_id),
        run_id=_maybe(run.run_id),
        raw_status=_maybe(run.raw_status),
        ref=_maybe(run.ref),
        sha=_maybe(run.sha),
        trigger=_maybe(run.trigger),
        url=_maybe(run.url),
        stages=stages,
    )


def clean_error(error: E) -> E:
    """A copy of ``error`` (of the same class, so ``isinstance`` checks still hold) whose
    message and string attributes are cleaned; ``error`` itself when nothing needed it. The
    copy carries no traceback and no chained exception."""
    texts = [arg for arg in error.args if isinstance(arg, str)]
    texts += [value for value in vars(error).values() if isinstance(value, str)]
    last = getattr(error, "last", None)
    if not _dirty(*texts) and not isinstance(last, Run | PipestatusError):
        return error
    copied = copy.copy(error)
    copied.args = tuple(clean(arg) if isinstance(arg, str) else arg for arg in error.args)
    for name, value in vars(error).items():
        if isinstance(value, str):
            setattr(copied, name, clean(value))
    if isinstance(copied, WaitTimeout):
        copied.last = clean_outcome(last) if isinstance(last, Run | PipestatusError) else last
    copied.__traceback__ = None
    copied.__cause__ = copied.__context__ = None
    return copied


def clean_outcome(outcome: Run | PipestatusError) -> Run | PipestatusError:
    """A run or an error, cleaned."""
    if isinstance(outcome, Run):
        return clean_run(outcome)
    return clean_error(outcome)


def clean_change(change: Change) -> Change:
    """A change whose previous and current observations are cleaned."""
    previous = None if change.previous is None else clean_outcome(change.previous)
    current = clean_outcome(change.current)
    if previous is change.previous and current is change.current:
        return change
    return attrs.evolve(change, previous=previous, current=current)
