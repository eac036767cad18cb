"""Contract tests: the public API over real HTTP against ``pipestatus.testing`` on 127.0.0.1.

These cover what aioresponses cannot: real redirects, real timeouts, real body streaming.
"""

from __future__ import annotations

import asyncio
import logging
import tracemalloc
from collections.abc import AsyncIterator

import aiohttp
import pytest

from pipestatus import Client, Run, Status
from pipestatus.errors import (
    APIError,
    AuthError,
    ForbiddenError,
    NotFoundError,
    PipestatusError,
    RateLimitedError,
    RequestTimeout,
    ResponseError,
    ServerError,
    TransportError,
)
from pipestatus.testing import SimJob, SimRun, SimStage, VendorServer

TOKEN = "contract-secret-token-0123456789"
REPO, PIPE = 2111976239, 6


def _run(number: int = 7, status: str = "success", jobs: int = 2) -> SimRun:
    return SimRun(
        number,
        status,
        [
            SimStage("build", [SimJob(f"job-{i}", status) for i in range(jobs)]),
            SimStage("部署", [SimJob("deploy", status)]),
        ],
        ref="dev",
    )


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def server() -> AsyncIterator[VendorServer]:
    async with VendorServer(token=TOKEN) as srv:
        srv.add_repo_pipeline(REPO, PIPE, _run(), extra_jobs=248)
        srv.add_v5_pipeline("proj", "pipe-1", _run(3, "failed"))
        srv.add_v5_pipeline("proj", "never-ran", None)
        srv.add_yunxiao_pipeline("123", _run(9, "running"))
        srv.add_yunxiao_pipeline("456", _run(10, "success"), organization_id="org-1")
        yield srv


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with Client(timeout=2.0, retries=2, sleep=_no_sleep) as c:
        yield c


# --- every endpoint ---------------------------------------------------------------------------


async def test_v4_latest_run(server: VendorServer, client: Client) -> None:
    """The v4 latest-jobs endpoint yields a Run with its stages and jobs, authenticated."""
    repo = client.codearts_repo(server.url, token=TOKEN)
    run = await repo.latest_run(REPO, PIPE)
    assert run.vendor == "codearts_repo"
    assert run.pipeline_id == str(PIPE)
    assert run.status is Status.SUCCESS
    assert [stage.name for stage in run.stages][:2] == ["build", "部署"]
    assert all(job.ref == "dev" for job in run.jobs)
    assert server.requests[-1].headers["x-auth-token"] == TOKEN


async def test_v4_jobs_pages_across_250_jobs(server: VendorServer, client: Client) -> None:
    """``jobs`` reads every page of a 251-job list with limit 100 and stops at X-Total."""
    repo = client.codearts_repo(server.url, token=TOKEN)
    jobs = await repo.jobs(REPO, PIPE)
    assert len(jobs) == 251
    assert len({job.id for job in jobs}) == 251
    queries = [r.query for r in server.requests if r.path.endswith("/jobs")]
    assert queries == [
        {"offset": "0", "limit": "100"},
        {"offset": "100", "limit": "100"},
        {"offset": "200", "limit": "100"},
    ]
    assert all(job.stage_id is not None and job.stage_name for job in jobs)


async def test_v4_jobs_max_jobs_stops_early(server: VendorServer, client: Client) -> None:
    """``max_jobs`` ends the paging as soon as enough jobs were read."""
    repo = client.codearts_repo(server.url, token=TOKEN)
    jobs = await repo.jobs(REPO, PIPE, max_jobs=120)
    assert len(jobs) == 120
    assert sum(r.path.endswith("/jobs") for r in server.requests) == 2


async def test_v5_batches_250_ids(server: VendorServer) -> None:
    """250 v5 IDs go out as three concurrent batch calls; the answer holds only runs that exist."""
    for i in range(249):
        server.add_v5_pipeline("proj", f"p{i:03d}", _run(i + 1, "running"))
    ids = [f"p{i:03d}" for i in range(249)] + ["never-ran"]
    async with Client(retries=0) as client:
        pipe = client.codearts_pipeline(server.url, project_id="proj", token=TOKEN)
        runs = await pipe.latest_runs(ids)
        results = await pipe.latest_results(ids)
    assert set(runs) == set(ids) - {"never-ran"}
    assert isinstance(results["never-ran"], NotFoundError)
    posts = [r for r in server.requests if r.method == "POST"]
    assert len(posts) == 6  # three for latest_runs, three for latest_results
    assert sorted(len(p.body.split(b",")) for p in posts[:3]) == [50, 100, 100]
    assert runs["p000"].status is Status.RUNNING


