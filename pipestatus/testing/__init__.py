"""A simulated CI vendor server on 127.0.0.1, for end-to-end tests, the demo and benchmarks.

``VendorServer`` is a real :mod:`aiohttp.web` server that speaks the three vendor dialects
pipestatus reads, with the payload shapes of the vendors' documentation:

* ``codearts_repo`` -- Huawei CodeArts Repo v4, header ``X-Auth-Token``:
  ``GET /v4/repositories/{repository_id}/pipelines/{pipeline_id}/latest-jobs`` and the paged
  ``GET /v4/repositories/{repository_id}/pipelines/{pipeline_id}/jobs?offset=&limit=``
  (``X-Total`` header; ``limit`` 1..100, default 20).
* ``codearts_pipeline`` -- Huawei CodeArts Pipeline v5, header ``X-Auth-Token``:
  ``POST /v5/{project_id}/api/pipelines/status`` with a JSON array of pipeline IDs; unknown IDs
  and pipelines without a run are silently omitted, like the real API.
* ``yunxiao`` -- Alibaba Yunxiao Flow, header ``x-yunxiao-token``:
  ``GET /oapi/v1/flow/organizations/pipelines/{pipelineId}/runs/latestPipelineRun``,
  ``GET /oapi/v1/flow/organizations/{organizationId}/pipelines/{pipelineId}/runs/latestPipelineRun``
  and ``GET /oapi/v1/flow/pipelines/{pipelineId}/runs/latestPipelineRun``.

Pipelines are described vendor-neutrally with :class:`SimRun`, :class:`SimStage` and
:class:`SimJob`, whose statuses are the canonical words ``pending``, ``running``, ``success``,
``failed``, ``canceled``, ``skipped`` and ``timedout``; the server translates them with the
tables :data:`V4_STATUS`, :data:`V5_RUN_STATUS`, :data:`V5_STAGE_STATUS` and
:data:`YUNXIAO_STATUS`. A status written ``"raw:WORD"`` is sent as ``WORD`` to every vendor, so a
test can send words the client has never seen::

    async with VendorServer(token="secret-token") as server:
        server.add_repo_pipeline(
            2111976239,
            6,
            [  # a script: one element per request, the last one repeats
                SimRun(7, "pending", [SimStage("build", [SimJob("mvn", "pending")])]),
                SimRun(7, "success", [SimStage("build", [SimJob("mvn", "success")])]),
            ],
        )
        server.fault(vendor="codearts_repo", status=503, times=1)  # the first request fails
        async with aiohttp.ClientSession() as session:
            url = f"{server.url}/v4/repositories/2111976239/pipelines/6/latest-jobs"
            async with session.get(url, headers={"X-Auth-Token": "secret-token"}) as resp:
                assert resp.status == 503

A run source is a :class:`SimRun`, a sequence of them (a script that advances one element per
request for that pipeline and then repeats its last element), a callable receiving the seconds
elapsed since the server started (time-driven runs, see :func:`make_fleet`), or ``None`` (the
pipeline exists and has never run). A fault that answers instead of the pipeline (a status, a
redirect, a raw body, an oversized stream) does not advance its script; a fault that damages the
pipeline's own answer (hang, trickle, malformed, truncate, reset, payload mutator, unknown status
word) does. A v4 ``jobs`` request with ``offset > 0`` serves the run of the previous request of
that pipeline, so paging through one run stays consistent.

Faults (:meth:`VendorServer.fault`) replace or damage answers: status codes with bodies and
headers, delays, hangs, trickles, malformed or truncated JSON, connection resets, oversized
streams (generated on the fly, never held in memory), redirects, raw bodies and payload mutators.
:meth:`VendorServer.chaos` injects random faults at a seeded rate. Every 200 GET answer carries an
``ETag``; a matching ``If-None-Match`` gets ``304``. Requests are recorded
(:attr:`VendorServer.requests`) and concurrency is measured (:attr:`VendorServer.peak_in_flight`).

Run standalone with ``python -m pipestatus.testing --fleet`` (see :func:`main`): the first line of
standard output is the server's URL, and it serves until SIGTERM/SIGINT. ``--repo N --v5 N
--yunxiao N`` add static pipelines (v4 repository 1000, pipelines 1..N; v5 project ``proj``,
pipelines ``p0001``...; Yunxiao pipelines ``"1"``...``"N"``); the token is ``--token``
(default ``bench-token``).

Faults are matched before authentication, like a gateway in front of the vendor. Tests can wait
for concurrency with ``await server.wait_in_flight(n)`` (bounded by ``asyncio.timeout``) and free
requests held by a ``hang=True`` fault with :meth:`Fault.release`.

Status word tables (canonical -> vendor):

=========  ========  =========  =========  ========
canonical  v4        v5 run     v5 stage   yunxiao
=========  ========  =========  =========  ========
pending    pending   QUEUED     INIT       WAITING
running    running   RUNNING    RUNNING    RUNNING
success    success   COMPLETED  COMPLETED  SUCCESS
failed     failed    FAILED     FAILED     FAIL
canceled   canceled  CANCELED   CANCELED   CANCELED
skipped    skipped   IGNORED    SKIPPED    SKIPPED
timedout   timedout  FAILED     FAILED     TIMEOUT
=========  ========  =========  =========  ========

v5 has no timeout word, so a timed-out run reads ``FAILED`` there. Error bodies whose codes the
vendor documentation does not give (v4 400, v5 400/401/404, every Yunxiao error) are plausible
inventions, marked in :data:`ERROR_BODIES`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import hashlib
import ipaddress
import json
import random
import signal
import socket
import struct
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final, Literal, TypeAlias

import attrs
from aiohttp import web

__all__ = [
    "CANONICAL_STATUSES",
    "CHAOS_KINDS",
    "ERROR_BODIES",
    "V4_STATUS",
    "V5_RUN_STATUS",
    "V5_STAGE_STATUS",
    "YUNXIAO_STATUS",
    "Fault",
    "RecordedRequest",
    "RunSource",
    "SimJob",
    "SimRun",
    "SimStage",
    "VendorServer",
    "main",
    "make_fleet",
]

# --------------------------------------------------------------------------------------------
# Status tables
# --------------------------------------------------------------------------------------------

CANONICAL_STATUSES: Final = (
    "pending",
    "running",
    "success",
    "failed",
    "canceled",
    "skipped",
    "timedout",
)

#: CodeArts Repo v4 uses the canonical words themselves.
V4_STATUS: Final[Mapping[str, str]] = {word: word for word in CANONICAL_STATUSES}

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

VendorKey: TypeAlias = Literal["codearts_repo", "codearts_pipeline", "yunxiao"]

#: Error bodies by vendor and status. ``codearts_repo`` 401/404 are documented; the rest are
#: plausible inventions in each vendor's shape.
ERROR_BODIES: Final[Mapping[str, Mapping[int, Mapping[str, str]]]] = {
    "codearts_repo": {
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
    },
    "codearts_pipeline": {
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
    },
    "yunxiao": {  # all invented
        401: {"errorCode": "Unauthorized", "errorMessage": "Invalid or expired token."},
        403: {
            "errorCode": "Forbidden",
            "errorMessage": "You do not have permission to access this organization.",
        },
        404: {"errorCode": "NotFound", "errorMessage": "The pipeline or its run does not exist."},
    },
}

_AUTH_HEADER: Final[Mapping[str, str]] = {
    "codearts_repo": "X-Auth-Token",
    "codearts_pipeline": "X-Auth-Token",
    "yunxiao": "x-yunxiao-token",
}

_CST: Final = timezone(timedelta(hours=8), "CST")
_BASE_TIME: Final = datetime(2025, 5, 17, 3, 2, 25, tzinfo=UTC)
_TERMINAL: Final = frozenset({"success", "failed", "canceled", "skipped", "timedout"})
_JSON_TYPE: Final = "application/json;charset=UTF-8"
_HTML_BODY: Final = (
    "<html><head><title>{status} {reason}</title></head>"
    "<body><center><h1>{status} {reason}</h1></center><hr><center>nginx</center></body></html>"
)


def _word(status: str, table: Mapping[str, str]) -> str:
    """Translate a canonical word, passing ``raw:WORD`` through and unknown words verbatim."""
    if status.startswith("raw:"):
        return status[4:]
    return table.get(status, status)


def _canonical(status: str) -> str:
    """The canonical word behind ``status`` ("raw:" words count as running for timing)."""
    return "running" if status.startswith("raw:") else status


def _hex(*parts: object, length: int = 32) -> str:
    """A deterministic hex string made from ``parts``."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:length]


