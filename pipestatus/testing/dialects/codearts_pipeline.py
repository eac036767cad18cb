"""The ``codearts_pipeline`` dialect: Huawei CodeArts Pipeline API v5, header ``X-Auth-Token``
or an AK/SK signature (checked by the Huawei cloud of :mod:`._huawei`, which also serves IAM).

* ``POST /v5/{project_id}/api/pipelines/status`` with a JSON array of pipeline IDs: one item
  per pipeline; unknown IDs and pipelines without a run are silently omitted, like the real API.
  Run times are epoch milliseconds, stage times naive China Standard Time strings.

Its words differ by level (:data:`V5_RUN_STATUS`, :data:`V5_STAGE_STATUS`): a queued run is
``QUEUED`` but a stage not started yet ``INIT``; a skipped run is ``IGNORED``. v5 has no timeout
word, so a timed-out run reads ``FAILED``. Its error bodies are invented in Huawei's shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from aiohttp import web

from pipestatus.testing._answers import Answer
from pipestatus.testing._sim import RunSource, Served, SimRun, resolve_times, stable_hex, word
from pipestatus.testing.dialects._base import (
    Context,
    Dialect,
    Route,
    epoch_ms,
    ids_of,
    naive_cst,
    options_of,
)
from pipestatus.testing.dialects._huawei import HuaweiHost, cloud_of

__all__ = [
    "DIALECT",
    "ERROR_BODIES",
    "KEY",
    "V5_RUN_STATUS",
    "V5_STAGE_STATUS",
    "BatchDialect",
    "Pipelines",
]

KEY: Final = "codearts_pipeline"

#: CodeArts Pipeline v5, pipeline level: a queued run is QUEUED, a skipped one IGNORED.
V5_RUN_STATUS: Final[Mapping[str, str]] = {
    "pending": "QUEUED",
    "running": "RUNNING",
    "success": "COMPLETED",
    "failed": "FAILED",
    "canceled": "CANCELED",
    "skipped": "IGNORED",
    "timedout": "FAILED",  # v5 has no timeout word
}

#: CodeArts Pipeline v5, stage level: a stage that has not started yet is INIT.
V5_STAGE_STATUS: Final[Mapping[str, str]] = {
    "pending": "INIT",
    "running": "RUNNING",
    "success": "COMPLETED",
    "failed": "FAILED",
    "canceled": "CANCELED",
    "skipped": "SKIPPED",
    "timedout": "FAILED",  # v5 has no timeout word
}

ERROR_BODIES: Final[Mapping[int, Mapping[str, str]]] = {
    400: {
        "error_code": "DEVPIPE.00011001",  # invented
        "error_msg": "Invalid request body: expected a JSON array of pipeline ID strings.",
    },
    401: {
        "error_code": "APIGW.0301",  # API gateway style, invented
        "error_msg": "Incorrect IAM authentication information: decrypt token fail",
    },
    404: {
        "error_code": "DEVPIPE.00011104",  # invented
        "error_msg": "The project does not exist.",
    },
}


class BatchDialect(Dialect):
    """CodeArts Pipeline v5 pipelines by ``pipeline_id``, each in one project."""

    key = KEY
    error_bodies = ERROR_BODIES
    standalone_option = ("--v5", 'static v5 pipelines "proj"/p0001..')

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self._projects: dict[str, dict[str, Served]] = {}
        self.cloud = cloud_of(context)

    def routes(self) -> Sequence[Route]:
        return (Route("POST", "/v5/{project_id}/api/pipelines/status", self._status),)

    def services(self) -> Sequence[Route]:
        return self.cloud.routes()

    def authorized(self, request: web.Request) -> bool:
        return self.refusal(request, b"") is None

    def refusal(self, request: web.Request, body: bytes) -> Answer | None:
        """The gateway's 401 for the request's credentials, or ``None`` when they are good
        (a token, or an AK/SK signature: :mod:`pipestatus.testing.dialects._huawei`)."""
        return self.cloud.check(request, body, self.error(401))

    def pipelines_of(self, request: web.Request, body: bytes) -> list[str]:
        try:
            ids = json.loads(body)
        except ValueError:
            return []
        return [str(i) for i in ids] if isinstance(ids, list) else []

    def add(self, ids: Sequence[str | int], run: RunSource, **options: Any) -> None:
        (pipeline_id,) = ids_of(self, ids, "pipeline_id")
        project = options_of(self, options, project_id=None)["project_id"]
        if project is None:
            raise TypeError(f"{KEY} pipelines need a project_id")
        project = str(project)
        self._projects.setdefault(project, {})[pipeline_id] = Served(
            KEY, (pipeline_id,), run, scope=project
        )

    def pipelines(self) -> list[Served]:
        return [pipeline for project in self._projects.values() for pipeline in project.values()]

    @classmethod
    def static(cls, n: int) -> tuple[tuple[str, ...], dict[str, Any]]:
        return (f"p{n:04d}",), {"project_id": "proj"}

    # -- the handler ---------------------------------------------------------------------------

    async def _status(self, request: web.Request, body: bytes) -> Answer:
        refused = self.refusal(request, body)
        if refused is not None:
            return refused
        project = self._projects.get(request.match_info["project_id"])
        if project is None:
            return self.error(404)
        try:
            ids = json.loads(body)
        except ValueError:
            ids = None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return self.error(400)
        elapsed = self.context.elapsed()
        items = []
        for pipeline_id in dict.fromkeys(ids):
            pipeline = project.get(pipeline_id)
            run = pipeline.current(elapsed) if pipeline is not None else None
            if pipeline is not None and run is not None:
                items.append(_item(pipeline, run))
        return Answer(200, items)


def _item(pipeline: Served, run: SimRun) -> dict[str, Any]:
    """One item of the batch answer."""
    timed = resolve_times(run)
    stages = [
        {
            "name": stage.name,
            "sequence": index,
            "status": word(stage.effective_status, V5_STAGE_STATUS),
            "start_time": naive_cst(timed.stages[index].started),
            "end_time": naive_cst(timed.stages[index].finished),
        }
        for index, stage in enumerate(run.stages)
    ]
    run_id = stable_hex("v5run", pipeline.key, run.number)
    base = "https://devcloud.example.com/cicd/project/sim/pipeline"
    return {
        "pipeline_id": pipeline.key,
        "pipeline_run_id": run_id,
        "executor_id": stable_hex("executor"),
        "executor_name": "Simulated user",
        "stage_status_list": stages,
        "status": word(run.status, V5_RUN_STATUS),
        "run_number": run.number,
        "trigger_type": "Manual",
        "build_params": {
            "action": None,
            "build_type": "branch",
            "commit_id": run.sha,
            "event_type": "Manual",
            "merge_id": None,
            "message": f"Simulated commit for run {run.number}",
            "source_branch": None,
            "tag": None,
            "target_branch": run.ref,
            "codehub_id": "2111699716",
            "git_url": f"https://example.com/sim/{pipeline.key}.git",
        },
        "artifact_params": None,
        "start_time": epoch_ms(timed.run.started or timed.run.created),
        "end_time": epoch_ms(timed.run.finished),
        "detail_url": f"{base}/detail/{pipeline.key}/{run_id}",
        "modify_url": f"{base}/edit/{pipeline.key}",
    }


class Pipelines(HuaweiHost):
    """``VendorServer.add_v5_pipeline``."""

    __slots__ = ()

    def add_v5_pipeline(self, project_id: str, pipeline_id: str, run: RunSource) -> None:
        """Serve a CodeArts Pipeline v5 pipeline; ``run=None``: no runs, omitted from answers."""
        self.add_pipeline(KEY, (pipeline_id,), run, project_id=project_id)


DIALECT: Final = BatchDialect
