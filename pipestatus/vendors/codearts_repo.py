"""Huawei Cloud CodeArts Repo, API v4: a pipeline's latest jobs and its job list.

Endpoints (``X-Auth-Token``):

* ``GET /v4/repositories/{repository_id}/pipelines/{pipeline_id}/latest-jobs`` -> a run;
* ``GET /v4/repositories/{repository_id}/pipelines/{pipeline_id}/jobs?offset=&limit=`` -> a
  page of jobs with their stage; the total is in the ``X-Total`` header.

v4 gives no run ID, number or times: the run's times are derived from its jobs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final

import attrs

from pipestatus._normalize import derive_span, first_set, ordered, read_time, strip_quote
from pipestatus._wire import WIRE_KEY, Structurer, WireId, make_converter
from pipestatus.auth import Auth, HuaweiAKSK, HuaweiCredentials, TokenProvider
from pipestatus.model import Job, Run, Stage, Target
from pipestatus.status import Status, StatusTable, aggregate
from pipestatus.vendors._base import Adapter, Connector, decode, int_id
from pipestatus.vendors._huawei import (
    DEMO_AK,
    HEADER,
    REPO_REGIONS,
    bind,
    decode_error,
    one_credential,
)
from pipestatus.vendors._paging import Pages, read_count
from pipestatus.vendors._spec import Demo, IdParam, VendorSpec

__all__ = [
    "SPEC",
    "STATUS",
    "VENDOR",
    "CodeArtsRepo",
    "Factory",
    "Options",
    "parse_job",
    "parse_jobs_page",
    "parse_latest_jobs",
]

VENDOR: Final = "codearts_repo"

# --- wire schema: the vendor's JSON keys and raw types -------------------------------------


@attrs.define
class WireJob:
    id: WireId
    sha: str | None = None
    ref: str | None = None
    status: str | None = None
    name: str | None = None
    target_url: str | None = None
    created_at: Any = None  # times stay raw here; parse_time reads them leniently
    started_at: Any = None
    finished_at: Any = None
    updated_at: Any = None
    # Quirk: the documented job list spells this key `updated_at"`, with a stray quote.
    updated_at_quirk: Any = attrs.field(default=None, metadata={WIRE_KEY: 'updated_at"'})
    third_build_id: str | None = None


@attrs.define
class WireListJob(WireJob):
    stage_id: WireId | None = None
    stage: str | None = None


@attrs.define
class WireStage:
    id: WireId
    name: str | None = None
    sort_id: int | None = None  # documented as an integer, null in the vendor's own example
    status: str | None = None
    jobs: list[WireJob] | None = None


@attrs.define
class WireLatestJobs:
    id: WireId
    status: str | None = None
    stages: list[WireStage] | None = None


converters: Final = make_converter()

# --- status words: the seven of the v4 documents, in lower case -----------------------------

STATUS: Final = StatusTable(
    VENDOR,
    {
        "pending": Status.PENDING,
        "running": Status.RUNNING,
        "success": Status.SUCCESS,
        "failed": Status.FAILED,
        "canceled": Status.CANCELED,
        "skipped": Status.SKIPPED,
        "timedout": Status.TIMEDOUT,
    },
)

# --- normalize: wire -> model ----------------------------------------------------------------

#: The documented words as written, looked up before the table's case-insensitive match.
_WORDS: Final = STATUS.words


def to_job(wire: WireJob, *, stage_id: str | None, stage_name: str | None) -> Job:
    word = wire.status
    return Job(
        id=wire.id,
        name=wire.name,
        status=Status.PENDING if word is None else (_WORDS.get(word) or STATUS(word)),
        raw_status=word,
        started_at=read_time(wire.started_at, VENDOR, "job.started_at"),
        finished_at=read_time(wire.finished_at, VENDOR, "job.finished_at"),
        url=strip_quote(wire.target_url),
        ref=wire.ref,
        sha=wire.sha,
        build_id=wire.third_build_id,
        stage_id=stage_id,
        stage_name=stage_name,
    )


def to_stage(wire: WireStage, order: int) -> Stage:
    stage_id, name = wire.id, wire.name
    jobs = tuple([to_job(job, stage_id=stage_id, stage_name=name) for job in wire.jobs or ()])
    word = wire.status
    if word is None:  # derived only where the vendor gave no word
        status = aggregate([job.status for job in jobs])
    else:
        status = _WORDS.get(word) or STATUS(word)
    # v4 stages have no times: from their jobs.
    started, finished = derive_span(status, jobs)
    return Stage(
        id=stage_id,
        name=name,
        order=order,
        status=status,
        raw_status=word,
        started_at=started,
        finished_at=finished,
        jobs=jobs,
    )


def _sort_id(stage: WireStage) -> int | None:
    return stage.sort_id


def to_run(wire: WireLatestJobs) -> Run:
    stages = tuple(
        [to_stage(stage, order) for order, stage in enumerate(ordered(wire.stages or [], _sort_id))]
    )
    word = wire.status
    if word is None:
        status = aggregate([stage.status for stage in stages])
    else:
        status = _WORDS.get(word) or STATUS(word)
    # v4 has no run times: start = earliest stage start, end = latest stage end once terminal.
    started, finished = derive_span(status, stages)
    jobs = [job for stage in stages for job in stage.jobs]
    return Run(
        vendor=VENDOR,
        pipeline_id=wire.id,
        run_id=None,
        number=None,
        status=status,
        raw_status=word,
        started_at=started,
        finished_at=finished,
        # A run builds one commit: its jobs all carry the same ref and sha.
        ref=first_set(job.ref for job in jobs),
        sha=first_set(job.sha for job in jobs),
        stages=stages,
    )


_latest_jobs: Final = Structurer(converters, WireLatestJobs, vendor=VENDOR)
_list_job: Final = Structurer(converters, WireListJob, vendor=VENDOR)
_jobs_page: Final = Structurer(converters, list[WireListJob], vendor=VENDOR)


def parse_latest_jobs(payload: object) -> Run:
    """A decoded ``latest-jobs`` answer -> ``Run``; ``ResponseError`` when it is not one."""
    return to_run(_latest_jobs(payload))


def parse_job(payload: object) -> Job:
    """One decoded job-list item -> ``Job`` (with its stage ID and name)."""
    wire = _list_job(payload)
    return to_job(wire, stage_id=wire.stage_id, stage_name=wire.stage)


def parse_jobs_page(payload: object) -> list[Job]:
    """A decoded job-list page (a JSON array) -> its jobs."""
    return [to_job(w, stage_id=w.stage_id, stage_name=w.stage) for w in _jobs_page(payload)]


# --- the adapter -------------------------------------------------------------------------------

#: Largest page the job list serves.
PAGE_SIZE: Final = 100
#: A job list longer than this is refused rather than paged forever.
MAX_PAGES: Final = 10_000


def _ids(repository_id: int | str, pipeline_id: int | str) -> tuple[str, str]:
    return int_id(repository_id, "repository_id"), int_id(pipeline_id, "pipeline_id")


@attrs.frozen(kw_only=True)
class Options:
    """A v4 account has no options beyond its endpoint and credentials."""


class CodeArtsRepo(Adapter[Options]):
    """CodeArts Repo v4 for one host and token; made by ``Client.codearts_repo``."""

    vendor = VENDOR

    def target(self, repository_id: int | str, pipeline_id: int | str) -> Target:
        """A hashable handle on one pipeline, for ``Client.poll`` and ``Client.watch``."""
        return self._target(*_ids(repository_id, pipeline_id))

    async def latest_run(self, repository_id: int | str, pipeline_id: int | str) -> Run:
        """The pipeline's latest jobs as a ``Run``."""
        return await self.fetch(self.target(repository_id, pipeline_id))

    _parse = staticmethod(parse_latest_jobs)

    def _run_path(self, target: Target) -> str:
        repo, pipe = target.ids
        return f"/v4/repositories/{repo}/pipelines/{pipe}/latest-jobs"

    async def iter_jobs(
        self,
        repository_id: int | str,
        pipeline_id: int | str,
        *,
        max_jobs: int | None = None,
        page_size: int = PAGE_SIZE,
    ) -> AsyncIterator[Job]:
        """Every job of the pipeline's job list, page by page (stops at ``X-Total``, at a short
        page, or after ``max_jobs``). A page that repeats one served before (a server cycling
        through its pages) is a ``ResponseError``, at the first repeat."""
        repo, pipe = _ids(repository_id, pipeline_id)
        if not 1 <= page_size <= PAGE_SIZE:
            raise ValueError(f"page_size must be in 1..{PAGE_SIZE}")
        if max_jobs is not None and max_jobs < 0:
            raise ValueError("max_jobs must be >= 0")
        path = f"/v4/repositories/{repo}/pipelines/{pipe}/jobs"
        pages = Pages("the job list", vendor=VENDOR, limit=page_size, max_pages=MAX_PAGES)
        offset = seen = 0
        more = True
        while more:
            if max_jobs is not None and seen >= max_jobs:
                return
            response = await self._transport.request(
                self._endpoint, "GET", path, params={"offset": offset, "limit": page_size}
            )
            jobs = decode(response.json(), parse_jobs_page, vendor=VENDOR)
            more = pages.page(
                [job.id for job in jobs], total=read_count(response.headers.get("x-total"))
            )
            for job in jobs:
                if max_jobs is not None and seen >= max_jobs:
                    return
                seen += 1
                yield job
            offset += len(jobs)

    async def jobs(
        self, repository_id: int | str, pipeline_id: int | str, *, max_jobs: int | None = None
    ) -> list[Job]:
        """Every job of the pipeline's job list (all pages), or the first ``max_jobs``."""
        return [job async for job in self.iter_jobs(repository_id, pipeline_id, max_jobs=max_jobs)]


