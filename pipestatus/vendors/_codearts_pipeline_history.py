"""CodeArts Pipeline v5 reads of a whole project and of one run: the pipeline list (and the
scopes built on it), run detail, run history and job logs, as a mixin of the adapter in
:mod:`pipestatus.vendors.codearts_pipeline` (which gives it its status table and its batch-item
parser). The payloads are read by the pure functions of :mod:`._codearts_pipeline_detail`;
every pager follows the one rule of :mod:`._paging`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar

import attrs

from pipestatus._sansio import Endpoint, Sender
from pipestatus.errors import NotFoundError, PipestatusError, ResponseError
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
from pipestatus.vendors._codearts_pipeline_detail import (
    Listed,
    Page,
    job_steps,
    parse_detail,
    parse_log_chunk,
    parse_pipelines_page,
    parse_runs_page,
)
from pipestatus.vendors._paging import Pages
from pipestatus.vendors._tail import Tail

__all__ = ["LIST_PAGE", "LIST_WAVE", "LOG_CHUNK", "RUNS_PAGE", "RUN_WORDS", "ProjectReads"]

logger = logging.getLogger("pipestatus.vendors.codearts_pipeline")
T = TypeVar("T")

#: Pipelines per page of the list (the vendor documents no maximum).
LIST_PAGE: Final = 100
#: List pages asked for at once once the first page said how many there are.
LIST_WAVE: Final = 10
#: Runs per page of the history.
RUNS_PAGE: Final = 50
#: Bytes asked for per step-log chunk.
LOG_CHUNK: Final = 65536
#: Chunks read of one step's log before it is refused (64 MiB at LOG_CHUNK a chunk).
LOG_MAX_CHUNKS: Final = 1024

#: The run-level words of each status, for the history's ``status`` filter.
RUN_WORDS: Final[dict[Status, tuple[str, ...]]] = {
    Status.SUCCESS: ("COMPLETED",),
    Status.RUNNING: ("RUNNING", "PAUSED", "SUSPEND"),
    Status.FAILED: ("FAILED",),
    Status.CANCELED: ("CANCELED",),
    Status.SKIPPED: ("IGNORED",),
}


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _check_window(since: object, until: object) -> None:
    for name, value in (("since", since), ("until", until)):
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise ValueError(f"{name} must be an aware datetime")


async def _together(calls: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Await ``calls`` at once, in order; the first failure cancels the others and is raised
    (no request is left running, and no failure is left unread)."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class ProjectReads(RunHistory):
    """The project-wide and per-run reads of a v5 adapter (see the module docstring)."""

    vendor: ClassVar[str]
    #: The vendor's status table, and the parser of one batch-status item (the shape of the
    #: list's ``latest_run`` and of a history item).
    _table: ClassVar[StatusTable]
    _parse_item: Callable[[object], Run]
    _transport: Sender
    _endpoint: Endpoint
    _api: str

    if TYPE_CHECKING:  # given by Adapter, after this mixin in the adapter's bases

        def _own(self, target: Target) -> None: ...
        def _target(self, *ids: str) -> Target: ...
        def _scope(self, name: object) -> Scope: ...

    def scope(self, name: str | None = None) -> Scope:
        """Every pipeline of the project whose name matches ``name`` (an ``fnmatch`` glob;
        ``None``: all), for ``Client.poll`` and ``Client.watch``: its poll is the pipeline
        list itself, one request per page."""
        return self._scope(name)

    async def pipelines(self, name: str | None = None) -> list[Pipeline]:
        """Every pipeline of the project (every page of the list), each with its latest run;
        ``name``: only those whose name matches this ``fnmatch`` glob. A pipeline whose run
        could not be read has ``latest=None`` (and is logged)."""
        found = await self.survey(self._scope(name))
        return [pipeline for pipeline, _ in found]

    async def survey(self, scope: Scope) -> list[tuple[Pipeline, Run | PipestatusError | None]]:
        self._own(scope)
        listed = await self._list_all(glob_literal(scope.name))
        vendor = self.vendor
        out: list[tuple[Pipeline, Run | PipestatusError | None]] = []
        unread = Unreadable()  # latest runs that could not be read: one log line for them all
        for item in listed:
            if not scope.matches(item.name):
                continue
            latest = item.latest
            if isinstance(latest, ResponseError):
                unread.add(latest)
            pipeline = Pipeline(
                vendor=vendor,
                id=item.pipeline_id,
                name=item.name,
                target=self._target(item.pipeline_id),
                latest=latest if isinstance(latest, Run) else None,
            )
            out.append((pipeline, latest))
        unread.log(logger, "the pipeline list's latest runs", vendor)
        return out

    async def _list_all(self, name: str | None) -> list[Listed]:
        """Every page of the list. The first page's claimed total says how many more there
        are: up to :data:`LIST_WAVE` of them are asked for at once (a total that lies high
        costs at most ``LIST_WAVE - 1`` requests more), and each is checked in order by the
        paging rule."""
        limit, vendor, parse = LIST_PAGE, self.vendor, self._parse_item
        pages = Pages("the v5 pipeline list", vendor=vendor, limit=limit)
        path = f"{self._api}/list"

        async def one(index: int) -> Page:
            body: dict[str, Any] = {
                "offset": index * limit,
                "limit": limit,
                "sort_key": "create_time",  # oldest first: a pipeline made meanwhile comes last
                "sort_dir": "asc",
            }
            if name is not None:
                body["name"] = name
            response = await self._transport.request(self._endpoint, "POST", path, json_body=body)
            return decode(
                response.json(), lambda p: parse_pipelines_page(p, parse, vendor), vendor=vendor
            )

        found: list[Listed] = []
        index, going, total = 0, True, None
        while going:
            left = 1 if total is None else -(-total // limit) - index
            for page in await _together(
                [one(index + k) for k in range(min(LIST_WAVE, max(1, left)))]
            ):
                items: list[Listed] = list(page.items)
                keys = [item.pipeline_id for item in items]
                going = pages.page(keys, total=page.total)
                found += [item for item, new in zip(items, pages.fresh(keys), strict=True) if new]
                index, total = index + 1, page.total
                if not going:
                    break
        return found

    async def run(self, pipeline_id: str | int, run_id: str | int | None = None) -> Run:
        """One run with its stages, their jobs and times (the run detail); ``run_id=None``:
        the latest run. ``Run.as_of`` is the server's clock at reply time."""
        pid = string_id(pipeline_id, "pipeline_id")
        payload = await self._detail_payload(pid, run_id)
        table = self._table
        return decode(payload, lambda p: parse_detail(p, table, pid), vendor=self.vendor)

    async def _detail_payload(self, pipeline_id: str, run_id: str | int | None) -> Any:
        params = None if run_id is None else {"pipeline_run_id": string_id(run_id, "run_id")}
        response = await self._transport.request(
            self._endpoint,
            "GET",
            f"{self._api}/{segment(pipeline_id)}/pipeline-runs/detail",
            params=params,
        )
        return response.json()

    async def detail(self, run: Run) -> Run:
        """``run`` read in detail; what the detail lacks and the status had (the branch and
        commit of its build parameters, its page, its trigger) is kept from ``run``."""
        found = await self.run(run.pipeline_id, run.run_id)
        return attrs.evolve(
            found,
            ref=found.ref or run.ref,
            sha=found.sha or run.sha,
            url=found.url or run.url,
            trigger=found.trigger or run.trigger,
        )

    async def runs(
        self,
        pipeline_id: str | int,
        since: datetime | None = None,
        status: Status | None = None,
        *,
        until: datetime | None = None,
    ) -> AsyncIterator[Run]:
        """The pipeline's runs, newest first (by start time), page by page.

        ``since``: only runs that started at or after it (a run not started yet counts as
        new); paging stops at the first older run. ``status``: only runs of that status (the
        vendor filters by its words, and every run is checked again here). ``until``: the
        vendor's ``end_time`` bound. Runs that cannot be read are logged and skipped.
        """
        pid = string_id(pipeline_id, "pipeline_id")
        _check_window(since, until)
        path = f"{self._api}/{segment(pid)}/pipeline-runs/list"
        limit, vendor, parse = RUNS_PAGE, self.vendor, self._parse_item
        pages = Pages("the v5 run list", vendor=vendor, limit=limit)
        offset, going = 0, True
        while going:
            body: dict[str, Any] = {
                "offset": offset,
                "limit": limit,
                "sort_key": "start_time",
                "sort_dir": "desc",
            }
            if status is not None and RUN_WORDS.get(status):
                body["status"] = list(RUN_WORDS[status])
            if since is not None:
                body["start_time"] = _ms(since)
            if until is not None:
                body["end_time"] = _ms(until)
            response = await self._transport.request(self._endpoint, "POST", path, json_body=body)
            page = decode(
                response.json(),
                lambda p: parse_runs_page(p, parse, vendor, pid),
                vendor=vendor,
            )
            keys = [
                (item.run_id or item.number or f"run-{offset + i}")
                if isinstance(item, Run)
                else f"bad-{offset + i}"
                for i, item in enumerate(page.items)
            ]
            going = pages.page(keys, total=page.total)
            offset += len(page.items)
            unread = [item for item in page.items if isinstance(item, ResponseError)]
            if unread:  # one line for the page, however many
                logger.warning(
                    "%s: %d run(s) of a run history page could not be read; the first: %s",
                    vendor,
                    len(unread),
                    unread[0].message,
                )
            for item, new in zip(page.items, pages.fresh(keys), strict=True):
                if isinstance(item, ResponseError):
                    continue
                if not new:
                    continue
                if since is not None and item.started_at is not None and item.started_at < since:
                    return  # newest first: every later run is older
                if status is None or item.status is status:
                    yield item

    async def log(
        self,
        pipeline_id: str | int,
        run_id: str | int,
        job_id: str | int,
        max_bytes: int = 65536,
    ) -> str:
        """The last ``max_bytes`` bytes of a job's log (its steps' logs in order, each paged by
        offset), decoded as UTF-8 with undecodable bytes replaced; never more held."""
        pid = string_id(pipeline_id, "pipeline_id")
        rid = string_id(run_id, "run_id")
        jid = string_id(job_id, "job_id")
        tail = Tail(max_bytes)
        payload = await self._detail_payload(pid, rid)
        steps = decode(payload, lambda p: job_steps(p, jid), vendor=self.vendor)
        if steps is None:
            raise NotFoundError(
                status=404, vendor=self.vendor, message=f"run {rid} has no job {jid}"
            )
        base = f"{self._api}/{segment(pid)}/pipeline-runs/{segment(rid)}/jobs/{segment(jid)}"
        for step in steps:
            path = f"{base}/steps/{segment(step)}/logs"
            pages = Pages(
                f"the log of step {step}", vendor=self.vendor, limit=1, max_pages=LOG_MAX_CHUNKS
            )
            start = 0
            while True:
                body = {
                    "start_offset": start,
                    "end_offset": start + LOG_CHUNK,
                    "limit": LOG_CHUNK,
                    "sort": "asc",
                }
                response = await self._transport.request(
                    self._endpoint, "POST", path, json_body=body
                )
                chunk = decode(response.json(), parse_log_chunk, vendor=self.vendor)
                tail.add(chunk.text)
                end = chunk.end_offset
                # One key per chunk, its end: a chunk that ends where the last one did repeats.
                if not pages.page([end], has_next=chunk.has_more):
                    break
                if end is None or end <= start:
                    raise ResponseError(
                        f"the log of step {step} did not move past offset {start}",
                        vendor=self.vendor,
                    )
                start = end
        return tail.text()