async def test_v5_latest_run_fields(server: VendorServer, client: Client) -> None:
    """A v5 batch answer becomes a Run with number, sha, ref, trigger and stage times."""
    pipe = client.codearts_pipeline(server.url, project_id="proj", token=TOKEN)
    run = (await pipe.latest_runs(["pipe-1"]))["pipe-1"]
    assert run.number == 3
    assert run.status is Status.FAILED
    assert run.ref == "dev"
    assert run.sha is not None
    assert len(run.sha) == 40
    assert run.started_at is not None
    assert run.started_at.utcoffset() is not None


@pytest.mark.parametrize(
    ("options", "path_part"),
    [
        pytest.param({}, "/oapi/v1/flow/organizations/pipelines/123/", id="default"),
        pytest.param(
            {"organization_id": "org-1"},
            "/oapi/v1/flow/organizations/org-1/pipelines/123/",
            id="organization",
        ),
        pytest.param({"region_edition": True}, "/oapi/v1/flow/pipelines/123/", id="region-edition"),
    ],
)
async def test_yunxiao_each_path_form(
    server: VendorServer, client: Client, options: dict[str, object], path_part: str
) -> None:
    """Each Yunxiao path form reaches the pipeline, with the token in x-yunxiao-token."""
    flow = client.yunxiao(server.url, token=TOKEN, **options)  # type: ignore[arg-type]
    run = await flow.latest_run("123")
    assert run.status is Status.RUNNING
    assert run.number == 9
    request = server.requests[-1]
    assert path_part in request.path
    assert request.headers["x-yunxiao-token"] == TOKEN
    assert "x-auth-token" not in request.headers


# --- error statuses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        pytest.param(400, APIError, id="400"),
        pytest.param(401, AuthError, id="401"),
        pytest.param(403, ForbiddenError, id="403"),
        pytest.param(404, NotFoundError, id="404"),
        pytest.param(429, RateLimitedError, id="429"),
        pytest.param(500, ServerError, id="500"),
        pytest.param(502, ServerError, id="502"),
        pytest.param(503, ServerError, id="503"),
    ],
)
async def test_every_error_status(
    server: VendorServer, client: Client, status: int, error: type[APIError]
) -> None:
    """Each error status maps to its class with status and vendor; only 429 and 5xx retry."""
    server.fault(vendor="yunxiao", status=status)
    flow = client.yunxiao(server.url, token=TOKEN)
    with pytest.raises(error) as caught:
        await flow.latest_run("123")
    assert type(caught.value) is error
    assert caught.value.status == status
    assert caught.value.vendor == "yunxiao"
    retried = status == 429 or status >= 500
    assert server.request_count == (3 if retried else 1)


async def test_vendor_error_bodies_are_parsed(server: VendorServer, client: Client) -> None:
    """A real 401 and 404 carry the vendor's code and message into the error."""
    repo = client.codearts_repo(server.url, token="wrong-token")
    with pytest.raises(AuthError) as auth:
        await repo.latest_run(REPO, PIPE)
    assert auth.value.code == "CH.00000002"
    assert "authentication" in (auth.value.message or "")
    good = client.codearts_repo(server.url, token=TOKEN)
    with pytest.raises(NotFoundError) as missing:
        await good.latest_run(REPO, 99)
    assert missing.value.code == "CH.00402000"
    flow = client.yunxiao(server.url, token=TOKEN, organization_id="other-org")
    with pytest.raises(ForbiddenError):
        await flow.latest_run("456")


async def test_html_error_body_falls_back_to_reason(server: VendorServer, client: Client) -> None:
    """An HTML 502 page gives a ServerError with the HTTP reason as its message."""
    server.fault(status=502)
    repo = client.codearts_repo(server.url, token=TOKEN)
    with pytest.raises(ServerError) as caught:
        await repo.latest_run(REPO, PIPE)
    assert caught.value.code is None
    assert caught.value.message == "Bad Gateway"


async def test_transient_5xx_then_success(server: VendorServer, client: Client) -> None:
    """Two 503s then a good answer: the caller just gets the run."""
    server.fault(status=503, times=2)
    repo = client.codearts_repo(server.url, token=TOKEN)
    run = await repo.latest_run(REPO, PIPE)
    assert run.status is Status.SUCCESS
    assert server.request_count == 3


