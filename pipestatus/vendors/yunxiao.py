"""Alibaba Cloud Yunxiao (Apsara DevOps) Flow OpenAPI: a pipeline's latest run (and, through
:mod:`._yunxiao_history`, the organization's pipeline list, one run, history and job logs).

Endpoint (``x-yunxiao-token``), one of three path shapes chosen by the adapter's options:

* ``GET /oapi/v1/flow/organizations/pipelines/{pipelineId}/runs/latestPipelineRun``
* ``GET /oapi/v1/flow/organizations/{organizationId}/pipelines/{pipelineId}/runs/latestPipelineRun``
  (with an organization ID: the central site's form)
* ``GET /oapi/v1/flow/pipelines/{pipelineId}/runs/latestPipelineRun`` (the region edition)

Times are epoch milliseconds. The run's ``createTime`` is its start; it has no end time, so
the end is derived from the stages once the run is terminal. A stage's status lives in
``stageInfo`` and may be missing: then it is derived from its jobs.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

from pipestatus._normalize import derive_span, first_set, read_time
from pipestatus._sansio import Endpoint, Sender
from pipestatus._wire import Structurer, WireId, make_converter
from pipestatus.auth import TokenProvider, token_auth
from pipestatus.model import Job, Run, Stage, Target
from pipestatus.status import Status, StatusTable, aggregate
from pipestatus.vendors._base import Adapter, Connector, json_error, segment, string_id
from pipestatus.vendors._spec import Demo, IdParam, OptionError, VendorSpec, checked
from pipestatus.vendors._yunxiao_history import OrganizationReads, reset_after

__all__ = [
    "SPEC",
    "STATUS",
    "TRIGGER_MODES",
    "VENDOR",
    "Factory",
    "Options",
    "YunxiaoFlow",
    "decode_error",
    "parse_latest_run",
]

VENDOR: Final = "yunxiao"

# --- wire schema (snake_case here, camelCase on the wire: see `converters`) --------------------
# Only the fields the model reads: a field never read is never a reason to refuse a run, and
# each one costs a hook call per payload.


@attrs.define
class WireJob:
    id: WireId
    name: str | None = None
    job_sign: str | None = None
    status: str | None = None
    start_time: Any = None
    end_time: Any = None


@attrs.define
class WireStageInfo:
    name: str | None = None
    status: str | None = None
    start_time: Any = None
    end_time: Any = None
    jobs: list[WireJob] | None = None


@attrs.define
class WireStage:
    index: str | None = None  # "Group0-Stage0"
    name: str | None = None
    stage_info: WireStageInfo | None = None


@attrs.define
class WireSourceData:
    branch: str | None = None


@attrs.define
class WireSource:
    data: WireSourceData | None = None


@attrs.define
class WireLatestRun:
    pipeline_id: WireId
    pipeline_run_id: WireId | None = None
    status: str | None = None
    create_time: Any = None
    trigger_mode: int | None = None
    sources: list[WireSource] | None = None
    stages: list[WireStage] | None = None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# Yunxiao writes every key in camelCase: one rule for the whole converter.
converters: Final = make_converter(key=_camel)

# --- status words: FAIL, SUCCESS, RUNNING documented; CANCELED, WAITING from the list filter;
# UNKOWN, CANCELLING, FINISH, SKIP from the webhook plugin's statusCode list (readings suggested
# there); INIT, SKIPPED, TIMEOUT mapped in case they appear. ------------------------------------

STATUS: Final = StatusTable(
    VENDOR,
    {
        "FAIL": Status.FAILED,
        "SUCCESS": Status.SUCCESS,
        "RUNNING": Status.RUNNING,
        "CANCELED": Status.CANCELED,
        "WAITING": Status.PENDING,
        "INIT": Status.PENDING,
        "SKIPPED": Status.SKIPPED,
        "TIMEOUT": Status.TIMEDOUT,
        "CANCELLING": Status.RUNNING,  # a cancel in progress: not finished yet
        "FINISH": Status.SUCCESS,  # the webhook's word for a finished task (unconfirmed)
        "UNKOWN": Status.PENDING,  # sic (not UNKNOWN): nothing known yet
        "SKIP": Status.SKIPPED,
    },
)

#: ``triggerMode`` values as documented; any other value is kept as its number.
TRIGGER_MODES: Final = {1: "manual", 2: "scheduled", 3: "commit", 5: "pipeline", 6: "webhook"}

# --- normalize ---------------------------------------------------------------------------------

#: The documented words as written, looked up before the table's case-insensitive match.
_WORDS: Final = STATUS.words


def to_job(wire: WireJob, *, stage_id: str, stage_name: str | None, ref: str | None) -> Job:
    word = wire.status
    return Job(
        id=wire.id,
        name=wire.name,
        status=Status.PENDING if word is None else (_WORDS.get(word) or STATUS(word)),
        raw_status=word,
        started_at=read_time(wire.start_time, VENDOR, "job.startTime"),
        finished_at=read_time(wire.end_time, VENDOR, "job.endTime"),
        ref=ref,
        build_id=wire.job_sign,
        stage_id=stage_id,
        stage_name=stage_name,
    )


_NO_INFO: Final = WireStageInfo()


def to_stage(wire: WireStage, order: int, ref: str | None) -> Stage:
    info = wire.stage_info or _NO_INFO
    stage_id = wire.index or str(order)
    name = wire.name or info.name
    jobs = tuple(
        [to_job(job, stage_id=stage_id, stage_name=name, ref=ref) for job in info.jobs or ()]
    )
    word = info.status
    if word is None:  # a stage may lack its status: then it is derived from its jobs
        status = aggregate([job.status for job in jobs])
    else:
        status = _WORDS.get(word) or STATUS(word)
    started = read_time(info.start_time, VENDOR, "stageInfo.startTime")
    finished = read_time(info.end_time, VENDOR, "stageInfo.endTime")
    if started is None or finished is None:  # derived only where the vendor gave none
        derived_start, derived_end = derive_span(status, jobs)
        started = started or derived_start
        finished = finished or derived_end
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


def to_run(wire: WireLatestRun) -> Run:
    ref = first_set(source.data.branch for source in wire.sources or () if source.data)
    # No sequence field: stages keep their payload order.
    stages = tuple([to_stage(stage, order, ref) for order, stage in enumerate(wire.stages or ())])
    word = wire.status
    if word is None:
        status = aggregate([stage.status for stage in stages])
    else:
        status = _WORDS.get(word) or STATUS(word)
    # The run has no end time: the latest stage end, once terminal.
    _, finished = derive_span(status, stages) if status.is_terminal else (None, None)
    started = read_time(wire.create_time, VENDOR, "createTime")
    if started is None:
        started = derive_span(status, stages)[0]
    mode = wire.trigger_mode
    return Run(
        vendor=VENDOR,
        pipeline_id=wire.pipeline_id,
        run_id=wire.pipeline_run_id,
        # Flow numbers a pipeline's runs 1, 2, 3...: the run ID is the run number.
        number=_number(wire.pipeline_run_id),
        status=status,
        raw_status=word,
        started_at=started,
        finished_at=finished,
        ref=ref,
        trigger=None if mode is None else TRIGGER_MODES.get(mode, str(mode)),
        stages=stages,
    )


def _number(value: str | None) -> int | None:
    if value is None or not (value.isascii() and value.isdigit() and len(value) <= 18):
        return None
    return int(value)


_latest_run: Final = Structurer(converters, WireLatestRun, vendor=VENDOR)


def parse_latest_run(payload: object) -> Run:
    """A decoded ``latestPipelineRun`` answer -> ``Run``."""
    return to_run(_latest_run(payload))


# --- the adapter -------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Options:
    """A Yunxiao account's path form: an organization ID (the central site's form), or the
    region edition's (which takes none); neither is the no-organization form."""

    organization_id: str | None = attrs.field(
        default=None, validator=checked(string_id, optional=True)
    )
    region_edition: bool = attrs.field(default=False)

    @region_edition.validator
    def _check_region_edition(self, attribute: attrs.Attribute[bool], value: object) -> None:
        if not isinstance(value, bool):
            raise OptionError("region_edition", "must be true or false")
        if value and self.organization_id is not None:
            raise OptionError(
                "organization_id", "the region edition's path takes no organization_id"
            )


