"""CodeArts Pipeline v5 beyond the batch status: the pipeline list, run detail, run history and
step logs, as pure wire classes and ``parse_*`` functions (the adapter in
:mod:`pipestatus.vendors.codearts_pipeline` sends the requests).

* ``POST /v5/{project_id}/api/pipelines/list`` -> ``{offset, limit, total, pipelines[...]}``;
  each pipeline carries its ``latest_run`` in the batch status's shape, so a page is the status
  of every pipeline on it (:func:`parse_pipelines_page`).
* ``GET .../pipelines/{pipeline_id}/pipeline-runs/detail[?pipeline_run_id=]`` -> the run with
  its stages, their jobs and the jobs' steps (:func:`parse_detail`). Every time is epoch
  milliseconds; ``current_system_time`` is the server's clock at reply time (``Run.as_of``).
* ``POST .../pipelines/{pipeline_id}/pipeline-runs/list`` -> ``{offset, limit, total,
  pipeline_runs[...]}``, items in the batch status's shape (:func:`parse_runs_page`).
* ``POST .../pipeline-runs/{run}/jobs/{job}/steps/{step}/logs`` -> ``{has_more, start_offset,
  end_offset, log, step_run_id}`` (:func:`parse_log_chunk`).

One bad item of a list never hides the others: items are structured one by one, and an item
whose ID can be read keeps its own ``ResponseError``.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import attrs

from pipestatus._normalize import derive_span, ordered, read_time
from pipestatus._wire import Structurer, WireId, json_type, make_converter
from pipestatus.errors import ResponseError
from pipestatus.model import Job, Run, Stage
from pipestatus.status import Status, StatusTable, aggregate
from pipestatus.vendors._base import Unreadable

__all__ = [
    "Listed",
    "LogChunk",
    "Page",
    "job_steps",
    "parse_detail",
    "parse_log_chunk",
    "parse_pipelines_page",
    "parse_runs_page",
]

logger = logging.getLogger("pipestatus.vendors.codearts_pipeline")

# --- wire schema -------------------------------------------------------------------------------


@attrs.define
class WireStepRun:
    id: WireId
    name: str | None = None
    status: str | None = None


@attrs.define
class WireJobRun:
    id: WireId
    name: str | None = None
    sequence: int | None = None
    status: str | None = None
    start_time: Any = None  # epoch milliseconds
    end_time: Any = None
    exec_id: str | None = None
    steps: list[WireStepRun] | None = None


@attrs.define
class WireStageRun:
    id: WireId | None = None
    name: str | None = None
    sequence: int | None = None
    status: str | None = None
    start_time: Any = None
    end_time: Any = None
    jobs: list[WireJobRun] | None = None


@attrs.define
class WireRunDetail:
    id: WireId
    pipeline_id: WireId | None = None
    status: str | None = None
    run_number: int | None = None
    trigger_type: str | None = None
    start_time: Any = None
    end_time: Any = None
    detail_url: str | None = None
    current_system_time: Any = None
    stages: list[WireStageRun] | None = None


@attrs.define
class WirePage:
    offset: int | None = None
    limit: int | None = None
    total: int | None = None


@attrs.define
class WireListedPipeline:
    pipeline_id: WireId
    name: str | None = None
    latest_run: Any = None  # the batch status's PipelineLatestRun, read on its own


@attrs.define
class WireLogChunk:
    has_more: bool | None = None
    start_offset: int | None = None
    end_offset: int | None = None
    log: str | None = None


converters: Final = make_converter()

# --- the values the adapter pages with -----------------------------------------------------------


@attrs.frozen
class Page:
    """One page of a v5 list: its items (each a value or the ``ResponseError`` of an item that
    could not be read but named its ID), the claimed ``total``, and errors of items without a
    usable ID."""

    items: tuple[Any, ...]
    total: int | None
    unattributed: tuple[ResponseError, ...] = ()


@attrs.frozen
class Listed:
    """One pipeline of the list: its ID and name, and its latest run (``None``: it never ran;
    a ``ResponseError``: its run could not be read)."""

    pipeline_id: str
    name: str | None
    latest: Run | ResponseError | None


@attrs.frozen
class LogChunk:
    """One chunk of a step's log and where the next one starts."""

    text: str
    has_more: bool
    end_offset: int | None


