"""The ``yunxiao`` dialect: Alibaba Cloud Yunxiao Flow OpenAPI, header ``x-yunxiao-token``.

Three path forms serve the same run:

* ``GET /oapi/v1/flow/organizations/pipelines/{pipelineId}/runs/latestPipelineRun``
* ``GET /oapi/v1/flow/organizations/{organizationId}/pipelines/{pipelineId}/runs/latestPipelineRun``
  (the central site's form; a pipeline added with an organization answers 403 to another one)
* ``GET /oapi/v1/flow/pipelines/{pipelineId}/runs/latestPipelineRun`` (the region edition's)

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
        return (
            Route("GET", f"/oapi/v1/flow/organizations/{_TAIL}", self._latest),
            Route("GET", f"/oapi/v1/flow/organizations/{{organizationId}}/{_TAIL}", self._latest),
            Route("GET", f"/oapi/v1/flow/{_TAIL}", self._latest),
        )

    def authorized(self, request: web.Request) -> bool:
        return request.headers.get("x-yunxiao-token") == self.context.token

    def pipelines_of(self, request: web.Request, body: bytes) -> list[str]:
        return [request.match_info.get("pipelineId", "")]

    def add(self, ids: Sequence[str | int], run: RunSource, **options: Any) -> None:
        (pipeline_id,) = ids_of(self, ids, "pipeline_id")
        organization = options_of(self, options, organization_id=None)["organization_id"]
        self._pipelines[pipeline_id] = Served(
            KEY, (pipeline_id,), run, scope=None if organization is None else str(organization)
        )

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

    def _payload(self, pipeline: Served, run: SimRun) -> dict[str, Any]:
        timed = resolve_times(run)
        key = pipeline.key
        numeric = int(key) if key.isdigit() else int(stable_hex(key)[:7], 16)
        stages = []
        for s_index, stage in enumerate(run.stages):
            jobs = []
            for j_index, job in enumerate(stage.jobs):
                t = timed.jobs[s_index][j_index]
                job_id = job.id
                if job_id is None:
                    job_id = self.context.make_id(KEY, key, run.number, s_index, j_index)
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
        self, pipeline_id: str, run: RunSource, organization_id: str | None = None
    ) -> None:
        """Serve a Yunxiao pipeline; with ``organization_id`` other organizations get 403."""
        self.add_pipeline(KEY, (pipeline_id,), run, organization_id=organization_id)


DIALECT: Final = FlowDialect
