"""Huawei Cloud CodeArts Pipeline, API v5: the latest runs of many pipelines in one call, and
(through :mod:`._codearts_pipeline_detail`) the pipeline list, run detail, history and logs.

Endpoint (``X-Auth-Token``): ``POST /v5/{project_id}/api/pipelines/status`` with a JSON array
of pipeline IDs; the answer is an array of ``PipelineLatestRun`` for the pipelines that have
runs. Items are structured one by one: one bad item never hides the others. The list
(``POST .../pipelines/list``) carries each pipeline's latest run in the same shape, so a
project's status is one request per page of it (:meth:`CodeArtsPipeline.pipelines`).

Times: run ``start_time``/``end_time`` are epoch milliseconds; stage times are naive
``YYYY-MM-DD HH:MM:SS`` strings in China Standard Time (UTC+08:00). Stages carry no ID and no
jobs: a stage's ID is its ``sequence`` (or its position when that is missing).

(Over 500 lines, because the batch status's wire schema, its reader (:class:`BatchReader`,
which must stay cheap on a hostile answer) and the adapter that slices it share the one
converter and structurer; what the other endpoints need lives in the modules named above.)
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, Final

import attrs

from pipestatus._normalize import derive_span, ordered, read_time
from pipestatus._sansio import Endpoint, Sender
from pipestatus._transport import under_way
from pipestatus._wire import Structurer, WireId, first_error, json_type, make_converter
from pipestatus.auth import Auth, HuaweiCredentials, HuaweiIAM, TokenProvider
from pipestatus.errors import NotFoundError, PipestatusError, ResponseError
from pipestatus.model import Run, Stage, Target
from pipestatus.status import Status, StatusTable, aggregate
from pipestatus.vendors._base import (
    Adapter,
    Connector,
    OnResult,
    contained,
    decode,
    segment,
    string_id,
)
from pipestatus.vendors._codearts_pipeline_history import ProjectReads
from pipestatus.vendors._huawei import (
    DEMO_DOMAIN,
    DEMO_PROJECT,
    DEMO_USER,
    HEADER,
    PIPELINE_REGIONS,
    bind,
    decode_error,
    one_credential,
)
from pipestatus.vendors._spec import Demo, IdParam, OptionError, VendorSpec, checked

__all__ = [
    "SPEC",
    "STATUS",
    "VENDOR",
    "BatchReader",
    "BatchResult",
    "CodeArtsPipeline",
    "Factory",
    "Options",
    "parse_batch",
    "parse_run",
]

VENDOR: Final = "codearts_pipeline"
logger = logging.getLogger(__name__)

# --- wire schema -----------------------------------------------------------------------------
# Only the fields the model reads: a field never read is never a reason to refuse a run, and
# each one costs a hook call per item of every batch.


@attrs.define
class WireStageStatus:
    name: str | None = None
    sequence: int | None = None
    status: str | None = None
    start_time: Any = None  # naive "YYYY-MM-DD HH:MM:SS", China Standard Time
    end_time: Any = None


@attrs.define
class WireBuildParams:
    build_type: str | None = None
    commit_id: str | None = None
    source_branch: str | None = None
    tag: str | None = None
    target_branch: str | None = None


@attrs.define
class WirePipelineLatestRun:
    pipeline_id: WireId
    pipeline_run_id: WireId | None = None
    stage_status_list: list[WireStageStatus] | None = None
    status: str | None = None
    run_number: int | None = None
    trigger_type: str | None = None
    build_params: WireBuildParams | None = None
    start_time: Any = None  # epoch milliseconds
    end_time: Any = None
    detail_url: str | None = None


converters: Final = make_converter()

# --- status words: runs use the first seven; stages and jobs add the rest (vendor SDK models) --

STATUS: Final = StatusTable(
    VENDOR,
    {
        "COMPLETED": Status.SUCCESS,
        "RUNNING": Status.RUNNING,
        "FAILED": Status.FAILED,
        "CANCELED": Status.CANCELED,
        "PAUSED": Status.RUNNING,  # waiting at a manual check or a pause point: not finished
        "SUSPEND": Status.RUNNING,  # suspended mid-run, resumable: not finished
        "IGNORED": Status.SKIPPED,
        "INIT": Status.PENDING,
        "QUEUED": Status.PENDING,
        "SKIPPED": Status.SKIPPED,
        "ASYNC_RUNNING": Status.RUNNING,
        "ASYNC_FAILED": Status.FAILED,
        "UNSELECTED": Status.SKIPPED,
        "REDISPATCH": Status.PENDING,  # handed to another executor, waiting to start again
    },
)

# --- normalize ---------------------------------------------------------------------------------

#: The documented words as written, looked up before the table's case-insensitive match.
_WORDS: Final = STATUS.words


def to_stage(wire: WireStageStatus, order: int) -> Stage:
    word, sequence = wire.status, wire.sequence
    return Stage(
        id=str(sequence if sequence is not None else order),
        name=wire.name,
        order=order,
        status=Status.PENDING if word is None else (_WORDS.get(word) or STATUS(word)),
        raw_status=word,
        started_at=read_time(wire.start_time, VENDOR, "stage.start_time"),
        finished_at=read_time(wire.end_time, VENDOR, "stage.end_time"),
    )


def _ref(params: WireBuildParams) -> str | None:
    if params.build_type == "tag" and params.tag:
        return params.tag
    return params.source_branch or params.target_branch or params.tag


def _sequence(stage: WireStageStatus) -> int | None:
    return stage.sequence


_NO_PARAMS: Final = WireBuildParams()


def to_run(wire: WirePipelineLatestRun) -> Run:
    stages = tuple(
        [
            to_stage(stage, order)
            for order, stage in enumerate(ordered(wire.stage_status_list or [], _sequence))
        ]
    )
    word = wire.status
    if word is None:  # derived only where the vendor gave no word
        status = aggregate([stage.status for stage in stages])
    else:
        status = _WORDS.get(word) or STATUS(word)
    started = read_time(wire.start_time, VENDOR, "start_time")
    finished = read_time(wire.end_time, VENDOR, "end_time")
    if started is None or (finished is None and status.is_terminal):
        derived_start, derived_end = derive_span(status, stages)
        started = started or derived_start
        finished = finished or derived_end
    params = wire.build_params or _NO_PARAMS
    return Run(
        vendor=VENDOR,
        pipeline_id=wire.pipeline_id,
        run_id=wire.pipeline_run_id,
        number=wire.run_number,
        status=status,
        raw_status=word,
        started_at=started,
        finished_at=finished,
        ref=_ref(params),
        sha=params.commit_id,
        trigger=wire.trigger_type,
        url=wire.detail_url,
        stages=stages,
    )


_run: Final = Structurer(converters, WirePipelineLatestRun, vendor=VENDOR)


def parse_run(payload: object) -> Run:
    """One decoded ``PipelineLatestRun`` -> ``Run``."""
    return to_run(_run(payload))


#: Unattributed errors a batch answer keeps (the others are only counted): a broken answer may
#: hold thousands, and the first says what went wrong.
MAX_UNATTRIBUTED: Final = 16
#: Items read between two yields to the event loop when an adapter reads a batch answer.
SLICE: Final = 1000


@attrs.frozen
class BatchResult:
    """A batch answer, item by item: the runs and per-pipeline errors, plus errors that could
    not be tied to a pipeline (an item without a usable ``pipeline_id``): the first
    :data:`MAX_UNATTRIBUTED` of them, and how many there were (``unreadable``)."""

    results: dict[str, Run | ResponseError]
    unattributed: tuple[ResponseError, ...] = ()
    unreadable: int = 0


def _item_id(item: object) -> str | None:
    """The pipeline an item names, as its error is filed under (``None``: it names none)."""
    pipeline_id = item.get("pipeline_id") if type(item) is dict else None
    if isinstance(pipeline_id, int) and not isinstance(pipeline_id, bool):
        return str(pipeline_id)
    return pipeline_id if isinstance(pipeline_id, str) and pipeline_id else None


class BatchReader:
    """Reads a batch answer's items, in one call or in slices (:meth:`feed`), into a
    :class:`BatchResult` (:meth:`result`). Pure, and its cost stays that of reading the items:

    * with ``wanted`` (the IDs asked for), an item naming another pipeline is skipped unread;
    * the first good item of a pipeline wins, and later items of that pipeline are skipped;
      a pipeline whose item was refused keeps its first error, and a later item of it is only
      tried (a good one still wins);
    * only the first bad value of an item is described, and only the first
      :data:`MAX_UNATTRIBUTED` unattributed errors are kept (the rest are counted);
    * :meth:`result` logs one line for the whole answer, however many items named no pipeline.
    """

    __slots__ = ("_count", "_results", "_unattributed", "_wanted")

    def __init__(self, wanted: Collection[str] | None = None) -> None:
        self._wanted = None if wanted is None else frozenset(wanted)
        self._results: dict[str, Run | ResponseError] = {}
        self._unattributed: list[ResponseError] = []
        self._count = 0

    def feed(self, items: Sequence[object], start: int = 0) -> None:
        """Read ``items``, the answer's items from index ``start`` on."""
        results, wanted, unread = self._results, self._wanted, 0
        for index, item in enumerate(items, start):
            if type(item) is not dict:  # the common case of a broken answer: cheapest first
                unread += 1
                if len(self._unattributed) < MAX_UNATTRIBUTED:
                    self._unattributed.append(_item_error(item, index))
                continue
            pipeline_id = _item_id(item)
            if pipeline_id is not None:
                if wanted is not None and pipeline_id not in wanted:
                    continue  # not asked for: never read
                known = results.get(pipeline_id)
                if known is not None:
                    if isinstance(known, Run):
                        continue  # the first good item wins
                    wire = _run.quick(item)  # refused before: only a good one matters now
                    if wire is not None:
                        results[pipeline_id] = to_run(wire)
                    continue
            else:
                # No usable pipeline_id: the schema (a required ID) refuses it unread.
                unread += 1
                if len(self._unattributed) < MAX_UNATTRIBUTED:
                    self._unattributed.append(_item_error(item, index))
                continue
            wire = _run.quick(item)
            if wire is None:
                results[pipeline_id] = _item_error(item, index)
            elif not isinstance(results.get(wire.pipeline_id), Run):
                results[wire.pipeline_id] = to_run(wire)
        self._count += unread

    def result(self) -> BatchResult:
        """What was read; one log line when some items named no pipeline."""
        if self._count:
            logger.warning(
                "%s: %d item(s) of a batch answer could not be read and name no pipeline; "
                "the first: %s",
                VENDOR,
                self._count,
                self._unattributed[0].message,
            )
        return BatchResult(
            results=self._results, unattributed=tuple(self._unattributed), unreadable=self._count
        )


