"""The ``yunxiao`` dialect: Alibaba Cloud Yunxiao Flow OpenAPI, header ``x-yunxiao-token``.

Three path forms serve the same run:

* ``GET /oapi/v1/flow/organizations/pipelines/{pipelineId}/runs/latestPipelineRun``
* ``GET /oapi/v1/flow/organizations/{organizationId}/pipelines/{pipelineId}/runs/latestPipelineRun``
  (the central site's form; a pipeline added with an organization answers 403 to another one)
* ``GET /oapi/v1/flow/pipelines/{pipelineId}/runs/latestPipelineRun`` (the region edition's)

The organization's reads, under each of the three prefixes: ``GET …/pipelines`` (``page``,
``perPage`` capped at 30, ``pipelineName`` as a substring; ``x-next-page``/``x-total`` headers),
``GET …/pipelines/{id}/runs`` (the current run and its history, newest first; ``status``,
``startTime`` and ``endTme``, the vendor's spelling), ``GET …/pipelines/{id}/runs/{runId}``
(one run, shaped as the latest) and ``GET …/runs/{runId}/job/{jobId}/log`` (``{content, last,
more}``: the job's ``SimJob.log``). The lists misbehave on demand (``VendorServer.paging``).

One table of words serves runs, stages and jobs (:data:`YUNXIAO_STATUS`). Times are epoch
milliseconds; each job's ``result`` is a JSON document in a string, as the vendor sends it. The
error bodies are all invented, in the vendor's ``errorCode``/``errorMessage`` shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from aiohttp import web

from pipestatus.testing._answers import Answer
from pipestatus.testing._sim import (
    RunSource,
    Served,
    SimRun,
    canonical,
    job_log,
    resolve_times,
    stable_hex,
    word,
)
from pipestatus.testing.dialects._base import (
    Context,
    Dialect,
    Host,
    Route,
    epoch_ms,
    ids_of,
    options_of,
    page_of,
)

__all__ = ["DIALECT", "ERROR_BODIES", "KEY", "YUNXIAO_STATUS", "FlowDialect", "Pipelines"]

KEY: Final = "yunxiao"

#: Yunxiao Flow, for runs, stages and jobs alike.
YUNXIAO_STATUS: Final[Mapping[str, str]] = {
    "pending": "WAITING",
    "running": "RUNNING",
    "success": "SUCCESS",
    "failed": "FAIL",
    "canceled": "CANCELED",
    "skipped": "SKIPPED",
    "timedout": "TIMEOUT",
}

ERROR_BODIES: Final[Mapping[int, Mapping[str, str]]] = {  # all invented
    401: {"errorCode": "Unauthorized", "errorMessage": "Invalid or expired token."},
    403: {
        "errorCode": "Forbidden",
        "errorMessage": "You do not have permission to access this organization.",
    },
    404: {"errorCode": "NotFound", "errorMessage": "The pipeline or its run does not exist."},
}

_TAIL: Final = "pipelines/{pipelineId}/runs/latestPipelineRun"


class FlowDialect(Dialect):
    """Yunxiao Flow pipelines by ``pipelineId``, optionally in one organization."""

    key = KEY
    error_bodies = ERROR_BODIES
    standalone_option = ("--yunxiao", 'static Yunxiao pipelines "1"..N')

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self._pipelines: dict[str, Served] = {}

    def routes(self) -> Sequence[Route]:
        prefixes = (
            "/oapi/v1/flow/organizations/",
            "/oapi/v1/flow/organizations/{organizationId}/",
            "/oapi/v1/flow/",
        )
        routes = [Route("GET", f"{prefix}{_TAIL}", self._latest) for prefix in prefixes]
        for prefix in prefixes:  # after latestPipelineRun, which {runId} would also match
            runs = f"{prefix}pipelines/{{pipelineId}}/runs"
            routes += [
                Route("GET", f"{prefix}pipelines", self._list),
                Route("GET", runs, self._runs),
                Route("GET", f"{runs}/{{runId}}", self._run),
                Route("GET", f"{runs}/{{runId}}/job/{{jobId}}/log", self._log),
            ]
        return routes

    def authorized(self, request: web.Request) -> bool:
        return request.headers.get("x-yunxiao-token") == self.context.token

    def pipelines_of(self, request: web.Request, body: bytes) -> list[str]:
        found = request.match_info.get("pipelineId")
        return [] if found is None else [found]

    def add(self, ids: Sequence[str | int], run: RunSource, **options: Any) -> None:
        (pipeline_id,) = ids_of(self, ids, "pipeline_id")
        given = options_of(self, options, organization_id=None, name=None, history=())
        organization = given["organization_id"]
        self._pipelines[pipeline_id] = Served(
            KEY,
            (pipeline_id,),
            run,
            scope=None if organization is None else str(organization),
            name=given["name"],
            history=tuple(given["history"]),
        )

    def remove(self, ids: Sequence[str | int], **options: Any) -> None:
        (pipeline_id,) = ids_of(self, ids, "pipeline_id")
        self._pipelines.pop(pipeline_id, None)

    def pipelines(self) -> list[Served]:
        return list(self._pipelines.values())

    @classmethod
    def static(cls, n: int) -> tuple[tuple[str, ...], dict[str, Any]]:
        return (str(n),), {}

    # -- the handler ---------------------------------------------------------------------------

    async def _latest(self, request: web.Request, body: bytes) -> Answer:
        if not self.authorized(request):
            return self.error(401)
        pipeline = self._pipelines.get(request.match_info["pipelineId"])
        if pipeline is None:
            return self.error(404)
        org = request.match_info.get("organizationId")
        if org is not None and pipeline.scope not in (None, org):
            return self.error(403)
        run = pipeline.current(self.context.elapsed())
        if run is None:
            return self.error(404)
        return Answer(200, self._payload(pipeline, run))

    # -- the organization's reads ----------------------------------------------------------------

    def _visible(self, request: web.Request) -> list[Served] | None:
        """The pipelines the request's path form sees; ``None``: not authorized."""
        if not self.authorized(request):
            return None
        org = request.match_info.get("organizationId")
        return [p for p in self._pipelines.values() if org is None or p.scope in (None, org)]

    def _one(self, request: web.Request) -> Served | Answer:
        visible = self._visible(request)
        if visible is None:
            return self.error(401)
        found = self._pipelines.get(request.match_info["pipelineId"])
        if found is None or found not in visible:
            return self.error(404)
        return found

    def _paged(self, request: web.Request, count: int) -> tuple[range, dict[str, str]]:
        page = max(1, _int(request.query.get("page"), 1))
        per_page = min(30, max(1, _int(request.query.get("perPage"), 10)))
        positions, total = page_of(count, (page - 1) * per_page, per_page, self.quirks)
        pages = max(1, -(-total // per_page))
        headers = {
            "x-page": str(page),
            "x-per-page": str(per_page),
            "x-total": str(total),
            "x-total-pages": str(pages),
            "x-next-page": str(page + 1) if page < pages else "",
            "x-prev-page": str(page - 1) if page > 1 else "",
        }
        return positions, headers

    async def _list(self, request: web.Request, body: bytes) -> Answer:
        visible = self._visible(request)
        if visible is None:
            return self.error(401)
        name = request.query.get("pipelineName")
        if name:
            visible = [p for p in visible if name in _name(p)]
        positions, headers = self._paged(request, len(visible))
        items = [
            {
                "pipelineId": _numeric(visible[i].key),
                "pipelineName": _name(visible[i]),
                "createAccountId": "1222222222",
                "createTime": 1_700_000_000_000 + i,
            }
            for i in positions
        ]
        return Answer(200, items, headers)

    async def _runs(self, request: web.Request, body: bytes) -> Answer:
        found = self._one(request)
        if isinstance(found, Answer):
            return found
        runs = found.runs(self.context.elapsed())
        status = request.query.get("status")
        if status:
            runs = [r for r in runs if word(r.status, YUNXIAO_STATUS) == status]
        start, end = _int(request.query.get("startTime"), -1), _int(request.query.get("endTme"), -1)
        runs = [r for r in runs if _in_window(r, start, end)]
        positions, headers = self._paged(request, len(runs))
        items = []
        for i in positions:
            times = resolve_times(runs[i]).run
            items.append(
                {
                    "pipelineRunId": runs[i].number,
                    "pipelineId": _numeric(found.key),
                    "status": word(runs[i].status, YUNXIAO_STATUS),
                    "startTime": epoch_ms(times.started),
                    "endTime": epoch_ms(times.finished),
                    "triggerMode": 1,
                    "creatorAccountId": "1222222222",
                }
            )
        return Answer(200, items, headers)

    def _find(self, pipeline: Served, run_id: str) -> SimRun | None:
        runs = pipeline.runs(self.context.elapsed())
        return next((r for r in runs if str(r.number) == run_id), None)

    async def _run(self, request: web.Request, body: bytes) -> Answer:
        found = self._one(request)
        if isinstance(found, Answer):
            return found
        run = self._find(found, request.match_info["runId"])
        if run is None:
            return self.error(404)
        payload = self._payload(found, run)
        del payload["pipelineId"], payload["pipelineRunId"]  # the documented shape has neither
        return Answer(200, payload)

    async def _log(self, request: web.Request, body: bytes) -> Answer:
        found = self._one(request)
        if isinstance(found, Answer):
            return found
        run = self._find(found, request.match_info["runId"])
        for s_index, stage in enumerate(run.stages if run is not None else ()):
            for j_index, job in enumerate(stage.jobs):
                assert run is not None
                if str(self._job_id(found, run, s_index, j_index)) == request.match_info["jobId"]:
                    return Answer(200, {"content": job_log(job), "last": 0, "more": False})
        return self.error(404)

    def _job_id(self, pipeline: Served, run: SimRun, s_index: int, j_index: int) -> int:
        job = run.stages[s_index].jobs[j_index]
        if job.id is not None:
            return job.id
        return self.context.make_id(KEY, pipeline.key, run.number, s_index, j_index)

    def _payload(self, pipeline: Served, run: SimRun) -> dict[str, Any]:
        timed = resolve_times(run)
        key = pipeline.key
        numeric = _numeric(key)
        stages = []
        for s_index, stage in enumerate(run.stages):
            jobs = []
            for j_index, job in enumerate(stage.jobs):
                t = timed.jobs[s_index][j_index]
                job_id = self._job_id(pipeline, run, s_index, j_index)
                result = {
                    "data": {"RELEASE_INFO": "[]", "ARTIFACTSV2": "[]", "ARTIFACTS": "[]"},
                    "requestId": stable_hex("request", job_id, run.number),
                    "successful": canonical(job.status) not in ("failed", "timedout"),
                }
                jobs.append(
                    {
                        "actions": [
                            {
                                "data": "",
                                "disable": True,
                                "displayType": "LOG",
                                "name": "Build log",
                                "order": 1,
                                "params": {"key": ""},
                                "title": "Build log",
                                "type": "GetVMDeployOrder",
                            }
                        ],
                        "endTime": epoch_ms(t.finished),
                        "id": job_id,
                        "jobSign": f"job-{s_index}-{j_index}",
                        "name": job.name,
                        "params": "{}",
                        "result": json.dumps(result, separators=(",", ":")),
                        "startTime": epoch_ms(t.started),
                        "status": word(job.status, YUNXIAO_STATUS),
                    }
                )
            stage_times = timed.stages[s_index]
            stages.append(
                {
                    "index": f"Group0-Stage{s_index}",
                    "name": stage.name,
                    "stageInfo": {
                        "endTime": epoch_ms(stage_times.finished),
                        "jobs": jobs,
                        "name": stage.name,
                        "startTime": epoch_ms(stage_times.started),
                        "status": word(stage.effective_status, YUNXIAO_STATUS),
                    },
                }
            )
        updated = timed.run.finished or timed.run.started or timed.run.created
        return {
            "createTime": epoch_ms(timed.run.created),
            "creatorAccountId": "1222222222",
            "globalParams": [{"encrypted": False, "key": "key", "value": "value"}],
            "groups": [{"id": 1, "name": "Run command"}],
            "modifierAccountId": "1222222222",
            "pipelineId": numeric,
            "pipelineRunId": run.number,
            "pipelineType": "default",
            "sources": [_source(run, key)],
            "stageGroup": [],
            "stages": stages,
            "status": word(run.status, YUNXIAO_STATUS),
            "triggerMode": 1,
            "updateTime": epoch_ms(updated),
        }


def _numeric(key: str) -> int:
    return int(key) if key.isdigit() else int(stable_hex(key)[:7], 16)


def _name(pipeline: Served) -> str:
    return pipeline.name if pipeline.name is not None else f"pipeline-{pipeline.key}"


def _int(value: str | None, default: int) -> int:
    return int(value) if value is not None and value.isdigit() and len(value) < 19 else default


def _in_window(run: SimRun, start: int, end: int) -> bool:
    started = epoch_ms(resolve_times(run).run.started)
    if started is None:
        return True  # not started yet: in every window
    return not (start >= 0 and started < start) and not (0 <= end < started)


def _source(run: SimRun, key: str) -> dict[str, Any]:
    """The run's code source, as the vendor's example shows one."""
    return {
        "data": {
            "branch": run.ref,
            "cloneDepth": 1,
            "credentialId": 222,
            "credentialLabel": "Enterprise public key",
            "credentialType": "region-ssh",
            "events": [],
            "isBranchMode": False,
            "isCloneDepth": True,
            "isSubmodule": False,
            "isTrigger": True,
            "label": "sim/repo",
            "namespace": "sim",
            "repo": "https://codeup.aliyun.com/sim/repo.git",
            "serviceConnectionId": 12,
            "triggerFilter": ".*",
            "webhook": "https://flow.aliyun/webhook/sim",
        },
        "name": "Sample source",
        "sign": stable_hex("source", key, length=16),
        "type": "Codeup",
    }


class Pipelines(Host):
    """``VendorServer.add_yunxiao_pipeline``."""

    __slots__ = ()

    def add_yunxiao_pipeline(
        self,
        pipeline_id: str,
        run: RunSource,
        organization_id: str | None = None,
        *,
        name: str | None = None,
        history: Sequence[SimRun] = (),
    ) -> None:
        """Serve a Yunxiao pipeline; with ``organization_id`` other organizations get 403.
        ``name`` is its name in the list (default ``pipeline-<id>``); ``history``, its
        earlier runs."""
        self.add_pipeline(
            KEY,
            (pipeline_id,),
            run,
            organization_id=organization_id,
            name=name,
            history=history,
        )


DIALECT: Final = FlowDialect