# --------------------------------------------------------------------------------------------
# The vendor-neutral model
# --------------------------------------------------------------------------------------------


@attrs.define
class SimJob:
    """One job; ``status`` is a canonical word or ``"raw:WORD"``; ``id=None`` is auto-assigned."""

    name: str
    status: str
    id: int | None = None
    started_at: datetime | None = None  #: None: derived from the run's times
    finished_at: datetime | None = None  #: None: derived from the run's times


def _derive_stage_status(jobs: Sequence[SimJob]) -> str:
    """The status a stage shows for its jobs, by precedence."""
    words = [_canonical(job.status) for job in jobs]
    if not words:
        return "pending"
    for word in ("running", "failed", "timedout", "canceled"):
        if word in words:
            return word
    if all(w == "skipped" for w in words):
        return "skipped"
    if all(w == "pending" for w in words):
        return "pending"
    if "pending" in words:
        return "running"  # some jobs done, the rest waiting: the stage is under way
    return "success"


@attrs.define
class SimStage:
    """One stage; ``status=None`` derives the word from the jobs (see the module docstring)."""

    name: str
    jobs: list[SimJob] = attrs.field(factory=list)
    status: str | None = None

    @property
    def effective_status(self) -> str:
        """The explicit status, or the one derived from the jobs."""
        return self.status if self.status is not None else _derive_stage_status(self.jobs)


def _default_sha(run: SimRun) -> str:
    return _hex("sha", run.number, length=40)


@attrs.define
class SimRun:
    """One run of a pipeline.

    Missing times are made up: a pending run has none, a running run a start, a finished run a
    start and an end (five minutes apart), all deterministic in ``number``.
    """

    number: int
    status: str
    stages: list[SimStage] = attrs.field(factory=list)
    ref: str = "main"
    sha: str = attrs.field(default=attrs.Factory(_default_sha, takes_self=True))
    started_at: datetime | None = None
    finished_at: datetime | None = None
    created_at: datetime | None = None  #: None: two seconds before the start


RunSource: TypeAlias = SimRun | Sequence[SimRun] | Callable[[float], SimRun | None] | None


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


@attrs.frozen
class _Times:
    created: datetime
    started: datetime | None
    finished: datetime | None


@attrs.frozen
class _Timed:
    """A run with times resolved for the run, each stage and each job."""

    run: _Times
    stages: list[_Times]
    jobs: list[list[_Times]]


def _resolve_times(run: SimRun, extra: list[SimJob] | None = None) -> _Timed:
    status = _canonical(run.status)
    started = run.started_at
    if started is None and status != "pending":
        started = _BASE_TIME + timedelta(hours=run.number)
    finished = run.finished_at
    if finished is None and status in _TERMINAL and started is not None:
        finished = started + timedelta(minutes=5)
    created = run.created_at or (
        (started or _BASE_TIME + timedelta(hours=run.number)) - timedelta(seconds=2)
    )
    stages = list(run.stages)
    if extra:
        stages.append(SimStage("extra", extra))
    n_jobs = sum(len(stage.jobs) for stage in stages) or 1
    if started is not None and finished is not None and finished > started:
        step = (finished - started) / n_jobs
    else:
        step = timedelta(seconds=30)
    stage_times: list[_Times] = []
    job_times: list[list[_Times]] = []
    k = 0
    for stage in stages:
        row: list[_Times] = []
        for job in stage.jobs:
            word = _canonical(job.status)
            j_start, j_end = job.started_at, job.finished_at
            if started is not None and word not in ("pending", "skipped"):
                if j_start is None:
                    j_start = started + step * k
                if j_end is None and word in _TERMINAL:
                    j_end = j_start + step * 0.9
            row.append(_Times(created, j_start, j_end))
            k += 1
        starts = [t.started for t in row if t.started is not None]
        ends = [t.finished for t in row if t.finished is not None]
        s_status = _canonical(stage.effective_status)
        stage_times.append(
            _Times(
                created,
                min(starts) if starts else None,
                max(ends) if ends and s_status in _TERMINAL else None,
            )
        )
        job_times.append(row)
    return _Timed(_Times(created, started, finished), stage_times, job_times)


def _iso_cst(value: datetime | None) -> str | None:
    """``2025-05-17T11:02:25.000+08:00``, or None."""
    if value is None:
        return None
    local = value.astimezone(_CST)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}+08:00"