def _item_error(item: object, index: int) -> ResponseError:
    message, path = first_error(converters, item, WirePipelineLatestRun)
    path = f"$[{index}]{path[1:]}"
    return ResponseError(
        f"unexpected PipelineLatestRun payload: {message} @ {path}", vendor=VENDOR, path=path
    )


def _not_a_batch(payload: object) -> ResponseError:
    return ResponseError(
        f"unexpected batch payload: expected an array, got {json_type(payload)} @ $",
        vendor=VENDOR,
        path="$",
    )


def parse_batch(payload: object, *, wanted: Collection[str] | None = None) -> BatchResult:
    """A decoded batch answer (a JSON array) -> each pipeline's ``Run`` or ``ResponseError``
    (only the pipelines of ``wanted``, when given); see :class:`BatchReader`."""
    if not isinstance(payload, list):
        raise _not_a_batch(payload)
    reader = BatchReader(wanted)
    reader.feed(payload)
    return reader.result()


# --- the adapter -------------------------------------------------------------------------------


class _Checked(tuple[str, ...]):
    """Distinct pipeline IDs already checked (those of targets): not checked again."""

    __slots__ = ()


#: Pipeline IDs per batch call by default.
BATCH_SIZE: Final = 100


@attrs.frozen(kw_only=True)
class Options:
    """A v5 account: one project, and how many pipeline IDs go in one batch call."""

    project_id: str = attrs.field(validator=checked(string_id))
    batch_size: int = attrs.field(default=BATCH_SIZE)

    @batch_size.validator
    def _check_batch_size(self, attribute: attrs.Attribute[int], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise OptionError("batch_size", "must be an integer in 1..1000")
        if not 1 <= value <= 1000:
            raise OptionError("batch_size", "must be in 1..1000")


class CodeArtsPipeline(ProjectReads, Adapter[Options]):
    """CodeArts Pipeline v5 for one host, project and token; made by
    ``Client.codearts_pipeline``. Targets are fetched in batch calls of ``batch_size`` IDs; the
    project's pipeline list, run detail, history and logs come from :class:`ProjectReads`."""

    vendor = VENDOR
    batches = True
    discovers = True
    lists_latest = True
    details_on_end = True
    _table = STATUS
    _parse_item = staticmethod(parse_run)

    def __init__(
        self, transport: Sender, endpoint: Endpoint, options: Options, *, conditional: bool
    ) -> None:
        super().__init__(transport, endpoint, options, conditional=conditional)
        self.project_id = options.project_id  # checked by Options
        self.batch_size = options.batch_size
        self._api = f"/v5/{segment(self.project_id)}/api/pipelines"
        self._path = f"{self._api}/status"

    def __repr__(self) -> str:
        return f"CodeArtsPipeline({self.base_url!r}, project_id={self.project_id!r})"

    def target(self, pipeline_id: str) -> Target:
        """A hashable handle on one pipeline, for ``Client.poll`` and ``Client.watch``."""
        return self._target(string_id(pipeline_id, "pipeline_id"))

    async def latest_results(self, pipeline_ids: Iterable[str]) -> dict[str, Run | PipestatusError]:
        """Each pipeline's latest run or the error it met; nothing is left out: a pipeline the
        answer omits (no such pipeline, or no run yet) gets ``NotFoundError``."""
        results, _ = await self._gather(pipeline_ids)
        return results

    async def latest_runs(self, pipeline_ids: Iterable[str]) -> dict[str, Run]:
        """The latest runs of the pipelines that have runs, in batches sent concurrently.

        Pipelines without runs are left out. Any other failure raises (the first one); use
        ``latest_results`` to get every pipeline's own outcome instead.
        """
        results, omitted = await self._gather(pipeline_ids)
        for key, outcome in results.items():
            # Only the pipelines the answer left out are "no run"; a whole batch call answered
            # 404 (an unknown project, say) is a failure like any other.
            if isinstance(outcome, PipestatusError) and key not in omitted:
                raise outcome
        return {key: run for key, run in results.items() if isinstance(run, Run)}

    async def _gather(
        self,
        pipeline_ids: Iterable[str],
        on_batch: Callable[[dict[str, Run | PipestatusError]], None] | None = None,
    ) -> tuple[dict[str, Run | PipestatusError], set[str]]:
        """Every pipeline's outcome, and which pipelines the answers left out; ``on_batch``
        hears each batch's outcomes as soon as that batch is answered."""
        if isinstance(pipeline_ids, str):
            raise TypeError("pipeline_ids must be a collection of IDs, not one string")
        if isinstance(pipeline_ids, _Checked):
            ids = list(pipeline_ids)  # targets' IDs: checked when each target was made
        else:
            ids = list(dict.fromkeys(string_id(value, "pipeline_id") for value in pipeline_ids))
        chunks = [ids[i : i + self.batch_size] for i in range(0, len(ids), self.batch_size)]
        omitted: set[str] = set()

        async def one(chunk: list[str]) -> dict[str, Run | PipestatusError]:
            answer = await self._batch(chunk, omitted)
            if on_batch is not None:
                on_batch(answer)
            return answer

        with under_way():  # a client closed meanwhile fails the rest as TransportErrors
            answers = await asyncio.gather(*(one(chunk) for chunk in chunks))
        return {key: value for answer in answers for key, value in answer.items()}, omitted

    async def fetch(self, target: Target) -> Run:
        self._own(target)
        (pipeline_id,) = target.ids
        outcome = (await self._batch([pipeline_id]))[pipeline_id]
        if isinstance(outcome, PipestatusError):
            raise outcome
        return outcome

    async def poll_targets(
        self, targets: Sequence[Target], *, on_result: OnResult | None = None
    ) -> dict[Target, Run | PipestatusError]:
        self._check_open()
        for target in targets:
            self._own(target)
        by_id = {target.ids[0]: target for target in targets}

        def heard(answer: dict[str, Run | PipestatusError]) -> None:
            if on_result is not None:
                for key, outcome in answer.items():
                    on_result(by_id[key], outcome)

        results, _ = await self._gather(_Checked(by_id), heard)
        return {by_id[key]: outcome for key, outcome in results.items()}

    async def _ask(self, chunk: list[str]) -> BatchResult:
        response = await self._transport.request(
            self._endpoint, "POST", self._path, json_body=chunk
        )
        payload = response.json()
        if not isinstance(payload, list):
            raise _not_a_batch(payload)
        # Read in slices with a yield between them: a huge answer never holds the event loop
        # (and every other target's request) for longer than one slice.
        reader = BatchReader(chunk)
        for start in range(0, len(payload), SLICE):
            if start:
                await asyncio.sleep(0)
            decode(
                payload[start : start + SLICE],
                functools.partial(reader.feed, start=start),
                vendor=VENDOR,
            )
        return reader.result()

    async def _batch(
        self, chunk: list[str], omitted: set[str] | None = None
    ) -> dict[str, Run | PipestatusError]:
        answer = await contained(self._ask(chunk), vendor=VENDOR)
        if isinstance(answer, PipestatusError):
            return dict.fromkeys(chunk, answer)
        results: dict[str, Run | PipestatusError] = {}
        for pipeline_id in chunk:
            outcome: Run | PipestatusError | None = answer.results.get(pipeline_id)
            if outcome is None:
                # Omitted: no such pipeline or no run yet; unless some item could not be read,
                # in which case this may be that item.
                if answer.unattributed:
                    outcome = answer.unattributed[0]
                else:
                    outcome = NotFoundError(
                        status=404,
                        vendor=VENDOR,
                        message=f"pipeline {pipeline_id} is not in the batch answer "
                        "(no such pipeline, or no run yet)",
                    )
                    if omitted is not None:
                        omitted.add(pipeline_id)
            results[pipeline_id] = outcome
        return results


# --- the registry entry and the client's typed factory ------------------------------------------


class Factory(Connector):
    """``Client.codearts_pipeline``."""

    __slots__ = ()

    def codearts_pipeline(
        self,
        base_url: str | None = None,
        *,
        project_id: str,
        token: str | TokenProvider | None = None,
        credentials: HuaweiCredentials | None = None,
        region: str | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> CodeArtsPipeline:
        """Huawei Cloud CodeArts Pipeline (API v5) for one project, at ``base_url`` or in
        ``region`` (exactly one; the region's endpoint comes from the SDK's table), with
        ``token=`` or ``credentials=`` (exactly one: ``HuaweiAKSK``, ``HuaweiIAM``, ...). AK/SK
        credentials without a project ID of their own send ``project_id`` as ``X-Project-Id``."""
        options = Options(project_id=project_id, batch_size=batch_size)
        secret = one_credential(token, credentials)
        url = SPEC.base_url(base_url, region)
        return self._connect(SPEC, url, SPEC.make_auth(secret, options, region=region), options)


def _bind(credentials: object, options: Options, region: str | None) -> Auth:
    return bind(credentials, region=region, project_id=options.project_id)


SPEC: Final = VendorSpec(
    key=VENDOR,
    name="Huawei Cloud CodeArts Pipeline (API v5)",
    header=HEADER,
    auth_schemes=("token", "aksk", "iam"),
    ids=(IdParam(name="pipeline_id", check=string_id, help="the pipeline's ID"),),
    decode_error=decode_error,
    status=STATUS,
    adapter=CodeArtsPipeline,
    options=Options,
    demo=Demo(
        options={"project_id": "fleet"},
        ids=lambda n: (f"fleet-v5-{n:02d}",),
        credentials=lambda url, token: HuaweiIAM(
            DEMO_USER, token, DEMO_DOMAIN, DEMO_PROJECT, iam_url=url
        ),
    ),
    regions=PIPELINE_REGIONS,
    binder=_bind,
    example_account="""\
# Huawei Cloud CodeArts Pipeline (API v5): one project per account.
# An IAM user's password token, scoped to the project and renewed before it expires.
[accounts.huawei-pipeline]
vendor = "codearts_pipeline"
region = "cn-north-4"   # or the host itself:
# endpoint = "https://cloudpipeline-ext.cn-north-4.myhuaweicloud.com"
project_id = "0123456789abcdef0123456789abcdef"
# pipelines = "*"   # follow every pipeline of the project (or a glob: "release-*")
auth = "iam"
user = "ci-reader"                # the IAM user, its account (domain) and the token's project
domain = "my-account"
password_env = "HUAWEI_IAM_PASSWORD"
project = "cn-north-4"
# Or AK/SK signing, as the official SDK does (X-Project-Id is project_id above):
# auth = "aksk"
# ak_env = "HUAWEICLOUD_SDK_AK"
# sk_env = "HUAWEICLOUD_SDK_SK"
# security_token_env = "HUAWEICLOUD_SDK_SECURITY_TOKEN"   # temporary AK/SK only
# Or a ready-made token:
# auth = "token"
# token_env = "HUAWEI_TOKEN"
""",
    example_pipeline="""\
[[pipelines]]
account = "huawei-pipeline"
pipeline_id = "d1971a2b3c4d4e5f8a9b0c1d2e3f4a5b"
name = "release"
""",
)