def decode_error(body: bytes) -> tuple[str | None, str | None]:
    """Yunxiao's ``errorCode``/``errorMessage`` (``errorDescription`` when the message is
    missing), or ``code``/``message``."""
    return json_error(
        body, codes=("errorCode", "code"), messages=("errorMessage", "errorDescription", "message")
    )


class YunxiaoFlow(OrganizationReads, Adapter[Options]):
    """Yunxiao Flow for one host and token; made by ``Client.yunxiao``.

    The path shape follows the options: no ``organization_id`` (the default), an
    ``organization_id`` (the central site's form), or ``region_edition=True`` (the region
    edition's ``/oapi/v1/flow/pipelines/...``, which takes no organization ID).
    """

    vendor = VENDOR
    discovers = True
    _table = STATUS
    _modes = TRIGGER_MODES
    _converters = converters
    _parse_run = staticmethod(parse_latest_run)

    def __init__(
        self, transport: Sender, endpoint: Endpoint, options: Options, *, conditional: bool
    ) -> None:
        super().__init__(transport, endpoint, options, conditional=conditional)
        organization_id, region_edition = options.organization_id, options.region_edition
        self.organization_id = organization_id
        self.region_edition = region_edition
        if region_edition:
            self._prefix = "/oapi/v1/flow/pipelines/"
        elif organization_id is None:
            self._prefix = "/oapi/v1/flow/organizations/pipelines/"
        else:
            self._prefix = f"/oapi/v1/flow/organizations/{segment(organization_id)}/pipelines/"

    def __repr__(self) -> str:
        options = f", organization_id={self.organization_id!r}" if self.organization_id else ""
        options += ", region_edition=True" if self.region_edition else ""
        return f"YunxiaoFlow({self.base_url!r}{options})"

    def target(self, pipeline_id: str | int) -> Target:
        """A hashable handle on one pipeline, for ``Client.poll`` and ``Client.watch``."""
        return self._target(string_id(pipeline_id, "pipeline_id"))

    async def latest_run(self, pipeline_id: str | int) -> Run:
        """The pipeline's latest run."""
        return await self.fetch(self.target(pipeline_id))

    _parse = staticmethod(parse_latest_run)

    def _run_path(self, target: Target) -> str:
        return f"{self._prefix}{segment(target.ids[0])}/runs/latestPipelineRun"


