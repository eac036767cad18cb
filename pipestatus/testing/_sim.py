"""The vendor-neutral model of the simulator: runs, stages and jobs, and where a script stands.

Pipelines are described with :class:`SimRun`, :class:`SimStage` and :class:`SimJob`, whose
statuses are the canonical words of :data:`CANONICAL_STATUSES`; each dialect translates them
with its own tables (:func:`word`). A status written ``"raw:WORD"`` reaches every vendor as
``WORD``, so a test can send words the client has never seen.

A :data:`RunSource` is a :class:`SimRun`, a sequence of them (a script that advances one element
per request for that pipeline and then repeats its last element), a callable receiving the
seconds elapsed since the server started (time-driven runs, see
:func:`pipestatus.testing.make_fleet`), or ``None`` (the pipeline exists and has never run).
:class:`Served` is one pipeline a server serves: its IDs, its source and the script's position.

Missing times are made up deterministically (:func:`resolve_times`): a pending run has none, a
running run a start, a finished run a start and an end five minutes apart; jobs share the run's
span in order, and a stage spans its jobs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final, TypeAlias

import attrs

__all__ = [
    "CANONICAL_STATUSES",
    "TERMINAL",
    "RunSource",
    "Served",
    "SimJob",
    "SimRun",
    "SimStage",
    "Timed",
    "Times",
    "canonical",
    "extra_jobs",
    "job_log",
    "resolve_times",
    "stable_hex",
    "word",
]

CANONICAL_STATUSES: Final = (
    "pending",
    "running",
    "success",
    "failed",
    "canceled",
    "skipped",
    "timedout",
)

#: The canonical words of a run that has ended.
TERMINAL: Final = frozenset({"success", "failed", "canceled", "skipped", "timedout"})

_BASE_TIME: Final = datetime(2025, 5, 17, 3, 2, 25, tzinfo=UTC)


def word(status: str, table: Mapping[str, str]) -> str:
    """Translate a canonical word with a dialect's ``table``; ``raw:WORD`` and unknown words
    pass through verbatim."""
    if status.startswith("raw:"):
        return status[4:]
    return table.get(status, status)


def canonical(status: str) -> str:
    """The canonical word behind ``status`` ("raw:" words count as running for timing)."""
    return "running" if status.startswith("raw:") else status


def stable_hex(*parts: object, length: int = 32) -> str:
    """A deterministic hex string made from ``parts``."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:length]


@attrs.define
class SimJob:
    """One job; ``status`` is a canonical word or ``"raw:WORD"``; ``id=None`` is auto-assigned."""

    name: str
    status: str
    id: int | None = None
    started_at: datetime | None = None  #: None: derived from the run's times
    finished_at: datetime | None = None  #: None: derived from the run's times
    log: str | None = None  #: the job's log; None: a line made up from its name and status


def job_log(job: SimJob) -> str:
    """The log a job serves: its own, or one made up from its name and status."""
    if job.log is not None:
        return job.log
    return f"+ {job.name}\n{job.name}: {canonical(job.status)}\n"


def _derive_stage_status(jobs: Sequence[SimJob]) -> str:
    """The status a stage shows for its jobs, by precedence."""
    words = [canonical(job.status) for job in jobs]
    if not words:
        return "pending"
    for found in ("running", "failed", "timedout", "canceled"):
        if found in words:
            return found
    if all(w == "skipped" for w in words):
        return "skipped"
    if all(w == "pending" for w in words):
        return "pending"
    if "pending" in words:
        return "running"  # some jobs done, the rest waiting: the stage is under way
    return "success"


@attrs.define
class SimStage:
    """One stage; ``status=None`` derives the word from the jobs (running, failed, timedout,
    canceled win in that order; all skipped is skipped; all pending is pending; a mix of done
    and pending is running; else success)."""

    name: str
    jobs: list[SimJob] = attrs.field(factory=list)
    status: str | None = None

    @property
    def effective_status(self) -> str:
        """The explicit status, or the one derived from the jobs."""
        return self.status if self.status is not None else _derive_stage_status(self.jobs)


def _default_sha(run: SimRun) -> str:
    return stable_hex("sha", run.number, length=40)


@attrs.define
class SimRun:
    """One run of a pipeline.

    Missing times are made up: a pending run has none, a running run a start, a finished run a
    start and an end (five minutes apart), all deterministic in ``number``.
    """

    number: int
    status: str
    stages: list[SimStage] = attrs.field(factory=list)
    ref: str = "main"
    sha: str = attrs.field(default=attrs.Factory(_default_sha, takes_self=True))
    started_at: datetime | None = None
    finished_at: datetime | None = None
    created_at: datetime | None = None  #: None: two seconds before the start