# --- normalize -----------------------------------------------------------------------------------


def _word(table: StatusTable, word: str | None) -> Status:
    return Status.PENDING if word is None else (table.words.get(word) or table(word))


def to_job(wire: WireJobRun, table: StatusTable, stage: WireStageRun, stage_id: str) -> Job:
    vendor = table.vendor
    return Job(
        id=wire.id,
        name=wire.name,
        status=_word(table, wire.status),
        raw_status=wire.status,
        started_at=read_time(wire.start_time, vendor, "job.start_time"),
        finished_at=read_time(wire.end_time, vendor, "job.end_time"),
        build_id=wire.exec_id,
        stage_id=stage_id,
        stage_name=stage.name,
    )


def _job_sequence(job: WireJobRun) -> int | None:
    return job.sequence


def _stage_sequence(stage: WireStageRun) -> int | None:
    return stage.sequence


def to_stage(wire: WireStageRun, order: int, table: StatusTable) -> Stage:
    stage_id = wire.id or str(wire.sequence if wire.sequence is not None else order)
    jobs = tuple(
        to_job(job, table, wire, stage_id) for job in ordered(wire.jobs or [], _job_sequence)
    )
    status = (
        aggregate([j.status for j in jobs]) if wire.status is None else _word(table, wire.status)
    )
    started = read_time(wire.start_time, table.vendor, "stage.start_time")
    finished = read_time(wire.end_time, table.vendor, "stage.end_time")
    if started is None or (finished is None and status.is_terminal):
        derived_start, derived_end = derive_span(status, jobs)
        started = started or derived_start
        finished = finished or derived_end
    return Stage(
        id=stage_id,
        name=wire.name,
        order=order,
        status=status,
        raw_status=wire.status,
        started_at=started,
        finished_at=finished,
        jobs=jobs,
    )


def to_detail(wire: WireRunDetail, table: StatusTable, pipeline_id: str) -> Run:
    stages = tuple(
        to_stage(stage, order, table)
        for order, stage in enumerate(ordered(wire.stages or [], _stage_sequence))
    )
    word = wire.status
    status = aggregate([s.status for s in stages]) if word is None else _word(table, word)
    vendor = table.vendor
    started = read_time(wire.start_time, vendor, "start_time")
    finished = read_time(wire.end_time, vendor, "end_time")
    if started is None or (finished is None and status.is_terminal):
        derived_start, derived_end = derive_span(status, stages)
        started = started or derived_start
        finished = finished or derived_end
    return Run(
        vendor=vendor,
        pipeline_id=wire.pipeline_id or pipeline_id,
        run_id=wire.id,
        number=wire.run_number,
        status=status,
        raw_status=word,
        started_at=started,
        # The vendor's clock, not ours: what is still running is measured to it.
        as_of=read_time(wire.current_system_time, vendor, "current_system_time"),
        finished_at=finished,
        trigger=wire.trigger_type,
        url=wire.detail_url,
        stages=stages,
    )


_detail: Final = Structurer(converters, WireRunDetail, vendor="codearts_pipeline")
_page: Final = Structurer(converters, WirePage, vendor="codearts_pipeline")
_listed: Final = Structurer(converters, WireListedPipeline, vendor="codearts_pipeline")
_chunk: Final = Structurer(converters, WireLogChunk, vendor="codearts_pipeline")


def parse_detail(payload: object, table: StatusTable, pipeline_id: str) -> Run:
    """A decoded run detail -> ``Run`` with stages and jobs (``as_of``: the server's clock)."""
    return to_detail(_detail(payload), table, pipeline_id)


def job_steps(payload: object, job_id: str) -> list[str] | None:
    """The step IDs of job ``job_id`` in a decoded run detail, in order; ``None``: no such
    job."""
    wire = _detail(payload)
    for stage in wire.stages or ():
        for job in stage.jobs or ():
            if job.id == job_id:
                return [step.id for step in job.steps or ()]
    return None


