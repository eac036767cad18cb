"""Yunxiao Flow reads of a whole organization and of one run: the pipeline list (and the scopes
built on it), one run, run history and job logs, and the ``reset_at`` of a 429 body. Pure wire
classes and ``parse_*`` functions first, then :class:`OrganizationReads`, a mixin of the adapter
in :mod:`pipestatus.vendors.yunxiao` (which gives it its path prefix and run parser).

* ``GET …/pipelines?page=&perPage=`` (at most 30 a page) -> ``[{pipelineId, pipelineName,
  createAccountId, createTime}]``, with the GitLab-style ``x-next-page``/``x-total`` headers
  (followed when present; else a short page is the last).
* ``GET …/pipelines/{pipelineId}/runs/{pipelineRunId}`` -> a run, shaped as the latest run.
* ``GET …/pipelines/{pipelineId}/runs?page=&perPage=&startTime=&endTme=&status=`` (``endTme``
  is the vendor's spelling) -> ``[{pipelineRunId, pipelineId, status, startTime, endTime,
  triggerMode, creatorAccountId}]``: runs without stages.
* ``GET …/pipelines/{pipelineId}/runs/{pipelineRunId}/job/{jobId}/log`` -> ``{content, last,
  more}`` (what ``last`` and ``more`` mean is not documented: the content is read as it is).
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Final

import attrs

from pipestatus._normalize import read_time
from pipestatus._sansio import Endpoint, Sender
from pipestatus._wire import Converters, Structurer, WireId, json_type
from pipestatus.errors import PipestatusError, ResponseError
from pipestatus.model import Pipeline, Run, Scope, Target
from pipestatus.status import Status, StatusTable
from pipestatus.vendors._base import (
    RunHistory,
    Unreadable,
    decode,
    glob_literal,
    segment,
    string_id,
)
from pipestatus.vendors._paging import Pages, read_count
from pipestatus.vendors._tail import Tail

__all__ = [
    "PAGE_SIZE",
    "parse_pipelines",
    "parse_runs",
    "RUN_FILTERS",
    "OrganizationReads",
    "reset_after",
]

logger = logging.getLogger("pipestatus.vendors.yunxiao")

#: The list endpoints' largest page.
PAGE_SIZE: Final = 30
#: The run list's ``status`` filter words (all it documents); other statuses filter here only.
RUN_FILTERS: Final[dict[Status, str]] = {
    Status.FAILED: "FAIL",
    Status.SUCCESS: "SUCCESS",
    Status.RUNNING: "RUNNING",
}

# --- wire schema (camelCase on the wire: the vendor's converter renames) ------------------------


@attrs.define
class WireListedPipeline:
    pipeline_id: WireId
    pipeline_name: str | None = None


@attrs.define
class WireRunItem:
    pipeline_run_id: WireId
    pipeline_id: WireId | None = None
    status: str | None = None
    start_time: Any = None
    end_time: Any = None
    trigger_mode: int | None = None


@attrs.define
class WireJobLog:
    content: str | None = None


# --- pure reads ----------------------------------------------------------------------------------


def _array(payload: object, what: str, vendor: str) -> list[Any]:
    if not isinstance(payload, list):
        raise ResponseError(
            f"unexpected {what} payload: expected an array, got {json_type(payload)} @ $",
            vendor=vendor,
            path="$",
        )
    return payload


def _at(exc: ResponseError, index: int, vendor: str) -> ResponseError:
    return ResponseError(
        exc.message.replace(" @ $", f" @ $[{index}]", 1),
        vendor=vendor,
        path=f"$[{index}]{(exc.path or '$')[1:]}",
    )


def parse_pipelines(
    payload: object, structurer: Structurer[WireListedPipeline], vendor: str
) -> list[tuple[str, str | None]]:
    """A decoded pipeline-list page -> ``(pipelineId, pipelineName)`` of each readable item
    (those that cannot be read are left out, in one log line for the page: they name no
    pipeline to follow)."""
    out: list[tuple[str, str | None]] = []
    lost = Unreadable()
    for index, item in enumerate(_array(payload, "pipeline list", vendor)):
        wire = structurer.quick(item)
        if wire is None:
            lost.add(_at(structurer.refusal(item), index, vendor) if lost.keeping else None)
            continue
        out.append((wire.pipeline_id, wire.pipeline_name))
    lost.log(logger, "a pipeline list page", vendor)
    return out


def to_run_item(
    wire: WireRunItem, pipeline_id: str, table: StatusTable, modes: dict[int, str]
) -> Run:
    word = wire.status
    vendor = table.vendor
    status = Status.PENDING if word is None else (table.words.get(word) or table(word))
    mode = wire.trigger_mode
    run_id = wire.pipeline_run_id
    return Run(
        vendor=vendor,
        pipeline_id=wire.pipeline_id or pipeline_id,
        run_id=run_id,
        # Flow numbers a pipeline's runs 1, 2, 3...: the run ID is the run number.
        number=int(run_id) if run_id.isascii() and run_id.isdigit() and len(run_id) <= 18 else None,
        status=status,
        raw_status=word,
        started_at=read_time(wire.start_time, vendor, "startTime"),
        finished_at=read_time(wire.end_time, vendor, "endTime"),
        trigger=None if mode is None else modes.get(mode, str(mode)),
    )


def parse_runs(
    payload: object,
    pipeline_id: str,
    structurer: Structurer[WireRunItem],
    table: StatusTable,
    modes: dict[int, str],
) -> list[Run | ResponseError]:
    """A decoded run-list page -> each run (without stages), or the ``ResponseError`` of an
    item that could not be read."""
    vendor = table.vendor
    out: list[Run | ResponseError] = []
    lost = Unreadable()
    for index, item in enumerate(_array(payload, "run list", vendor)):
        wire = structurer.quick(item)
        if wire is not None:
            out.append(to_run_item(wire, pipeline_id, table, modes))
            continue
        # Past the first few, one error stands for every other item that cannot be read.
        if lost.keeping:
            lost.add(_at(structurer.refusal(item), index, vendor))
        else:
            lost.add()
        out.append(lost.kept[-1])
    return out


def reset_after(body: bytes, *, now: datetime | None = None) -> float | None:
    """Seconds until a 429's ``reset_at`` (in its JSON body, as the vendor's MCP server reads
    it; its format is unconfirmed, so epoch seconds, epoch milliseconds and ISO 8601 are all
    read), or ``None`` when the body has none."""
    import json

    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    value = data.get("reset_at", data.get("resetAt")) if isinstance(data, dict) else None
    now = now or datetime.now(UTC)
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 18:
        value = int(value.strip())
    when: datetime | None = None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        seconds = value / 1000 if value > 1e11 else float(value)  # ms: past 1973-03-03
        try:
            when = datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str):
        when = read_time(value, "yunxiao", "reset_at")
    if when is None:
        return None
    return max(0.0, (when - now).total_seconds())


# --- the adapter's reads -------------------------------------------------------------------------


class OrganizationReads(RunHistory):
    """The organization-wide and per-run reads of a Yunxiao adapter."""

    vendor: ClassVar[str]
    _table: ClassVar[StatusTable]
    _modes: ClassVar[dict[int, str]]
    _converters: ClassVar[Converters]
    _parse_run: Callable[[object], Run]
    _transport: Sender
    _endpoint: Endpoint
    _prefix: str  # ".../pipelines/"

    if TYPE_CHECKING:  # given by Adapter, after this mixin in the adapter's bases

        def _own(self, target: Target) -> None: ...
        def _target(self, *ids: str) -> Target: ...
        def _scope(self, name: object) -> Scope: ...

    def scope(self, name: str | None = None) -> Scope:
        """Every pipeline of the organization whose name matches ``name`` (an ``fnmatch``
        glob; ``None``: all), for ``Client.poll`` and ``Client.watch``."""
        return self._scope(name)

    async def pipelines(self, name: str | None = None) -> list[Pipeline]:
        """Every pipeline of the organization (every page of the list; ``name``: only those
        whose name matches this ``fnmatch`` glob). The list carries no runs: ``latest`` is
        ``None`` (poll the targets, or a scope, for their runs)."""
        return [pipeline for pipeline, _ in await self.survey(self._scope(name))]

    async def survey(self, scope: Scope) -> list[tuple[Pipeline, Run | PipestatusError | None]]:
        self._own(scope)
        vendor, structurer = self.vendor, _listed(self._converters, self.vendor)
        params: dict[str, str | int] = {"perPage": PAGE_SIZE}
        literal = glob_literal(scope.name)
        if literal is not None:
            params["pipelineName"] = literal
        pages = Pages("the Yunxiao pipeline list", vendor=vendor, limit=PAGE_SIZE)
        out: list[tuple[Pipeline, Run | PipestatusError | None]] = []
        page, going = 1, True
        while going:
            response = await self._transport.request(
                self._endpoint, "GET", self._prefix.rstrip("/"), params={**params, "page": page}
            )
            items = decode(
                response.json(), lambda p: parse_pipelines(p, structurer, vendor), vendor=vendor
            )
            keys = [pipeline_id for pipeline_id, _ in items]
            going, page = _next(pages, keys, response.headers, page)
            for (pipeline_id, name), new in zip(items, pages.fresh(keys), strict=True):
                if new and scope.matches(name):
                    target = self._target(pipeline_id)
                    out.append(
                        (Pipeline(vendor=vendor, id=pipeline_id, name=name, target=target), None)
                    )
        return out

    async def run(self, pipeline_id: str | int, run_id: str | int) -> Run:
        """One run of the pipeline, with its stages and jobs."""
        pid = string_id(pipeline_id, "pipeline_id")
        rid = string_id(run_id, "run_id")
        response = await self._transport.request(
            self._endpoint, "GET", f"{self._prefix}{segment(pid)}/runs/{segment(rid)}"
        )
        payload = response.json()
        if isinstance(payload, dict):  # the documented shape names neither: fill them in
            payload = {"pipelineId": pid, "pipelineRunId": rid, **payload}
        return decode(payload, self._parse_run, vendor=self.vendor)

    async def runs(
        self,
        pipeline_id: str | int,
        since: datetime | None = None,
        status: Status | None = None,
        *,
        until: datetime | None = None,
    ) -> AsyncIterator[Run]:
        """The pipeline's runs, newest first, page by page (30 a page); runs have no stages.

        ``since``: only runs that started at or after it (a run not started yet counts as
        new); sent as ``startTime`` and paging stops at the first older run. ``status``: only
        runs of that status (``FAIL``/``SUCCESS``/``RUNNING`` are also sent as the vendor's
        filter). ``until``: sent as ``endTme``. Runs that cannot be read are logged, skipped.
        """
        pid = string_id(pipeline_id, "pipeline_id")
        _check_window(since, until)
        params: dict[str, str | int] = {"perPage": PAGE_SIZE}
        if since is not None:
            params["startTime"] = int(since.timestamp() * 1000)
        if until is not None:
            params["endTme"] = int(until.timestamp() * 1000)  # sic: the vendor's spelling
        if status is not None and status in RUN_FILTERS:
            params["status"] = RUN_FILTERS[status]
        vendor, table, modes = self.vendor, self._table, self._modes
        structurer = _run_item(self._converters, vendor)
        pages = Pages("the Yunxiao run list", vendor=vendor, limit=PAGE_SIZE)
        page, going = 1, True
        while going:
            response = await self._transport.request(
                self._endpoint,
                "GET",
                f"{self._prefix}{segment(pid)}/runs",
                params={**params, "page": page},
            )
            runs = decode(
                response.json(),
                lambda p: parse_runs(p, pid, structurer, table, modes),
                vendor=vendor,
            )
            keys = [
                r.run_id if isinstance(r, Run) else f"bad-{page}-{i}" for i, r in enumerate(runs)
            ]
            going, page = _next(pages, keys, response.headers, page)
            unread = [run for run in runs if isinstance(run, ResponseError)]
            if unread:  # one line for the page, however many
                logger.warning(
                    "%s: %d run(s) of a run list page could not be read; the first: %s",
                    vendor,
                    len(unread),
                    unread[0].message,
                )
            for run, new in zip(runs, pages.fresh(keys), strict=True):
                if isinstance(run, ResponseError):
                    continue
                if not new:
                    continue
                if since is not None and run.started_at is not None and run.started_at < since:
                    return  # newest first: every later run is older
                if status is None or run.status is status:
                    yield run

    async def log(
        self,
        pipeline_id: str | int,
        run_id: str | int,
        job_id: str | int,
        max_bytes: int = 65536,
    ) -> str:
        """The last ``max_bytes`` bytes of a job's log, decoded as UTF-8 (undecodable bytes
        replaced). The whole log comes in one answer, bounded by the client's body cap."""
        pid = string_id(pipeline_id, "pipeline_id")
        rid = string_id(run_id, "run_id")
        jid = string_id(job_id, "job_id")
        tail = Tail(max_bytes)
        response = await self._transport.request(
            self._endpoint,
            "GET",
            f"{self._prefix}{segment(pid)}/runs/{segment(rid)}/job/{segment(jid)}/log",
        )
        wire = decode(response.json(), _job_log(self._converters, self.vendor), vendor=self.vendor)
        tail.add(wire.content or "")
        return tail.text()


