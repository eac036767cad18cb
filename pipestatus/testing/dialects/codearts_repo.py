"""The ``codearts_repo`` dialect: Huawei CodeArts Repo API v4, header ``X-Auth-Token`` or an
AK/SK signature (checked by the Huawei cloud of :mod:`._huawei`, which also serves IAM).

* ``GET /v4/repositories/{repository_id}/pipelines/{pipeline_id}/latest-jobs``: the run's
  stages with their jobs, times as ``+08:00`` ISO strings.
* ``GET /v4/repositories/{repository_id}/pipelines/{pipeline_id}/jobs?offset=&limit=``: the
  flat job list, paged (``limit`` 1..100, default 20; the total in ``X-Total``). A page with
  ``offset > 0`` serves the run of the pipeline's previous request, so paging through one run
  stays consistent.

v4 uses the canonical status words themselves (:data:`V4_STATUS`). The 401 and 404 bodies are
the documented ones; the 400 body is invented in their shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from aiohttp import web

from pipestatus.testing._answers import Answer
from pipestatus.testing._sim import (
    CANONICAL_STATUSES,
    RunSource,
    Served,
    SimRun,
    SimStage,
    extra_jobs,
    resolve_times,
    stable_hex,
    word,
)
from pipestatus.testing.dialects._base import (
    Context,
    Dialect,
    Route,
    ids_of,
    iso_cst,
    options_of,
)
from pipestatus.testing.dialects._huawei import HuaweiHost, cloud_of

__all__ = ["DIALECT", "ERROR_BODIES", "KEY", "V4_STATUS", "Pipelines", "RepoDialect"]

KEY: Final = "codearts_repo"

#: CodeArts Repo v4 uses the canonical words themselves.
V4_STATUS: Final[Mapping[str, str]] = {status: status for status in CANONICAL_STATUSES}

ERROR_BODIES: Final[Mapping[int, Mapping[str, str]]] = {
    400: {
        "error_code": "CH.00000001",  # invented
        "error_msg": "Invalid parameter. Check and try again.",
    },
    401: {
        "error_code": "CH.00000002",
        "error_msg": "Recognize authentication information failed.",
    },
    404: {
        "error_code": "CH.00402000",
        "error_msg": "The repository does not exist. Check and try again.",
    },
}

_BASE: Final = "/v4/repositories/{repository_id}/pipelines/{pipeline_id}"


class RepoDialect(Dialect):
    """CodeArts Repo v4 pipelines by ``(repository_id, pipeline_id)``."""

    key = KEY
    error_bodies = ERROR_BODIES
    standalone_option = ("--repo", "static v4 pipelines 1000/1..N")

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self._pipelines: dict[tuple[int, int], Served] = {}
        self.cloud = cloud_of(context)

    def routes(self) -> Sequence[Route]:
        return (
            Route("GET", f"{_BASE}/latest-jobs", self._latest_jobs),
            Route("GET", f"{_BASE}/jobs", self._jobs),
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
        return [request.match_info.get("pipeline_id", "")]

    def add(self, ids: Sequence[str | int], run: RunSource, **options: Any) -> None:
        repository_id, pipeline_id = (
            int(i) for i in ids_of(self, ids, "repository_id", "pipeline_id")
        )
        extra = options_of(self, options, extra_jobs=0)["extra_jobs"]
        self._pipelines[(repository_id, pipeline_id)] = Served(
            KEY, (str(repository_id), str(pipeline_id)), run, extra_jobs=extra
        )

    def pipelines(self) -> list[Served]:
        return list(self._pipelines.values())

    @classmethod
    def static(cls, n: int) -> tuple[tuple[str, ...], dict[str, Any]]:
        return ("1000", str(n)), {}

    # -- handlers ------------------------------------------------------------------------------

    def _find(self, request: web.Request) -> Served | Answer:
        refused = self.refusal(request, b"")
        if refused is not None:
            return refused
        try:
            key = (
                int(request.match_info["repository_id"]),
                int(request.match_info["pipeline_id"]),
            )
        except ValueError:
            return self.error(404)
        pipeline = self._pipelines.get(key)
        return self.error(404) if pipeline is None else pipeline

    async def _latest_jobs(self, request: web.Request, body: bytes) -> Answer:
        found = self._find(request)
        if isinstance(found, Answer):
            return found
        run = found.current(self.context.elapsed())
        if run is None:
            return self.error(404)
        stages, _ = self._stages(found, run)
        return Answer(
            200, {"id": int(found.ids[1]), "status": word(run.status, V4_STATUS), "stages": stages}
        )

    async def _jobs(self, request: web.Request, body: bytes) -> Answer:
        found = self._find(request)
        if isinstance(found, Answer):
            return found
        try:
            offset = int(request.query.get("offset", "0"))
            limit = int(request.query.get("limit", "20"))
        except ValueError:
            return self.error(400)
        if not (0 <= offset <= 2147483647 and 1 <= limit <= 100):
            return self.error(400)
        run = found.current(self.context.elapsed(), advance=offset == 0)
        if run is None:
            return self.error(404)
        _, flat = self._stages(found, run)
        return Answer(200, flat[offset : offset + limit], {"X-Total": str(len(flat))})

    def _stages(
        self, pipeline: Served, run: SimRun
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The ``stages`` of latest-jobs and the flat ``jobs`` list, in stage order."""
        repo_id, pipe_id = pipeline.ids
        extra = extra_jobs(run, pipeline.extra_jobs) if pipeline.extra_jobs else []
        stages = [*run.stages, SimStage("extra", extra)] if extra else list(run.stages)
        timed = resolve_times(run, extra)
        make_id = self.context.make_id
        target = f"https://devcloud.example.com/cicd/project/{repo_id}/pipeline/detail/{pipe_id}"
        out_stages: list[dict[str, Any]] = []
        flat: list[dict[str, Any]] = []
        for s_index, stage in enumerate(stages):
            stage_id = make_id(KEY, pipeline.key, run.number, "stage", s_index)
            jobs: list[dict[str, Any]] = []
            for j_index, job in enumerate(stage.jobs):
                t = timed.jobs[s_index][j_index]
                job_id = job.id
                if job_id is None:
                    job_id = make_id(KEY, pipeline.key, run.number, s_index, j_index)
                item = {
                    "id": job_id,
                    "sha": run.sha,
                    "ref": run.ref,
                    "status": word(job.status, V4_STATUS),
                    "name": job.name,
                    "target_url": f"{target}/{stable_hex('run', pipeline.key, run.number)}",
                    "created_at": iso_cst(t.created),
                    "started_at": iso_cst(t.started),
                    "finished_at": iso_cst(t.finished),
                    "updated_at": iso_cst(t.finished or t.started or t.created),
                    "third_build_id": stable_hex("build", job_id),
                }
                jobs.append(item)
                flat.append({**item, "stage_id": stage_id, "stage": stage.name})
            out_stages.append(
                {
                    "id": stage_id,
                    "name": stage.name,
                    "status": word(stage.effective_status, V4_STATUS),
                    "sort_id": s_index + 1,
                    "jobs": jobs,
                }
            )
        return out_stages, flat


class Pipelines(HuaweiHost):
    """``VendorServer.add_repo_pipeline``."""

    __slots__ = ()

    def add_repo_pipeline(
        self, repository_id: int, pipeline_id: int, run: RunSource, *, extra_jobs: int = 0
    ) -> None:
        """Serve a CodeArts Repo v4 pipeline; ``extra_jobs`` adds a stage of that many jobs."""
        self.add_pipeline(KEY, (repository_id, pipeline_id), run, extra_jobs=extra_jobs)


DIALECT: Final = RepoDialect