def _at(exc: ResponseError, path: str, vendor: str) -> ResponseError:
    return ResponseError(
        exc.message.replace(" @ $", f" @ {path}", 1),
        vendor=vendor,
        path=f"{path}{(exc.path or '$')[1:]}",
    )


def _items(payload: object, key: str, vendor: str) -> tuple[list[Any], int | None]:
    if not isinstance(payload, dict):
        raise ResponseError(
            f"unexpected list payload: expected an object, got {json_type(payload)} @ $",
            vendor=vendor,
            path="$",
        )
    page = _page(payload)
    items = payload.get(key)
    if items is None:
        items = []
    if not isinstance(items, list):
        raise ResponseError(
            f"unexpected list payload: expected an array, got {json_type(items)} @ $.{key}",
            vendor=vendor,
            path=f"$.{key}",
        )
    return items, page.total


def _item_id(item: object, key: str) -> str | None:
    value = item.get(key) if isinstance(item, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    return value if isinstance(value, str) and value.strip() else None


def parse_pipelines_page(payload: object, parse_run: Any, vendor: str) -> Page:
    """A decoded pipeline-list page -> its :class:`Listed` pipelines (``parse_run``: the batch
    status's item parser, for each ``latest_run``)."""
    items, total = _items(payload, "pipelines", vendor)
    out: list[Listed] = []
    lost = Unreadable()  # items naming no pipeline: counted, a few kept, one log line
    for index, item in enumerate(items):
        where = f"$.pipelines[{index}]"
        if type(item) is not dict:  # refused unread: what a broken page is full of
            lost.add(_at(_listed.refusal(item), where, vendor) if lost.keeping else None)
            continue
        try:
            wire = _listed(item)
        except ResponseError as exc:
            error = _at(exc, where, vendor)
            pipeline_id = _item_id(item, "pipeline_id")
            if pipeline_id is None:
                lost.add(error)
            else:
                out.append(Listed(pipeline_id, None, error))
            continue
        latest: Run | ResponseError | None = None
        raw = wire.latest_run
        if raw is not None:
            if isinstance(raw, dict) and raw.get("pipeline_id") is None:
                raw = {**raw, "pipeline_id": wire.pipeline_id}
            try:
                latest = parse_run(raw)
            except ResponseError as exc:
                latest = _at(exc, f"{where}.latest_run", vendor)
        out.append(Listed(wire.pipeline_id, wire.name, latest))
    lost.log(logger, "a pipeline list page", vendor)
    return Page(items=tuple(out), total=total, unattributed=tuple(lost.kept))


def parse_runs_page(payload: object, parse_run: Any, vendor: str, pipeline_id: str) -> Page:
    """A decoded run-history page -> its runs (``Run``, or the ``ResponseError`` of a run that
    could not be read)."""
    items, total = _items(payload, "pipeline_runs", vendor)
    out: list[Run | ResponseError] = []
    lost = Unreadable()  # past the first few, one error stands for every other bad item
    for index, item in enumerate(items):
        where = f"$.pipeline_runs[{index}]"
        error: ResponseError | None = None
        if type(item) is dict:
            if item.get("pipeline_id") is None:
                item = {**item, "pipeline_id": pipeline_id}
            try:
                out.append(parse_run(item))
                continue
            except ResponseError as exc:
                error = _at(exc, where, vendor) if lost.keeping else None
        elif lost.keeping:
            error = ResponseError(
                f"unexpected PipelineRun payload: expected an object, got {json_type(item)} "
                f"@ {where}",
                vendor=vendor,
                path=where,
            )
        lost.add(error)
        out.append(lost.kept[-1])
    return Page(items=tuple(out), total=total)


def parse_log_chunk(payload: object) -> LogChunk:
    """A decoded step-log reply -> its text, whether more follows, and its end offset."""
    wire = _chunk(payload)
    return LogChunk(text=wire.log or "", has_more=bool(wire.has_more), end_offset=wire.end_offset)