async def test_retry_after_over_the_cap_raises_at_once(server: VendorServer) -> None:
    """A Retry-After beyond max_retry_wait is not waited out: RateLimitedError after one try."""
    server.fault(status=429, retry_after=3600)
    async with Client(retries=3, max_retry_wait=60) as client:
        flow = client.yunxiao(server.url, token=TOKEN)
        with pytest.raises(RateLimitedError) as caught:
            await flow.latest_run("123")
    assert caught.value.retry_after == 3600
    assert server.request_count == 1


async def test_connection_refused_is_transport_error(server: VendorServer) -> None:
    """A closed port gives TransportError after the retries, not an aiohttp exception."""
    url = server.url
    await server.close()
    async with Client(retries=1, sleep=_no_sleep) as client:
        repo = client.codearts_repo(url, token=TOKEN)
        with pytest.raises(TransportError) as caught:
            await repo.latest_run(REPO, PIPE)
    assert not isinstance(caught.value, RequestTimeout)


# --- bad bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"malformed": True}, id="malformed"),
        pytest.param({"body": b""}, id="empty"),
        pytest.param({"body": [1, 2, 3]}, id="wrong-shape"),
        pytest.param({"body": {"id": 6, "stages": "nope"}}, id="string-stages"),
    ],
)
async def test_unusable_2xx_is_response_error_not_retried(
    server: VendorServer, client: Client, fault: dict[str, object]
) -> None:
    """A 200 that is not the documented JSON is a ResponseError after one attempt."""
    server.fault(vendor="codearts_repo", **fault)  # type: ignore[arg-type]
    repo = client.codearts_repo(server.url, token=TOKEN)
    with pytest.raises(ResponseError) as caught:
        await repo.latest_run(REPO, PIPE)
    assert caught.value.vendor == "codearts_repo"
    assert server.request_count == 1


async def test_reset_mid_body_is_retried(server: VendorServer, client: Client) -> None:
    """A connection reset mid-body is a transport failure: retried, then the run arrives."""
    server.fault(reset=True, times=1)
    flow = client.yunxiao(server.url, token=TOKEN)
    run = await flow.latest_run("123")
    assert run.number == 9


async def test_truncated_body_exhausts_retries(server: VendorServer, client: Client) -> None:
    """A body cut short on every attempt ends in TransportError."""
    server.fault(truncate=True)
    flow = client.yunxiao(server.url, token=TOKEN)
    with pytest.raises(TransportError):
        await flow.latest_run("123")
    assert server.request_count == 3


# --- timeouts -------------------------------------------------------------------------------


async def test_hung_server_times_out(server: VendorServer) -> None:
    """A server that never answers ends in RequestTimeout on every attempt."""
    server.fault(hang=True)
    async with Client(timeout=0.3, retries=1, sleep=_no_sleep) as client:
        repo = client.codearts_repo(server.url, token=TOKEN)
        async with asyncio.timeout(10):  # a guard against hanging the suite, not a measurement
            with pytest.raises(RequestTimeout):
                await repo.latest_run(REPO, PIPE)
    assert server.request_count == 2


async def test_trickling_server_times_out(server: VendorServer) -> None:
    """A server that sends a byte at a time is cut off by the per-attempt timeout."""
    server.fault(trickle=0.05)
    async with Client(timeout=0.4, retries=0) as client:
        flow = client.yunxiao(server.url, token=TOKEN)
        async with asyncio.timeout(10):
            with pytest.raises(RequestTimeout):
                await flow.latest_run("123")


# --- body cap ---------------------------------------------------------------------------------


@pytest.mark.parametrize("announce", [False, True], ids=["streamed", "announced"])
async def test_300_mb_body_stops_at_the_cap(server: VendorServer, announce: bool) -> None:
    """A 300 MB answer is refused at the 16 MiB cap, holding no more than the cap."""
    server.fault(oversize_bytes=300_000_000, announce=announce)
    tracemalloc.start()
    try:
        async with Client(retries=0) as client:
            flow = client.yunxiao(server.url, token=TOKEN)
            with pytest.raises(ResponseError, match="cap"):
                await flow.latest_run("123")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024 + 8 * 1024 * 1024


# --- redirects ----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
async def test_cross_origin_redirect_keeps_the_token_home(
    server: VendorServer, foreign: VendorServer, client: Client, code: int
) -> None:
    """A redirect to another origin raises APIError naming it; nothing reaches that origin."""
    server.fault(redirect_to=f"{foreign.url}/steal", redirect_status=code)
    repo = client.codearts_repo(server.url, token=TOKEN)
    with pytest.raises(APIError) as caught:
        await repo.latest_run(REPO, PIPE)
    assert caught.value.status == code
    assert f"127.0.0.1:{foreign.port}" in str(caught.value)
    assert foreign.request_count == 0
    assert TOKEN not in str(caught.value)