def _naive_cst(value: datetime | None) -> str | None:
    """``2023-03-04 16:48:09`` in China Standard Time, or None."""
    return None if value is None else value.astimezone(_CST).strftime("%Y-%m-%d %H:%M:%S")


def _epoch_ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _extra_jobs(run: SimRun, count: int) -> list[SimJob]:
    word = "success" if _canonical(run.status) in _TERMINAL else "pending"
    return [SimJob(f"extra-{i + 1}", word) for i in range(count)]


# --------------------------------------------------------------------------------------------
# Pipelines, faults, recordings
# --------------------------------------------------------------------------------------------


@attrs.define
class _Pipeline:
    vendor: VendorKey
    key: str
    source: RunSource
    extra_jobs: int = 0
    organization_id: str | None = None
    position: int = 0
    last: SimRun | None = None

    def current(self, elapsed: float, *, advance: bool = True) -> SimRun | None:
        """The run to serve; a script advances one element per call when ``advance``."""
        source = self.source
        if not advance and self.last is not None:
            return self.last
        run: SimRun | None
        if source is None or isinstance(source, SimRun):
            run = source
        elif callable(source):
            run = source(elapsed)
        elif len(source) == 0:
            run = None
        else:
            run = source[min(self.position, len(source) - 1)]
            self.position += 1
        self.last = run
        return run