# --- the registry entry and the client's typed factory ------------------------------------------


class Factory(Connector):
    """``Client.codearts_repo``."""

    __slots__ = ()

    def codearts_repo(
        self,
        base_url: str | None = None,
        *,
        token: str | TokenProvider | None = None,
        credentials: HuaweiCredentials | None = None,
        region: str | None = None,
    ) -> CodeArtsRepo:
        """Huawei Cloud CodeArts Repo (API v4) at ``base_url`` or in ``region`` (exactly one;
        the region's endpoint comes from the SDK's table), with ``token=`` or ``credentials=``
        (exactly one: ``HuaweiAKSK``, ``HuaweiIAM``, ...)."""
        options = Options()
        secret = one_credential(token, credentials)
        url = SPEC.base_url(base_url, region)
        return self._connect(SPEC, url, SPEC.make_auth(secret, options, region=region), options)


def _bind(credentials: object, options: Options, region: str | None) -> Auth:
    # v4 names no project: X-Project-Id is the credentials' own, if they have one.
    return bind(credentials, region=region, project_id=None)


SPEC: Final = VendorSpec(
    key=VENDOR,
    name="Huawei Cloud CodeArts Repo (API v4)",
    header=HEADER,
    auth_schemes=("token", "aksk", "iam"),
    ids=(
        IdParam(name="repository_id", check=int_id, help="the repository's numeric ID"),
        IdParam(name="pipeline_id", check=int_id, help="the pipeline's number in it"),
    ),
    decode_error=decode_error,
    status=STATUS,
    adapter=CodeArtsRepo,
    options=Options,
    demo=Demo(
        options={},
        ids=lambda n: ("2000", str(n)),
        credentials=lambda url, token: HuaweiAKSK(DEMO_AK, token),
    ),
    regions=REPO_REGIONS,
    binder=_bind,
    example_account="""\
# Huawei Cloud CodeArts Repo (API v4): pipelines are (repository_id, pipeline_id).
# Requests are signed with the account's AK/SK, as the official SDK signs them.
[accounts.huawei-repo]
vendor = "codearts_repo"
region = "cn-north-4"   # or the host itself:
# endpoint = "https://codehub-ext.cn-north-4.myhuaweicloud.com"
auth = "aksk"
ak_env = "HUAWEICLOUD_SDK_AK"     # the variables that hold the AK and the SK
sk_env = "HUAWEICLOUD_SDK_SK"
# security_token_env = "HUAWEICLOUD_SDK_SECURITY_TOKEN"   # temporary AK/SK only
# Or an IAM user's password token, renewed before it expires:
# auth = "iam"
# user = "ci-reader"
# domain = "my-account"
# password_env = "HUAWEI_IAM_PASSWORD"
# project = "cn-north-4"
# Or a ready-made token:
# auth = "token"
# token_env = "HUAWEI_TOKEN"
""",
    example_pipeline="""\
[[pipelines]]
account = "huawei-repo"
repository_id = 2111976239
pipeline_id = 6
name = "backend"
""",
)