def _check_window(since: object, until: object) -> None:
    for name, value in (("since", since), ("until", until)):
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise ValueError(f"{name} must be an aware datetime")


def _next(pages: Pages, keys: Sequence[Hashable], headers: Any, page: int) -> tuple[bool, int]:
    """Whether to read another page and its number: ``x-next-page`` when the answer has it
    (empty: the last page), else the next number; ``x-total`` when readable."""
    total = read_count(headers.get("x-total"))
    raw_next = headers.get("x-next-page")
    has_next: bool | None = None
    next_page = None
    if raw_next is not None:
        next_page = read_count(raw_next)
        has_next = next_page is not None
    going = pages.page(keys, total=total, next_page=next_page, has_next=has_next)
    return going, next_page if next_page is not None else page + 1


_STRUCTURERS: dict[tuple[int, type[Any]], Structurer[Any]] = {}


def _structurer(converters: Converters, cls: type[Any], vendor: str) -> Structurer[Any]:
    key = (id(converters), cls)
    found = _STRUCTURERS.get(key)
    if found is None:
        found = _STRUCTURERS[key] = Structurer(converters, cls, vendor=vendor)
    return found


def _listed(converters: Converters, vendor: str) -> Structurer[WireListedPipeline]:
    return _structurer(converters, WireListedPipeline, vendor)


def _run_item(converters: Converters, vendor: str) -> Structurer[WireRunItem]:
    return _structurer(converters, WireRunItem, vendor)


def _job_log(converters: Converters, vendor: str) -> Structurer[WireJobLog]:
    return _structurer(converters, WireJobLog, vendor)