async def test_redirect_chain_to_another_scheme_is_refused(
    server: VendorServer, foreign: VendorServer, client: Client
) -> None:
    """Same host, other scheme is another origin: http -> https is refused like any other."""
    server.fault(redirect_to=f"https://127.0.0.1:{server.port}/x", redirect_status=302)
    flow = client.yunxiao(server.url, token=TOKEN)
    with pytest.raises(APIError, match="another origin"):
        await flow.latest_run("123")
    assert foreign.request_count == 0


async def test_same_origin_redirect_is_followed(server: VendorServer, client: Client) -> None:
    """A redirect within the origin is followed, with the token, to the run."""
    path = "/oapi/v1/flow/organizations/pipelines/123/runs/latestPipelineRun"
    server.fault(path_prefix="/moved", redirect_to=f"{server.url}{path}", redirect_status=307)
    flow = client.yunxiao(server.url + "/moved", token=TOKEN)
    with pytest.raises(NotFoundError):
        # /moved/... itself does not exist on the server: prove the prefix is used, then the hop
        await flow.latest_run("nothing-here")
    server.clear_faults()
    server.fault(vendor="yunxiao", redirect_to=f"{server.url}{path}", times=1)
    run = await client.yunxiao(server.url, token=TOKEN).latest_run("123")
    assert run.number == 9
    assert [r.headers.get("x-yunxiao-token") for r in server.requests[-2:]] == [TOKEN, TOKEN]


# --- conditional requests, token providers ----------------------------------------------------


async def test_etag_304_reuses_the_last_run(server: VendorServer, client: Client) -> None:
    """The second read sends If-None-Match, gets 304 and returns the same run."""
    flow = client.yunxiao(server.url, token=TOKEN)
    first = await flow.latest_run("123")
    second = await flow.latest_run("123")
    assert second is first
    assert "if-none-match" in server.requests[-1].headers


async def test_token_provider_refreshes_after_401(server: VendorServer, client: Client) -> None:
    """An expired token from a provider is replaced once after a 401, and the call succeeds."""
    tokens = iter(["expired-token", TOKEN])
    calls = 0

    async def provider() -> str:
        nonlocal calls
        calls += 1
        return next(tokens)

    repo = client.codearts_repo(server.url, token=provider)
    run = await repo.latest_run(REPO, PIPE)
    assert isinstance(run, Run)
    assert calls == 2
    await repo.latest_run(REPO, PIPE)
    assert calls == 2  # reused


async def test_no_token_in_debug_logs(
    server: VendorServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Debug logging of a failing, retried session never prints the token."""
    caplog.set_level(logging.DEBUG, logger="pipestatus")
    server.fault(status=503, times=1)
    async with Client(sleep=_no_sleep) as client:
        repo = client.codearts_repo(server.url, token=TOKEN)
        await repo.latest_run(REPO, PIPE)
        with pytest.raises(PipestatusError):
            await repo.latest_run(REPO, 99)
    assert any("latest-jobs" in r.getMessage() for r in caplog.records)
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


# --- found in review ----------------------------------------------------------------------------


async def test_retries_zero_means_one_request_even_on_a_dead_keep_alive() -> None:
    """aiohttp's own hidden resend is off: retries=0 sends one request, whatever the socket."""
    body = b'{"id": 6, "status": "success", "stages": []}'
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = 0
        while not reader.at_eof():
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            seen.append(head.split(b"\r\n")[0])
            if answered:  # the second request on a kept-alive connection: drop it unanswered
                break
            answered += 1
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with Client(retries=0, conditional=False) as client:
            repo = client.codearts_repo(f"http://127.0.0.1:{port}", token=TOKEN)
            await repo.latest_run(REPO, PIPE)
            seen.clear()
            with pytest.raises(TransportError):
                await repo.latest_run(REPO, PIPE)
    finally:
        server.close()
        await server.wait_closed()
    assert len(seen) == 1


async def test_caller_session_raising_for_status_still_gets_our_errors(
    server: VendorServer,
) -> None:
    """A caller's session with raise_for_status=True still yields NotFoundError, unretried."""
    async with (
        aiohttp.ClientSession(raise_for_status=True) as session,
        Client(session=session, sleep=_no_sleep) as client,
    ):
        with pytest.raises(NotFoundError):
            await client.codearts_repo(server.url, token=TOKEN).latest_run(REPO, 99)
    assert server.request_count == 1