# --- the registry entry and the client's typed factory ------------------------------------------


class Factory(Connector):
    """``Client.yunxiao``."""

    __slots__ = ()

    def yunxiao(
        self,
        base_url: str,
        *,
        token: str | TokenProvider,
        organization_id: str | None = None,
        region_edition: bool = False,
    ) -> YunxiaoFlow:
        """Alibaba Cloud Yunxiao Flow at ``base_url`` (see ``YunxiaoFlow`` for the path forms)."""
        options = Options(organization_id=organization_id, region_edition=region_edition)
        return self._connect(SPEC, base_url, token_auth(SPEC.header, token), options)


SPEC: Final = VendorSpec(
    key=VENDOR,
    name="Alibaba Cloud Yunxiao Flow",
    header="x-yunxiao-token",
    auth_schemes=("token",),
    ids=(IdParam(name="pipeline_id", check=string_id, help="the pipeline's ID"),),
    decode_error=decode_error,
    retry_hint=reset_after,
    status=STATUS,
    adapter=YunxiaoFlow,
    options=Options,
    demo=Demo(options={"organization_id": "fleet-org"}, ids=lambda n: (str(3000 + n),)),
    example_account="""\
# Alibaba Cloud Yunxiao Flow. organization_id selects the central site's path form;
# region_edition = true selects the region edition's (which takes no organization_id).
[accounts.yunxiao]
vendor = "yunxiao"
endpoint = "https://openapi-rdc.aliyuncs.com"
organization_id = "60d54f3daccf2bbd6659f3ad"
# region_edition = false
# pipelines = "*"   # follow every pipeline of the organization (or a glob: "app-*")
token_env = "YUNXIAO_TOKEN"
""",
    example_pipeline="""\
[[pipelines]]
account = "yunxiao"
pipeline_id = "123"
""",
)