@attrs.frozen
class RecordedRequest:
    """One request as the server saw it; ``fault`` names the fault applied, if any."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  #: lower-case keys
    body: bytes
    peer: str | None
    vendor: str | None = None
    fault: str | None = None


@attrs.define(eq=False)
class Fault:
    """A fault applied to matching requests; returned by :meth:`VendorServer.fault`.

    ``hits`` counts the requests it was applied to; :meth:`remove` withdraws it and
    :meth:`release` lets requests it holds with ``hang=True`` go on to a normal answer.
    """

    vendor: str | None = None
    pipeline: str | None = None
    path_prefix: str | None = None
    times: int | None = None
    status: int | None = None
    body: Any = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    retry_after: float | str | None = None
    delay: float = 0.0
    hang: bool | float = False
    trickle: float | None = None
    malformed: bool = False
    truncate: bool = False
    reset: bool = False
    oversize_bytes: int | None = None
    announce: bool = False
    redirect_to: str | None = None
    redirect_status: int = 302
    payload_mutator: Callable[[Any], Any] | None = None
    name: str = "fault"
    hits: int = 0
    _released: asyncio.Event | None = attrs.field(default=None, init=False, repr=False)
    _server: VendorServer | None = attrs.field(default=None, init=False, repr=False)

    def matches(self, vendor: str | None, pipelines: Iterable[str], path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.vendor is not None and self.vendor != vendor:
            return False
        if self.pipeline is not None and self.pipeline not in pipelines:
            return False
        return self.path_prefix is None or path.startswith(self.path_prefix)

    def remove(self) -> None:
        """Withdraw this fault (requests already held by it stay held until released)."""
        if self._server is not None:
            with contextlib.suppress(ValueError):
                self._server._faults.remove(self)

    def release(self) -> None:
        """Let requests hung by this fault continue to their normal answer."""
        self._released_event().set()

    def _released_event(self) -> asyncio.Event:
        if self._released is None:
            self._released = asyncio.Event()
        return self._released


CHAOS_KINDS: Final = (
    "http_500",
    "http_502",
    "http_503",
    "http_429",
    "reset",
    "hang",
    "truncate",
    "malformed",
    "unknown_status",
    "trickle",
)


def _mutate_status(payload: Any) -> Any:
    """Replace the top-level status word(s) with one nobody documents."""
    if isinstance(payload, dict):
        return {**payload, "status": "EXPLODED"}
    if isinstance(payload, list):
        return [_mutate_status(item) if isinstance(item, dict) else item for item in payload]
    return payload


@attrs.define
class _Answer:
    status: int
    payload: Any
    headers: dict[str, str] = attrs.field(factory=dict)


Handler: TypeAlias = Callable[[web.Request, bytes], Awaitable[_Answer]]


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class VendorServer:
    """A simulated vendor server on 127.0.0.1; use it as an async context manager.

    ``port=0`` picks a free port. ``record_limit`` bounds :attr:`requests` (oldest dropped).
    """

    def __init__(
        self,
        *,
        token: str = "secret-token",  # noqa: S107 - the demo token of a simulated server
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
        record_limit: int = 10_000,
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"VendorServer binds loopback addresses only, not {host!r}")
        self._token = token
        self.seed = seed
        self.host = host
        self.port = port
        self.record = record
        self.etags = True
        self.request_count = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.chaos_rate = 0.0
        self.chaos_hang = 30.0
        self.chaos_trickle = 0.05
        self._chaos_kinds: tuple[str, ...] = CHAOS_KINDS
        self._chaos_rng = random.Random(seed)
        self._requests: collections.deque[RecordedRequest] = collections.deque(maxlen=record_limit)
        self._faults: list[Fault] = []
        self._repo: dict[tuple[int, int], _Pipeline] = {}
        self._v5: dict[str, dict[str, _Pipeline]] = {}
        self._yunxiao: dict[str, _Pipeline] = {}
        self._ids: dict[tuple[object, ...], int] = {}
        self._next_id = 10_001
        self._started = time.monotonic()
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None
        self._in_flight_changed: asyncio.Condition | None = None

    def __repr__(self) -> str:
        return f"<VendorServer url={self.url if self._runner else None!r} has_token=True>"

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (valid once started)."""
        if self._runner is None:
            raise RuntimeError("VendorServer is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def token(self) -> str:
        """The token every request must carry in its vendor's header."""
        return self._token

    async def start(self) -> None:
        """Bind and serve; prefer ``async with``."""
        self._closing = asyncio.Event()
        self._in_flight_changed = asyncio.Condition()
        app = web.Application(middlewares=[self._middleware])
        self._add_routes(app)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        self._started = time.monotonic()
        self._runner = runner

    async def close(self) -> None:
        """Stop serving; hung, trickling and streaming answers are cut off."""
        if self._closing is not None:
            self._closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> VendorServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- pipelines ---------------------------------------------------------------------------

    def add_repo_pipeline(
        self, repository_id: int, pipeline_id: int, run: RunSource, *, extra_jobs: int = 0
    ) -> None:
        """Serve a CodeArts Repo v4 pipeline; ``extra_jobs`` adds a stage of that many jobs."""
        self._repo[(repository_id, pipeline_id)] = _Pipeline(
            "codearts_repo", f"{repository_id}/{pipeline_id}", run, extra_jobs=extra_jobs
        )

    def add_v5_pipeline(self, project_id: str, pipeline_id: str, run: RunSource) -> None:
        """Serve a CodeArts Pipeline v5 pipeline; ``run=None``: no runs, omitted from answers."""
        self._v5.setdefault(project_id, {})[pipeline_id] = _Pipeline(
            "codearts_pipeline", pipeline_id, run
        )

    def add_yunxiao_pipeline(
        self, pipeline_id: str, run: RunSource, organization_id: str | None = None
    ) -> None:
        """Serve a Yunxiao pipeline; with ``organization_id`` other organizations get 403."""
        self._yunxiao[pipeline_id] = _Pipeline(
            "yunxiao", pipeline_id, run, organization_id=organization_id
        )

    # -- faults ------------------------------------------------------------------------------

    def fault(
        self,
        *,
        vendor: str | None = None,
        pipeline: str | int | None = None,
        path_prefix: str | None = None,
        times: int | None = None,
        status: int | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        retry_after: float | str | None = None,
        delay: float = 0.0,
        hang: bool = False,
        trickle: float | None = None,
        malformed: bool = False,
        truncate: bool = False,
        reset: bool = False,
        oversize_bytes: int | None = None,
        announce: bool = False,
        redirect_to: str | None = None,
        redirect_status: int = 302,
        payload_mutator: Callable[[Any], Any] | None = None,
    ) -> Fault:
        """Damage the next ``times`` matching requests (``None``: until cleared).

        Matching is by vendor key, pipeline ID (for v5, any ID in the request body) and path
        prefix; the first matching fault wins. Effects, in order: ``delay`` seconds, ``hang``
        (until :meth:`Fault.release` or server close), then one answer: ``redirect_to`` (with
        ``redirect_status``), ``status`` (default body an nginx-like HTML page; ``retry_after``
        sets ``Retry-After``), ``body`` (a 200 with that raw body: bytes/str verbatim, anything
        else as JSON), ``oversize_bytes`` (a streamed valid-looking JSON of that size, chunked
        unless ``announce``), ``malformed`` (invalid JSON), ``truncate``/``reset`` (Content-Length
        larger than what is sent, then close or TCP reset mid-body), ``trickle`` (one byte every
        ``trickle`` seconds). ``payload_mutator`` alters the rendered JSON first.
        """
        made = Fault(
            vendor=vendor,
            pipeline=None if pipeline is None else str(pipeline),
            path_prefix=path_prefix,
            times=times,
            status=status,
            body=body,
            headers=dict(headers or {}),
            retry_after=retry_after,
            delay=delay,
            hang=hang,
            trickle=trickle,
            malformed=malformed,
            truncate=truncate,
            reset=reset,
            oversize_bytes=oversize_bytes,
            announce=announce,
            redirect_to=redirect_to,
            redirect_status=redirect_status,
            payload_mutator=payload_mutator,
        )
        made._server = self
        self._faults.append(made)
        return made

    def clear_faults(self) -> None:
        """Withdraw every fault (hung requests stay hung until released or the server closes)."""
        self._faults.clear()

    def chaos(
        self,
        rate: float,
        seed: int = 0,
        kinds: Iterable[str] = CHAOS_KINDS,
        *,
        hang: float = 30.0,
        trickle: float = 0.05,
    ) -> None:
        """Give each request a random fault from ``kinds`` with probability ``rate`` (0: off).

        Hangs last ``hang`` seconds, then answer normally; trickles send a byte every
        ``trickle`` seconds; 429s carry ``Retry-After`` of 0 or 1.
        """
        chosen = tuple(kinds)
        unknown = set(chosen) - set(CHAOS_KINDS)
        if unknown:
            raise ValueError(f"unknown chaos kinds: {sorted(unknown)}")
        self.chaos_rate = rate
        self._chaos_rng = random.Random(seed)
        self._chaos_kinds = chosen
        self.chaos_hang = hang
        self.chaos_trickle = trickle

    def _chaos_fault(self) -> Fault | None:
        if self.chaos_rate <= 0 or not self._chaos_kinds:
            return None
        rng = self._chaos_rng
        if rng.random() >= self.chaos_rate:
            return None
        kind = rng.choice(self._chaos_kinds)
        made: Fault
        if kind.startswith("http_"):
            code = int(kind[5:])
            made = Fault(status=code, retry_after=rng.choice((0, 1)) if code == 429 else None)
        elif kind == "reset":
            made = Fault(reset=True)
        elif kind == "hang":
            made = Fault(hang=self.chaos_hang)
        elif kind == "truncate":
            made = Fault(truncate=True)
        elif kind == "malformed":
            made = Fault(malformed=True)
        elif kind == "unknown_status":
            made = Fault(payload_mutator=_mutate_status)
        else:
            made = Fault(trickle=self.chaos_trickle)
        made.name = f"chaos:{kind}"
        return made

    # -- recording ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """The recorded requests, oldest first (bounded by ``record_limit``)."""
        return list(self._requests)

    def reset_stats(self) -> None:
        """Forget recorded requests and counters (``peak_in_flight`` restarts at ``in_flight``)."""
        self._requests.clear()
        self.request_count = 0
        self.peak_in_flight = self.in_flight

    async def wait_in_flight(self, count: int) -> None:
        """Wait until at least ``count`` requests are being handled at once.

        Bound it with ``asyncio.timeout``.
        """
        cond = self._in_flight_changed
        if cond is None:
            raise RuntimeError("VendorServer is not started")
        async with cond:
            await cond.wait_for(lambda: self.in_flight >= count)

    async def _set_in_flight(self, delta: int) -> None:
        self.in_flight += delta
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        if self._in_flight_changed is not None:
            async with self._in_flight_changed:
                self._in_flight_changed.notify_all()

    # -- request pipeline --------------------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        routes: list[tuple[str, str, VendorKey, Handler]] = [
            (
                "GET",
                "/v4/repositories/{repository_id}/pipelines/{pipeline_id}/latest-jobs",
                "codearts_repo",
                self._v4_latest_jobs,
            ),
            (
                "GET",
                "/v4/repositories/{repository_id}/pipelines/{pipeline_id}/jobs",
                "codearts_repo",
                self._v4_jobs,
            ),
            ("POST", "/v5/{project_id}/api/pipelines/status", "codearts_pipeline", self._v5_status),
            (
                "GET",
                "/oapi/v1/flow/organizations/pipelines/{pipelineId}/runs/latestPipelineRun",
                "yunxiao",
                self._yunxiao_latest,
            ),
            (
                "GET",
                "/oapi/v1/flow/organizations/{organizationId}/pipelines/{pipelineId}"
                "/runs/latestPipelineRun",
                "yunxiao",
                self._yunxiao_latest,
            ),
            (
                "GET",
                "/oapi/v1/flow/pipelines/{pipelineId}/runs/latestPipelineRun",
                "yunxiao",
                self._yunxiao_latest,
            ),
        ]
        for method, path, vendor, handler in routes:
            app.router.add_route(method, path, self._endpoint(vendor, handler))

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.request_count += 1
        await self._set_in_flight(1)
        try:
            return await handler(request)
        finally:
            await self._set_in_flight(-1)

    def _endpoint(
        self, vendor: VendorKey, handler: Handler
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            return await self._serve(request, vendor, handler)

        return endpoint

    async def _serve(
        self, request: web.Request, vendor: VendorKey, handler: Handler
    ) -> web.StreamResponse:
        body = await request.read()
        pipelines = self._pipelines_of(request, vendor, body)
        fault = next((f for f in self._faults if f.matches(vendor, pipelines, request.path)), None)
        if fault is not None:
            fault.hits += 1
            if fault.times is not None and fault.hits >= fault.times:
                fault.remove()
        else:
            fault = self._chaos_fault()
            if fault is not None:
                fault.hits += 1
        if self.record:
            peer = request.transport.get_extra_info("peername") if request.transport else None
            self._requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.path,
                    query=dict(request.query),
                    headers={k.lower(): v for k, v in request.headers.items()},
                    body=body,
                    peer=f"{peer[0]}:{peer[1]}" if peer else None,
                    vendor=vendor,
                    fault=fault.name if fault is not None else None,
                )
            )
        if fault is None:
            return self._respond(request, await handler(request, body))
        return await self._faulty(request, vendor, handler, body, fault)

    def _pipelines_of(self, request: web.Request, vendor: VendorKey, body: bytes) -> list[str]:
        if vendor == "codearts_pipeline":
            with contextlib.suppress(ValueError):
                ids = json.loads(body)
                if isinstance(ids, list):
                    return [str(i) for i in ids]
            return []
        key = "pipeline_id" if vendor == "codearts_repo" else "pipelineId"
        return [request.match_info.get(key, "")]

    def _authorized(self, request: web.Request, vendor: VendorKey) -> bool:
        return request.headers.get(_AUTH_HEADER[vendor]) == self._token

    def _respond(self, request: web.Request, answer: _Answer) -> web.StreamResponse:
        data = json.dumps(answer.payload, ensure_ascii=False).encode()
        headers = {"Content-Type": _JSON_TYPE, **answer.headers}
        if request.method == "GET" and answer.status == 200 and self.etags:
            etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
            headers["ETag"] = etag
            if _etag_matches(request.headers.get("If-None-Match"), etag):
                del headers["Content-Type"]
                return web.Response(status=304, headers=headers)
        return web.Response(status=answer.status, body=data, headers=headers)

    async def _wait_closing(self, seconds: float | None, *others: asyncio.Event) -> bool:
        """Wait up to ``seconds`` for close or one of ``others``; True when closing."""
        assert self._closing is not None
        events = [self._closing, *others]
        waiters = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        return self._closing.is_set()

    async def _faulty(
        self,
        request: web.Request,
        vendor: VendorKey,
        handler: Handler,
        body: bytes,
        fault: Fault,
    ) -> web.StreamResponse:
        if fault.delay > 0 and await self._wait_closing(fault.delay):
            return _cut(request)
        if fault.hang is not False:
            limit = None if fault.hang is True else float(fault.hang)
            if await self._wait_closing(limit, fault._released_event()):
                return _cut(request)
        if fault.redirect_to is not None:
            return web.Response(
                status=fault.redirect_status,
                headers={"Location": fault.redirect_to, **fault.headers},
            )
        if fault.status is not None:
            return self._fault_status(vendor, fault)
        if fault.body is not None:
            raw = fault.body
            data = raw.encode() if isinstance(raw, str) else raw
            if not isinstance(data, bytes):
                data = json.dumps(raw).encode()
            return web.Response(
                status=200, body=data, headers={"Content-Type": _JSON_TYPE, **fault.headers}
            )
        if fault.oversize_bytes is not None:
            return await self._oversize(request, fault)
        answer = await handler(request, body)
        if fault.payload_mutator is not None and answer.status == 200:
            answer.payload = fault.payload_mutator(answer.payload)
        data = json.dumps(answer.payload, ensure_ascii=False).encode()
        headers = {"Content-Type": _JSON_TYPE, **answer.headers, **fault.headers}
        if fault.malformed:
            cut = max(1, len(data) // 2)
            data = data[:cut] + b'",,}{"status": '
            return web.Response(status=answer.status, body=data, headers=headers)
        if fault.truncate or fault.reset:
            return await self._truncated(request, answer.status, data, headers, fault.reset)
        if fault.trickle is not None:
            return await self._trickle(request, answer.status, data, headers, fault.trickle)
        return self._respond(
            request, attrs.evolve(answer, headers={**answer.headers, **fault.headers})
        )

    def _fault_status(self, vendor: VendorKey, fault: Fault) -> web.Response:
        status = fault.status
        assert status is not None
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        raw = fault.body
        if raw is None:
            reason = web.Response(status=status).reason
            raw = _HTML_BODY.format(status=status, reason=reason)
            headers.setdefault("Content-Type", "text/html")
        if isinstance(raw, str):
            data = raw.encode()
        elif isinstance(raw, bytes):
            data = raw
        else:
            data = json.dumps(raw).encode()
            headers.setdefault("Content-Type", _JSON_TYPE)
        return web.Response(status=status, body=data, headers=headers)

    async def _truncated(
        self,
        request: web.Request,
        status: int,
        data: bytes,
        headers: Mapping[str, str],
        reset: bool,
    ) -> web.StreamResponse:
        resp = web.StreamResponse(status=status, headers=headers)
        resp.content_length = len(data) + 1024
        try:
            await resp.prepare(request)
            await resp.write(data[: max(1, len(data) // 2)])
        except ConnectionError:
            return resp
        transport = request.transport
        if transport is not None:
            if reset:
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()
            else:
                transport.close()
        return resp

    async def _trickle(
        self,
        request: web.Request,
        status: int,
        data: bytes,
        headers: Mapping[str, str],
        interval: float,
    ) -> web.StreamResponse:
        resp = web.StreamResponse(status=status, headers=headers)
        resp.content_length = len(data)
        try:
            await resp.prepare(request)
            for i in range(len(data)):
                await resp.write(data[i : i + 1])
                if i + 1 < len(data) and await self._wait_closing(interval):
                    return _cut(request, resp)
        except ConnectionError:
            pass
        return resp

    async def _oversize(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        size = fault.oversize_bytes
        assert size is not None
        head, tail = b'{"status":"success","padding":"', b'"}'
        resp = web.StreamResponse(status=200, headers={"Content-Type": _JSON_TYPE})
        if fault.announce:
            resp.content_length = size
        else:
            resp.enable_chunked_encoding()
        closing = self._closing
        assert closing is not None
        try:
            await resp.prepare(request)
            if size < len(head) + len(tail):
                await resp.write((b" " * size)[:size])
                return resp
            await resp.write(head)
            remaining = size - len(head) - len(tail)
            chunk = b"x" * 65536
            while remaining > 0:
                if closing.is_set():
                    return _cut(request, resp)
                piece = chunk if remaining >= len(chunk) else chunk[:remaining]
                await resp.write(piece)
                remaining -= len(piece)
            await resp.write(tail)
        except ConnectionError:
            pass
        return resp

    # -- vendor handlers ---------------------------------------------------------------------

    def _elapsed(self) -> float:
        return time.monotonic() - self._started

    def _id(self, *key: object) -> int:
        found = self._ids.get(key)
        if found is None:
            found = self._ids[key] = self._next_id
            self._next_id += 1
        return found

    def _v4_error(self, status: int) -> _Answer:
        return _Answer(status, dict(ERROR_BODIES["codearts_repo"][status]))

    def _v4_find(self, request: web.Request) -> _Pipeline | _Answer:
        if not self._authorized(request, "codearts_repo"):
            return self._v4_error(401)
        try:
            key = (
                int(request.match_info["repository_id"]),
                int(request.match_info["pipeline_id"]),
            )
        except ValueError:
            return self._v4_error(404)
        pipeline = self._repo.get(key)
        return self._v4_error(404) if pipeline is None else pipeline

    def _v4_stages(
        self, pipeline: _Pipeline, run: SimRun
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The ``stages`` of latest-jobs and the flat ``jobs`` list, in stage order."""
        repo_id, pipe_id = pipeline.key.split("/")
        extra = _extra_jobs(run, pipeline.extra_jobs) if pipeline.extra_jobs else []
        stages = [*run.stages, SimStage("extra", extra)] if extra else list(run.stages)
        timed = _resolve_times(run, extra)
        target = f"https://devcloud.example.com/cicd/project/{repo_id}/pipeline/detail/{pipe_id}"
        out_stages: list[dict[str, Any]] = []
        flat: list[dict[str, Any]] = []
        for s_index, stage in enumerate(stages):
            stage_id = self._id(pipeline.vendor, pipeline.key, run.number, "stage", s_index)
            jobs: list[dict[str, Any]] = []
            for j_index, job in enumerate(stage.jobs):
                t = timed.jobs[s_index][j_index]
                job_id = job.id
                if job_id is None:
                    job_id = self._id(pipeline.vendor, pipeline.key, run.number, s_index, j_index)
                item = {
                    "id": job_id,
                    "sha": run.sha,
                    "ref": run.ref,
                    "status": _word(job.status, V4_STATUS),
                    "name": job.name,
                    "target_url": f"{target}/{_hex('run', pipeline.key, run.number)}",
                    "created_at": _iso_cst(t.created),
                    "started_at": _iso_cst(t.started),
                    "finished_at": _iso_cst(t.finished),
                    "updated_at": _iso_cst(t.finished or t.started or t.created),
                    "third_build_id": _hex("build", job_id),
                }
                jobs.append(item)
                flat.append({**item, "stage_id": stage_id, "stage": stage.name})
            out_stages.append(
                {
                    "id": stage_id,
                    "name": stage.name,
                    "status": _word(stage.effective_status, V4_STATUS),
                    "sort_id": s_index + 1,
                    "jobs": jobs,
                }
            )
        return out_stages, flat

    async def _v4_latest_jobs(self, request: web.Request, body: bytes) -> _Answer:
        found = self._v4_find(request)
        if isinstance(found, _Answer):
            return found
        run = found.current(self._elapsed())
        if run is None:
            return self._v4_error(404)
        stages, _ = self._v4_stages(found, run)
        pipe_id = int(found.key.split("/")[1])
        return _Answer(
            200, {"id": pipe_id, "status": _word(run.status, V4_STATUS), "stages": stages}
        )

    async def _v4_jobs(self, request: web.Request, body: bytes) -> _Answer:
        found = self._v4_find(request)
        if isinstance(found, _Answer):
            return found
        try:
            offset = int(request.query.get("offset", "0"))
            limit = int(request.query.get("limit", "20"))
        except ValueError:
            return self._v4_error(400)
        if not (0 <= offset <= 2147483647 and 1 <= limit <= 100):
            return self._v4_error(400)
        run = found.current(self._elapsed(), advance=offset == 0)
        if run is None:
            return self._v4_error(404)
        _, flat = self._v4_stages(found, run)
        return _Answer(200, flat[offset : offset + limit], {"X-Total": str(len(flat))})

    def _v5_item(self, pipeline: _Pipeline, run: SimRun) -> dict[str, Any]:
        timed = _resolve_times(run)
        stages = [
            {
                "name": stage.name,
                "sequence": index,
                "status": _word(stage.effective_status, V5_STAGE_STATUS),
                "start_time": _naive_cst(timed.stages[index].started),
                "end_time": _naive_cst(timed.stages[index].finished),
            }
            for index, stage in enumerate(run.stages)
        ]
        run_id = _hex("v5run", pipeline.key, run.number)
        base = "https://devcloud.example.com/cicd/project/sim/pipeline"
        return {
            "pipeline_id": pipeline.key,
            "pipeline_run_id": run_id,
            "executor_id": _hex("executor"),
            "executor_name": "Simulated user",
            "stage_status_list": stages,
            "status": _word(run.status, V5_RUN_STATUS),
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
            "start_time": _epoch_ms(timed.run.started or timed.run.created),
            "end_time": _epoch_ms(timed.run.finished),
            "detail_url": f"{base}/detail/{pipeline.key}/{run_id}",
            "modify_url": f"{base}/edit/{pipeline.key}",
        }

    async def _v5_status(self, request: web.Request, body: bytes) -> _Answer:
        if not self._authorized(request, "codearts_pipeline"):
            return _Answer(401, dict(ERROR_BODIES["codearts_pipeline"][401]))
        project = self._v5.get(request.match_info["project_id"])
        if project is None:
            return _Answer(404, dict(ERROR_BODIES["codearts_pipeline"][404]))
        try:
            ids = json.loads(body)
        except ValueError:
            ids = None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return _Answer(400, dict(ERROR_BODIES["codearts_pipeline"][400]))
        elapsed = self._elapsed()
        items = []
        for pipeline_id in dict.fromkeys(ids):
            pipeline = project.get(pipeline_id)
            run = pipeline.current(elapsed) if pipeline is not None else None
            if pipeline is not None and run is not None:
                items.append(self._v5_item(pipeline, run))
        return _Answer(200, items)

    def _yunxiao_payload(self, pipeline: _Pipeline, run: SimRun) -> dict[str, Any]:
        timed = _resolve_times(run)
        numeric = int(pipeline.key) if pipeline.key.isdigit() else int(_hex(pipeline.key)[:7], 16)
        stages = []
        for s_index, stage in enumerate(run.stages):
            jobs = []
            for j_index, job in enumerate(stage.jobs):
                t = timed.jobs[s_index][j_index]
                job_id = job.id
                if job_id is None:
                    job_id = self._id(pipeline.vendor, pipeline.key, run.number, s_index, j_index)
                result = {
                    "data": {"RELEASE_INFO": "[]", "ARTIFACTSV2": "[]", "ARTIFACTS": "[]"},
                    "requestId": _hex("request", job_id, run.number),
                    "successful": _canonical(job.status) not in ("failed", "timedout"),
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
                        "endTime": _epoch_ms(t.finished),
                        "id": job_id,
                        "jobSign": f"job-{s_index}-{j_index}",
                        "name": job.name,
                        "params": "{}",
                        "result": json.dumps(result, separators=(",", ":")),
                        "startTime": _epoch_ms(t.started),
                        "status": _word(job.status, YUNXIAO_STATUS),
                    }
                )
            stage_times = timed.stages[s_index]
            stages.append(
                {
                    "index": f"Group0-Stage{s_index}",
                    "name": stage.name,
                    "stageInfo": {
                        "endTime": _epoch_ms(stage_times.finished),
                        "jobs": jobs,
                        "name": stage.name,
                        "startTime": _epoch_ms(stage_times.started),
                        "status": _word(stage.effective_status, YUNXIAO_STATUS),
                    },
                }
            )
        updated = timed.run.finished or timed.run.started or timed.run.created
        return {
            "createTime": _epoch_ms(timed.run.created),
            "creatorAccountId": "1222222222",
            "globalParams": [{"encrypted": False, "key": "key", "value": "value"}],
            "groups": [{"id": 1, "name": "Run command"}],
            "modifierAccountId": "1222222222",
            "pipelineId": numeric,
            "pipelineRunId": run.number,
            "pipelineType": "default",
            "sources": [
                {
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
                    "sign": _hex("source", pipeline.key, length=16),
                    "type": "Codeup",
                }
            ],
            "stageGroup": [],
            "stages": stages,
            "status": _word(run.status, YUNXIAO_STATUS),
            "triggerMode": 1,
            "updateTime": _epoch_ms(updated),
        }

    async def _yunxiao_latest(self, request: web.Request, body: bytes) -> _Answer:
        errors = ERROR_BODIES["yunxiao"]
        if not self._authorized(request, "yunxiao"):
            return _Answer(401, dict(errors[401]))
        pipeline = self._yunxiao.get(request.match_info["pipelineId"])
        if pipeline is None:
            return _Answer(404, dict(errors[404]))
        org = request.match_info.get("organizationId")
        if org is not None and pipeline.organization_id not in (None, org):
            return _Answer(403, dict(errors[403]))
        run = pipeline.current(self._elapsed())
        if run is None:
            return _Answer(404, dict(errors[404]))
        return _Answer(200, self._yunxiao_payload(pipeline, run))


def _cut(request: web.Request, resp: web.StreamResponse | None = None) -> web.StreamResponse:
    """Drop the connection without a (complete) answer; aiohttp then writes nothing more."""
    if request.transport is not None:
        request.transport.close()
    return resp if resp is not None else web.Response(status=503)


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = [part.strip() for part in header.split(",")]
    return "*" in candidates or any(c.removeprefix("W/") == etag for c in candidates)


# --------------------------------------------------------------------------------------------
# The fleet: time-driven pipelines for the demo
# --------------------------------------------------------------------------------------------

_STAGE_PLANS: Final = (
    ("checkout", ("clone",)),
    ("build", ("compile", "lint", "package")),
    ("test", ("unit", "integration")),
    ("scan", ("sast",)),
    ("deploy", ("staging",)),
)


@attrs.frozen
class _RunPlan:
    """One run of a fleet pipeline, in simulated seconds from the run's start."""

    number: int
    queue: float
    stages: tuple[tuple[str, tuple[tuple[str, float], ...]], ...]  # (stage, ((job, secs),))
    outcome: str
    stop_stage: int  # where failure, cancel or timeout strike
    stop_job: int
    idle: float

    @property
    def active(self) -> float:
        stop = len(self.stages) if self.outcome == "success" else self.stop_stage + 1
        stages = self.stages[:stop]
        return sum(max(d for _, d in jobs) for _, jobs in stages)

    @property
    def length(self) -> float:
        return self.queue + self.active + self.idle


def _plan(seed: int, key: str, number: int) -> _RunPlan:
    rng = random.Random(f"{seed}/{key}/{number}")
    chosen = [plan for plan in _STAGE_PLANS if plan[0] in ("build", "test") or rng.random() < 0.6]
    stages = tuple(
        (name, tuple((job, rng.uniform(3, 15)) for job in jobs[: rng.randint(1, len(jobs))]))
        for name, jobs in chosen
    )
    outcome = rng.choices(("success", "failed", "canceled", "timedout"), (70, 18, 6, 6))[0]
    stop_stage = rng.randrange(len(stages))
    return _RunPlan(
        number=number,
        queue=rng.uniform(1, 6),
        stages=stages,
        outcome=outcome,
        stop_stage=stop_stage,
        stop_job=rng.randrange(len(stages[stop_stage][1])),
        idle=rng.uniform(5, 20),
    )


def _plan_at(plan: _RunPlan, t: float, run_start: datetime, speed: float) -> SimRun:
    """The state of ``plan`` at ``t`` simulated seconds after it was queued."""

    def wall(seconds: float) -> datetime:
        return run_start + timedelta(seconds=seconds / speed)

    sha = _hex("fleet-sha", plan.number, plan.queue, length=40)
    if t < plan.queue:
        stages = [
            SimStage(name, [SimJob(j, "pending") for j, _ in jobs]) for name, jobs in plan.stages
        ]
        return SimRun(
            number=plan.number, status="pending", stages=stages, sha=sha, created_at=run_start
        )
    clock = plan.queue
    out: list[SimStage] = []
    run_status = "running"
    run_end: datetime | None = None
    stopped = False
    for s_index, (name, jobs) in enumerate(plan.stages):
        sim_jobs: list[SimJob] = []
        stage_len = max(d for _, d in jobs)
        is_stop = plan.outcome != "success" and s_index == plan.stop_stage
        for j_index, (job, duration) in enumerate(jobs):
            if stopped:
                sim_jobs.append(SimJob(job, "skipped"))
                continue
            begin = clock
            end = clock + (stage_len if is_stop and j_index == plan.stop_job else duration)
            if t < begin:
                sim_jobs.append(SimJob(job, "pending"))
            elif t < end:
                sim_jobs.append(SimJob(job, "running", started_at=wall(begin)))
            else:
                word = "success"
                if is_stop:
                    word = plan.outcome if j_index == plan.stop_job else "success"
                    if plan.outcome == "canceled" and j_index != plan.stop_job:
                        word = "canceled" if duration >= stage_len else "success"
                sim_jobs.append(SimJob(job, word, started_at=wall(begin), finished_at=wall(end)))
        out.append(SimStage(name, sim_jobs))
        if not stopped:
            clock += stage_len
            if is_stop and t >= clock:
                stopped = True
    if t >= plan.queue + plan.active:
        run_status = plan.outcome
        run_end = wall(plan.queue + plan.active)
    return SimRun(
        number=plan.number,
        status=run_status,
        stages=out,
        sha=sha,
        ref="main" if plan.number % 3 else "release",
        started_at=wall(plan.queue),
        finished_at=run_end,
        created_at=run_start,
    )


def _fleet_source(seed: int, key: str, speed: float, origin: datetime) -> Callable[[float], SimRun]:
    """A time-driven run source cycling through runs 1, 2, 3, ... deterministically."""
    # Pipelines start out of phase; the cursor caches the run under way (number, start).
    cursor = [_plan(seed, key, 1), -random.Random(f"{seed}/{key}/offset").uniform(0, 30)]

    def source(elapsed: float) -> SimRun:
        t = elapsed * speed
        plan, start = cursor
        assert isinstance(plan, _RunPlan)
        assert isinstance(start, float)
        while t >= start + plan.length:
            start += plan.length
            plan = _plan(seed, key, plan.number + 1)
        cursor[:] = [plan, start]
        return _plan_at(plan, t - start, origin + timedelta(seconds=start / speed), speed)

    return source


def make_fleet(
    server: VendorServer, n_per_vendor: int = 10, seed: int = 0, speed: float = 1.0
) -> None:
    """Add ``n_per_vendor`` time-driven pipelines per vendor, deterministic given ``seed``.

    Each queues, runs stage by stage, ends in success, failure, cancellation or timeout, rests,
    and starts again with the next run number. ``speed=10`` runs ten times faster. IDs: repo
    ``repository_id=2000``, pipelines ``1..n``; v5 project ``"fleet"``, pipelines
    ``"fleet-v5-01"...``; Yunxiao ``"3001"...`` in organization ``"fleet-org"``.
    """
    origin = datetime.now(UTC)
    for i in range(1, n_per_vendor + 1):
        server.add_repo_pipeline(2000, i, _fleet_source(seed, f"repo/{i}", speed, origin))
        v5_id = f"fleet-v5-{i:02d}"
        server.add_v5_pipeline("fleet", v5_id, _fleet_source(seed, f"v5/{i}", speed, origin))
        yx_id = str(3000 + i)
        server.add_yunxiao_pipeline(
            yx_id, _fleet_source(seed, f"yx/{i}", speed, origin), organization_id="fleet-org"
        )


def _static_run(index: int) -> SimRun:
    status = ("success", "failed", "running", "success", "canceled")[index % 5]
    test_word = {"running": "running", "failed": "failed", "canceled": "canceled"}.get(
        status, "success"
    )
    return SimRun(
        number=index,
        status=status,
        stages=[
            SimStage("build", [SimJob("compile", "success"), SimJob("lint", "success")]),
            SimStage("test", [SimJob("unit", test_word)]),
        ],
    )


# --------------------------------------------------------------------------------------------
# Standalone
# --------------------------------------------------------------------------------------------


async def _serve_forever(args: argparse.Namespace) -> None:
    async with VendorServer(token=args.token, seed=args.seed, port=args.port) as server:
        if args.fleet:
            make_fleet(server, args.fleet_size, seed=args.seed, speed=args.speed)
        for i in range(1, args.repo + 1):
            server.add_repo_pipeline(1000, i, _static_run(i))
        for i in range(1, args.v5 + 1):
            server.add_v5_pipeline("proj", f"p{i:04d}", _static_run(i))
        for i in range(1, args.yunxiao + 1):
            server.add_yunxiao_pipeline(str(i), _static_run(i))
        sys.stdout.write(server.url + "\n")
        sys.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Run a :class:`VendorServer` until killed; the first stdout line is its URL."""
    parser = argparse.ArgumentParser(
        prog="python -m pipestatus.testing", description="Simulated CI vendor server."
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--token", default="bench-token", help="token every request must carry")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fleet", action="store_true", help="add the time-driven demo fleet")
    parser.add_argument("--fleet-size", type=int, default=10, help="fleet pipelines per vendor")
    parser.add_argument("--speed", type=float, default=1.0, help="fleet time multiplier")
    parser.add_argument("--repo", type=int, default=0, help="static v4 pipelines 1000/1..N")
    parser.add_argument("--v5", type=int, default=0, help='static v5 pipelines "proj"/p0001..')
    parser.add_argument("--yunxiao", type=int, default=0, help='static Yunxiao pipelines "1"..N')
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
