"""The ``codearts_pipeline`` dialect: Huawei CodeArts Pipeline API v5, header ``X-Auth-Token``
or an AK/SK signature (checked by the Huawei cloud of :mod:`._huawei`, which also serves IAM).

* ``POST /v5/{project_id}/api/pipelines/status`` with a JSON array of pipeline IDs: one item
  per pipeline; unknown IDs and pipelines without a run are silently omitted, like the real API.
  Run times are epoch milliseconds, stage times naive China Standard Time strings.
* ``POST .../pipelines/list`` (``offset``, ``limit``, ``name`` as a substring): the project's
  pipelines in the order they were added, each with its ``latest_run`` as in the batch answer;
  only the page asked for is rendered, so a project of 10,000 costs a page at a time.
* ``GET .../pipelines/{id}/pipeline-runs/detail[?pipeline_run_id=]``: a run with stages, jobs
  and steps (epoch milliseconds throughout) and ``current_system_time``.
* ``POST .../pipelines/{id}/pipeline-runs/list`` (``offset``, ``limit``, ``status[]``,
  ``start_time``, ``end_time``): the current run and its history, newest first.
* ``POST .../pipeline-runs/{run}/jobs/{job}/steps/{step}/logs``: each job has two steps
  (``checkout`` and the job's own, whose log is ``SimJob.log``), served in chunks of ``limit``
  characters from ``start_offset``.

The lists misbehave on demand (``VendorServer.paging``: a repeated page, a lying total, an
empty page, a step log that never moves on).

(Past 500 lines: the five routes share the rendering of one run, its IDs and times; split the
handlers from the payload builders when another endpoint comes.)

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
from pipestatus.testing._sim import (
    RunSource,
    Served,
    SimJob,
    SimRun,
    job_log,
    resolve_times,
    stable_hex,
    word,
)
from pipestatus.testing.dialects._base import (
    Context,
    Dialect,
    Route,
    epoch_ms,
    ids_of,
    naive_cst,
    options_of,
    page_of,
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
        api = "/v5/{project_id}/api/pipelines"
        runs = f"{api}/{{pipeline_id}}/pipeline-runs"
        return (
            Route("POST", f"{api}/status", self._status),
            Route("POST", f"{api}/list", self._list),
            Route("GET", f"{runs}/detail", self._detail),
            Route("POST", f"{runs}/list", self._runs),
            Route("POST", f"{runs}/{{run_id}}/jobs/{{job_id}}/steps/{{step_id}}/logs", self._log),
        )

    def services(self) -> Sequence[Route]:
        return self.cloud.routes()

    def authorized(self, request: web.Request) -> bool:
        return self.refusal(request, b"") is None

    def refusal(self, request: web.Request, body: bytes) -> Answer | None:
        """The gateway's 401 for the request's credentials, or ``None`` when they are good
        (a token, or an AK/SK signature: :mod:`pipestatus.testing.dialects._huawei`)."""
        return self.cloud.check(request, body, self.error(401))

    def pipelines_of(self, request: web.Request, body: bytes) -> list[str]:
        if "pipeline_id" in request.match_info:
            return [request.match_info["pipeline_id"]]
        if not request.path.endswith("/status"):
            return []
        try:
            ids = json.loads(body)
        except ValueError:
            return []
        return [str(i) for i in ids] if isinstance(ids, list) else []

    def add(self, ids: Sequence[str | int], run: RunSource, **options: Any) -> None:
        (pipeline_id,) = ids_of(self, ids, "pipeline_id")
        given = options_of(self, options, project_id=None, name=None, history=())
        project = given["project_id"]
        if project is None:
            raise TypeError(f"{KEY} pipelines need a project_id")
        project = str(project)
        self._projects.setdefault(project, {})[pipeline_id] = Served(
            KEY,
            (pipeline_id,),
            run,
            scope=project,
            name=given["name"],
            history=tuple(given["history"]),
        )

    def remove(self, ids: Sequence[str | int], **options: Any) -> None:
        (pipeline_id,) = ids_of(self, ids, "pipeline_id")
        project = str(options_of(self, options, project_id=None)["project_id"])
        self._projects.get(project, {}).pop(pipeline_id, None)

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

    # -- the project's reads ---------------------------------------------------------------------

    def _project(self, request: web.Request) -> dict[str, Served] | None:
        return self._projects.get(request.match_info["project_id"])

    def _query(self, body: bytes) -> dict[str, Any] | None:
        try:
            query = json.loads(body) if body else {}
        except ValueError:
            return None
        return query if isinstance(query, dict) else None

    async def _list(self, request: web.Request, body: bytes) -> Answer:
        refused = self.refusal(request, body)
        if refused is not None:
            return refused
        project, query = self._project(request), self._query(body)
        if project is None:
            return self.error(404)
        if query is None:
            return self.error(400)
        offset, limit = _int(query.get("offset"), 0), _int(query.get("limit"), 10)
        name = query.get("name")
        pipelines = list(project.values())
        if isinstance(name, str) and name:
            pipelines = [p for p in pipelines if name in _name(p)]
        positions, total = page_of(len(pipelines), offset, limit, self.quirks)
        elapsed = self.context.elapsed()
        items = []
        for position in positions:  # only this page is rendered
            pipeline = pipelines[position]
            run = pipeline.current(elapsed)
            items.append(
                {
                    "pipeline_id": pipeline.key,
                    "name": _name(pipeline),
                    "project_id": pipeline.scope,
                    "project_name": "Simulated project",
                    "component_id": None,
                    "is_publish": False,
                    "is_collect": False,
                    "manifest_version": "3.0",
                    "create_time": 1_700_000_000_000 + position,
                    "latest_run": None if run is None else _item(pipeline, run),
                    "convert_sign": None,
                    "security_level": None,
                }
            )
        return Answer(200, {"offset": offset, "limit": limit, "total": total, "pipelines": items})

    def _pipeline(self, request: web.Request) -> Served | None:
        project = self._project(request)
        return None if project is None else project.get(request.match_info["pipeline_id"])

    def _find_run(self, pipeline: Served, run_id: str | None) -> SimRun | None:
        runs = pipeline.runs(self.context.elapsed())
        if run_id is None:
            return runs[0] if runs else None
        return next((r for r in runs if _run_id(pipeline, r) == run_id), None)

    async def _detail(self, request: web.Request, body: bytes) -> Answer:
        refused = self.refusal(request, body)
        if refused is not None:
            return refused
        pipeline = self._pipeline(request)
        if pipeline is None:
            return self.error(404)
        run = self._find_run(pipeline, request.query.get("pipeline_run_id"))
        if run is None:
            return self.error(404)
        return Answer(200, _detail(pipeline, run, self.context))

    async def _runs(self, request: web.Request, body: bytes) -> Answer:
        refused = self.refusal(request, body)
        if refused is not None:
            return refused
        pipeline, query = self._pipeline(request), self._query(body)
        if pipeline is None:
            return self.error(404)
        if query is None:
            return self.error(400)
        runs = pipeline.runs(self.context.elapsed())
        words = query.get("status")
        if isinstance(words, list) and words:
            runs = [r for r in runs if word(r.status, V5_RUN_STATUS) in words]
        start, end = query.get("start_time"), query.get("end_time")
        if isinstance(start, int) or isinstance(end, int):
            runs = [r for r in runs if _in_window(r, start, end)]
        offset, limit = _int(query.get("offset"), 0), _int(query.get("limit"), 10)
        positions, total = page_of(len(runs), offset, limit, self.quirks)
        items = [_item(pipeline, runs[position]) for position in positions]
        return Answer(
            200, {"offset": offset, "limit": limit, "total": total, "pipeline_runs": items}
        )

    async def _log(self, request: web.Request, body: bytes) -> Answer:
        refused = self.refusal(request, body)
        if refused is not None:
            return refused
        pipeline, query = self._pipeline(request), self._query(body)
        if pipeline is None:
            return self.error(404)
        if query is None:
            return self.error(400)
        run = self._find_run(pipeline, request.match_info["run_id"])
        step_id = request.match_info["step_id"]
        text = None if run is None else _step_log(pipeline, run, request.match_info, step_id)
        if text is None:
            return self.error(404)
        start = _int(query.get("start_offset"), 0)
        limit = _int(query.get("limit"), 1000)
        if self.quirks.stuck_log:
            return Answer(
                200,
                {
                    "has_more": True,
                    "start_offset": 0,
                    "end_offset": 0,
                    "log": text[:limit],
                    "step_run_id": step_id,
                },
            )
        chunk = text[start : start + limit]
        end = start + len(chunk)
        return Answer(
            200,
            {
                "has_more": end < len(text),
                "start_offset": start,
                "end_offset": end,
                "log": chunk,
                "step_run_id": step_id,
            },
        )


def _int(value: object, default: int) -> int:
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default
    )


def _name(pipeline: Served) -> str:
    return pipeline.name if pipeline.name is not None else f"pipeline-{pipeline.key}"


def _run_id(pipeline: Served, run: SimRun) -> str:
    return stable_hex("v5run", pipeline.key, run.number)


def _job_id(pipeline: Served, run: SimRun, stage: int, index: int, job: SimJob) -> str:
    if job.id is not None:
        return str(job.id)
    return stable_hex("v5job", pipeline.key, run.number, stage, index)


def _steps(job_id: str) -> tuple[str, str]:
    return stable_hex("v5step", job_id, 0), stable_hex("v5step", job_id, 1)


def _step_log(pipeline: Served, run: SimRun, match: Mapping[str, str], step_id: str) -> str | None:
    for s_index, stage in enumerate(run.stages):
        for j_index, job in enumerate(stage.jobs):
            job_id = _job_id(pipeline, run, s_index, j_index, job)
            if job_id != match["job_id"]:
                continue
            checkout, own = _steps(job_id)
            if step_id == checkout:
                return f"checkout {run.ref} @ {run.sha[:8]}\n"
            return job_log(job) if step_id == own else None
    return None


def _in_window(run: SimRun, start: object, end: object) -> bool:
    started = epoch_ms(resolve_times(run).run.started)
    if started is None:
        return True  # not started yet: in every window
    if isinstance(start, int) and started < start:
        return False
    return not (isinstance(end, int) and started > end)


def _detail(pipeline: Served, run: SimRun, context: Context) -> dict[str, Any]:
    """The run detail: stages with jobs and steps, epoch milliseconds throughout."""
    timed = resolve_times(run)
    stages = []
    for s_index, stage in enumerate(run.stages):
        jobs = []
        for j_index, job in enumerate(stage.jobs):
            times = timed.jobs[s_index][j_index]
            job_id = _job_id(pipeline, run, s_index, j_index, job)
            status = word(job.status, V5_STAGE_STATUS)
            steps = [
                {
                    "id": step_id,
                    "name": name,
                    "task": "official_shell_plugin",
                    "sequence": k,
                    "status": "COMPLETED" if k == 0 and job.status != "pending" else status,
                    "start_time": epoch_ms(times.started),
                    "end_time": epoch_ms(times.finished),
                    "message": None,
                }
                for k, (step_id, name) in enumerate(
                    zip(_steps(job_id), ("checkout", job.name), strict=True)
                )
            ]
            jobs.append(
                {
                    "id": job_id,
                    "category": "Build",
                    "sequence": j_index,
                    "async": False,
                    "name": job.name,
                    "identifier": f"JOB_{s_index}_{j_index}",
                    "status": status,
                    "message": None,
                    "start_time": epoch_ms(times.started),
                    "end_time": epoch_ms(times.finished),
                    "steps": steps,
                    "exec_id": stable_hex("exec", job_id, length=16),
                }
            )
        stage_times = timed.stages[s_index]
        stages.append(
            {
                "id": stable_hex("v5stage", pipeline.key, run.number, s_index),
                "category": None,
                "name": stage.name,
                "identifier": f"STAGE_{s_index}",
                "sequence": s_index,
                "status": word(stage.effective_status, V5_STAGE_STATUS),
                "start_time": epoch_ms(stage_times.started),
                "end_time": epoch_ms(stage_times.finished),
                "pre": [],
                "post": [],
                "jobs": jobs,
            }
        )
    item = _item(pipeline, run)
    now = timed.run.finished or timed.run.started or timed.run.created
    return {
        "id": item["pipeline_run_id"],
        "pipeline_id": pipeline.key,
        "manifest_version": "3.0",
        "name": _name(pipeline),
        "description": "",
        "is_publish": False,
        "executor_id": item["executor_id"],
        "executor_name": item["executor_name"],
        "status": item["status"],
        "trigger_type": item["trigger_type"],
        "run_number": run.number,
        "start_time": item["start_time"],
        "end_time": item["end_time"],
        "stages": stages,
        "domain_id": stable_hex("domain"),
        "project_id": pipeline.scope,
        "region": "cn-north-4",
        "sources": [],
        "artifacts": [],
        "detail_url": item["detail_url"],
        # The server's clock: the simulated run's latest moment, a minute on.
        "current_system_time": (epoch_ms(now) or 0) + 60_000,
    }


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
    run_id = _run_id(pipeline, run)
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

    def add_v5_pipeline(
        self,
        project_id: str,
        pipeline_id: str,
        run: RunSource,
        *,
        name: str | None = None,
        history: Sequence[SimRun] = (),
    ) -> None:
        """Serve a CodeArts Pipeline v5 pipeline; ``run=None``: no runs, omitted from answers.
        ``name`` is its name in the list (default ``pipeline-<id>``); ``history``, its
        earlier runs."""
        self.add_pipeline(
            KEY, (pipeline_id,), run, project_id=project_id, name=name, history=history
        )


DIALECT: Final = BatchDialect
