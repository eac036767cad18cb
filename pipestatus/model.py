"""The canonical model: every vendor's payload becomes these frozen, slotted classes.

Every ID is a ``str``; every datetime is timezone-aware, in UTC. ``raw_status`` keeps the
vendor's own word verbatim (``None`` where the vendor gave none and the status was derived).
"""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Hashable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import attrs

from pipestatus.status import Status

if TYPE_CHECKING:
    from pipestatus.errors import PipestatusError

__all__ = ["Change", "ChangeKind", "Job", "Pipeline", "Run", "Scope", "Stage", "Target"]


@attrs.frozen(kw_only=True)
class Job:
    """One job (task) of a run."""

    id: str
    name: str | None
    status: Status
    raw_status: str | None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    url: str | None = None
    ref: str | None = None
    sha: str | None = None
    build_id: str | None = None
    stage_id: str | None = None
    stage_name: str | None = None


@attrs.frozen(kw_only=True)
class Stage:
    """One stage of a run. ``order`` is its 0-based position in ``Run.stages``."""

    id: str
    name: str | None
    order: int
    status: Status
    raw_status: str | None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    jobs: tuple[Job, ...] = ()


@attrs.frozen(kw_only=True)
class Run:
    """The latest run of one pipeline, as one vendor reported it."""

    vendor: str
    pipeline_id: str
    run_id: str | None
    number: int | None
    status: Status
    raw_status: str | None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    ref: str | None = None
    sha: str | None = None
    trigger: str | None = None
    url: str | None = None
    stages: tuple[Stage, ...] = ()
    #: The vendor's clock when it answered, where it says (a run detail's server time): what
    #: is still running is measured to it, not to our clock.
    as_of: datetime | None = None

    @property
    def jobs(self) -> tuple[Job, ...]:
        """Every job of every stage, in stage order."""
        return tuple(job for stage in self.stages for job in stage.jobs)

    @property
    def duration(self) -> timedelta | None:
        """Finished minus started, once both are known."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def elapsed(self) -> timedelta | None:
        """How long the run has taken: its ``duration`` once finished, else the time from its
        start to the vendor's clock (``as_of``), when the vendor gave one."""
        if self.started_at is None:
            return None
        end = self.finished_at or self.as_of
        return None if end is None else max(timedelta(0), end - self.started_at)


class _Source(Hashable, Protocol):
    """What a Target polls through: a vendor adapter (see ``pipestatus.vendors``)."""

    @property
    def vendor(self) -> str: ...

    @property
    def origin(self) -> str: ...

    @property
    def batches(self) -> bool: ...


@attrs.frozen(kw_only=True)
class Target:
    """One pipeline to poll or watch, made by an adapter's ``target(...)``.

    Equal and hashable by adapter and IDs; the repr shows the vendor, host and IDs only.
    """

    source: _Source = attrs.field(repr=False)
    ids: tuple[str, ...]

    @property
    def vendor(self) -> str:
        return self.source.vendor

    def __repr__(self) -> str:
        return f"Target({self.source.vendor}, {self.source.origin}, {'/'.join(self.ids)})"


@attrs.frozen(kw_only=True, repr=False)
class Scope(Target):
    """Every pipeline of one account (a project, an organization) whose name matches
    ``name`` (an ``fnmatch`` glob; ``None``: all), made by an adapter's ``scope(...)``.

    A scope is accepted wherever targets are: ``Client.poll`` expands it into each pipeline's
    own ``Target`` (and keys the scope itself only when its listing failed), a watch re-expands
    it. It is never equal to a ``Target``; its ``ids`` are empty.
    """

    ids: tuple[str, ...] = ()
    name: str | None = None

    def matches(self, pipeline_name: str | None) -> bool:
        """Whether a pipeline called ``pipeline_name`` belongs to the scope (case-sensitive;
        a pipeline without a name matches only the scope of every pipeline)."""
        if self.name is None:
            return True
        return pipeline_name is not None and fnmatch.fnmatchcase(pipeline_name, self.name)

    def __repr__(self) -> str:
        name = "*" if self.name is None else self.name
        return f"Scope({self.source.vendor}, {self.source.origin}, {name!r})"


@attrs.frozen(kw_only=True)
class Pipeline:
    """One pipeline found by an adapter's ``pipelines(...)``: its vendor, ID and name, the
    ``Target`` that polls it (equal to ``adapter.target(id)``), and its latest run where the
    listing carries one (some vendors' lists do not: ``latest`` is ``None`` there, as it is for
    a pipeline that never ran)."""

    vendor: str
    id: str
    name: str | None
    target: Target
    latest: Run | None = None


class ChangeKind(enum.StrEnum):
    """What a change means, in the words a bot announces."""

    FIRST = "first"  # the first observation of a target in this watch
    STARTED = "started"  # another run began (not yet finished)
    FINISHED = "finished"  # a run finished, with nothing to compare it with
    FIXED = "fixed"  # a success after a failure
    BROKE = "broke"  # a failure after a success
    STILL_FAILING = "still_failing"  # a failure after a failure
    MOVED = "moved"  # the run goes on: a stage or job changed
    ERROR = "error"  # the target could not be read (only with watch(..., errors=True))
    RECOVERED = "recovered"  # readable again after an error, nothing else changed
    REMOVED = "removed"  # the pipeline left a watched scope (deleted, renamed out of its glob)


@attrs.frozen(kw_only=True)
class Change:
    """What ``Client.watch`` yields: a target's previous and current observation."""

    target: Target
    previous: Run | PipestatusError | None
    current: Run | PipestatusError
    kind: ChangeKind

    @property
    def run(self) -> Run | None:
        """The current run, or ``None`` when ``current`` is an error."""
        return self.current if isinstance(self.current, Run) else None