RunSource: TypeAlias = SimRun | Sequence[SimRun] | Callable[[float], SimRun | None] | None


@attrs.define
class Served:
    """One pipeline a server serves: its vendor, its IDs (in the order of the vendor spec's
    ``ids``), its run source, and where its script stands."""

    vendor: str
    ids: tuple[str, ...]
    source: RunSource
    #: The account the pipeline lives under, for dialects that have one (a project, an
    #: organization); ``None``: none.
    scope: str | None = None
    #: A last stage of this many extra jobs, for dialects that page their jobs.
    extra_jobs: int = 0
    #: The pipeline's name, for dialects that list pipelines (``None``: made up from its ID).
    name: str | None = None
    #: Earlier runs, for dialects that serve a run history (the current run comes first).
    history: tuple[SimRun, ...] = ()
    position: int = 0
    last: SimRun | None = None

    def runs(self, elapsed: float) -> list[SimRun]:
        """The pipeline's runs, newest first: the current one (not advancing a script), then
        its history, by number."""
        current = self.current(elapsed, advance=False)
        runs = [run for run in self.history if current is None or run.number != current.number]
        if current is not None:
            runs.append(current)
        return sorted(runs, key=lambda run: run.number, reverse=True)

    @property
    def key(self) -> str:
        """The IDs joined by ``/``: the seed of the pipeline's made-up IDs and URLs."""
        return "/".join(self.ids)

    def current(self, elapsed: float, *, advance: bool = True) -> SimRun | None:
        """The run to serve; a script advances one element per call when ``advance``."""
        source = self.source
        if not advance and self.last is not None:
            return self.last
        run: SimRun | None
        if source is None or isinstance(source, SimRun):
            run = source
        elif callable(source):
            run = source(elapsed)
        elif len(source) == 0:
            run = None
        else:
            run = source[min(self.position, len(source) - 1)]
            self.position += 1
        self.last = run
        return run


@attrs.frozen
class Times:
    """When something was created, started and finished (``None``: not yet)."""

    created: datetime
    started: datetime | None
    finished: datetime | None


@attrs.frozen
class Timed:
    """A run with times resolved for the run, each stage and each job."""

    run: Times
    stages: list[Times]
    jobs: list[list[Times]]


def extra_jobs(run: SimRun, count: int) -> list[SimJob]:
    """``count`` padding jobs, done when the run is."""
    status = "success" if canonical(run.status) in TERMINAL else "pending"
    return [SimJob(f"extra-{i + 1}", status) for i in range(count)]


def resolve_times(run: SimRun, extra: list[SimJob] | None = None) -> Timed:
    """Every time of ``run`` (and of a last stage of ``extra`` jobs), made up where missing."""
    status = canonical(run.status)
    started = run.started_at
    if started is None and status != "pending":
        started = _BASE_TIME + timedelta(hours=run.number)
    finished = run.finished_at
    if finished is None and status in TERMINAL and started is not None:
        finished = started + timedelta(minutes=5)
    created = run.created_at or (
        (started or _BASE_TIME + timedelta(hours=run.number)) - timedelta(seconds=2)
    )
    stages = list(run.stages)
    if extra:
        stages.append(SimStage("extra", extra))
    n_jobs = sum(len(stage.jobs) for stage in stages) or 1
    if started is not None and finished is not None and finished > started:
        step = (finished - started) / n_jobs
    else:
        step = timedelta(seconds=30)
    stage_times: list[Times] = []
    job_times: list[list[Times]] = []
    k = 0
    for stage in stages:
        row: list[Times] = []
        for job in stage.jobs:
            job_status = canonical(job.status)
            j_start, j_end = job.started_at, job.finished_at
            if started is not None and job_status not in ("pending", "skipped"):
                if j_start is None:
                    j_start = started + step * k
                if j_end is None and job_status in TERMINAL:
                    j_end = j_start + step * 0.9
            row.append(Times(created, j_start, j_end))
            k += 1
        starts = [t.started for t in row if t.started is not None]
        ends = [t.finished for t in row if t.finished is not None]
        s_status = canonical(stage.effective_status)
        stage_times.append(
            Times(
                created,
                min(starts) if starts else None,
                max(ends) if ends and s_status in TERMINAL else None,
            )
        )
        job_times.append(row)
    return Timed(Times(created, started, finished), stage_times, job_times)
