"""The transport's rules (retries, backoff, Retry-After, error bodies, body cap, redirects,
tokens, argument checks, paging, batching, session ownership), driven through the public API
with aioresponses and an injected ``sleep``: no network, no real waiting."""

from __future__ import annotations

import asyncio
import copy
import email.utils
import json
import logging
import re
import traceback
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses
from conftest import fixture_bytes, load_fixture
from yarl import URL

from pipestatus import Client, Run
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

TOKEN = "tok-secret"

REPO_BASE = "https://repo.example.test"
PIPE_BASE = "https://pipe.example.test"
FLOW_BASE = "https://flow.example.test"
PROJECT = "proj1"
V5_ID = "d19799d619424b2bb2625ec2d93ea087"  # the pipeline of batch-status-200.json

LATEST = f"{REPO_BASE}/v4/repositories/1/pipelines/2/latest-jobs"
JOBS = re.compile(r"^https://repo\.example\.test/v4/repositories/1/pipelines/2/jobs\?")
BATCH = f"{PIPE_BASE}/v5/{PROJECT}/api/pipelines/status"
FLOW = f"{FLOW_BASE}/oapi/v1/flow/organizations/pipelines/123/runs/latestPipelineRun"
ANY_FLOW = re.compile(r"^https://flow\.example\.test/")

HUAWEI_HEADER = "X-Auth-Token"
YUNXIAO_HEADER = "x-yunxiao-token"


class FakeSleep:
    """Stands in for ``asyncio.sleep``: records each requested delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as m:
        yield m


def sent(m: aioresponses) -> list[tuple[str, URL, dict[str, Any]]]:
    """Every request aioresponses saw: (method, URL, request kwargs)."""
    return [
        (method, url, call.kwargs) for (method, url), calls in m.requests.items() for call in calls
    ]


def body(vendor: str, name: str) -> bytes:
    return fixture_bytes(vendor, name)


# --- one call per vendor, so the transport rules can be checked for all three -----------------

Call = Callable[[Client], Awaitable[Run]]


def call_repo(client: Client) -> Awaitable[Run]:
    return client.codearts_repo(REPO_BASE, token=TOKEN).latest_run(1, 2)


def call_pipe(client: Client) -> Awaitable[Run]:
    pipe = client.codearts_pipeline(PIPE_BASE, project_id=PROJECT, token=TOKEN)
    return pipe.fetch(pipe.target(V5_ID))


def call_flow(client: Client) -> Awaitable[Run]:
    return client.yunxiao(FLOW_BASE, token=TOKEN).latest_run("123")


VENDORS = {
    "codearts_repo": ("GET", LATEST, call_repo, body("codearts_repo", "latest-jobs-200.json")),
    "codearts_pipeline": (
        "POST",
        BATCH,
        call_pipe,
        body("codearts_pipeline", "batch-status-200.json"),
    ),
    "yunxiao": ("GET", FLOW, call_flow, body("yunxiao", "latest-run-200.json")),
}
vendor_params = pytest.mark.parametrize("vendor", list(VENDORS))


def mock(m: aioresponses, vendor: str, **kwargs: Any) -> None:
    method, url, _, _ = VENDORS[vendor]
    m.add(url, method=method, **kwargs)


def mock_ok(m: aioresponses, vendor: str) -> None:
    mock(m, vendor, status=200, body=VENDORS[vendor][3])


async def run_call(vendor: str, client: Client) -> Run:
    return await VENDORS[vendor][2](client)


def attempts(m: aioresponses) -> int:
    return len(sent(m))


# --- retries ----------------------------------------------------------------------------------


@vendor_params
@pytest.mark.parametrize("status", [500, 502, 503, 504], ids=lambda s: f"http-{s}")
async def test_server_error_then_success(
    mocked: aioresponses, sleep: FakeSleep, vendor: str, status: int
) -> None:
    """A 5xx followed by a 200 returns the run after one retry and one backoff sleep."""
    mock(mocked, vendor, status=status)
    mock_ok(mocked, vendor)
    async with Client(retries=3, sleep=sleep) as client:
        run = await run_call(vendor, client)
    assert isinstance(run, Run)
    assert attempts(mocked) == 2
    assert len(sleep.delays) == 1


@vendor_params
@pytest.mark.parametrize("retries", [0, 1, 3], ids=lambda n: f"retries-{n}")
async def test_server_error_every_attempt(
    mocked: aioresponses, sleep: FakeSleep, vendor: str, retries: int
) -> None:
    """A 5xx on every attempt raises ServerError after exactly retries+1 attempts."""
    mock(mocked, vendor, status=503, repeat=True)
    async with Client(retries=retries, sleep=sleep) as client:
        with pytest.raises(ServerError) as info:
            await run_call(vendor, client)
    assert info.value.status == 503
    assert info.value.vendor == vendor
    assert attempts(mocked) == retries + 1
    assert len(sleep.delays) == retries


async def test_rate_limited_is_retried(mocked: aioresponses, sleep: FakeSleep) -> None:
    """A 429 without Retry-After is retried after a backoff sleep."""
    mock(mocked, "codearts_repo", status=429)
    mock_ok(mocked, "codearts_repo")
    async with Client(retries=2, backoff_base=1.0, sleep=sleep) as client:
        await call_repo(client)
    assert attempts(mocked) == 2
    assert len(sleep.delays) == 1
    assert 0 <= sleep.delays[0] <= 1.0


async def test_rate_limited_every_attempt(mocked: aioresponses, sleep: FakeSleep) -> None:
    """A 429 on every attempt raises RateLimitedError after exactly retries+1 attempts."""
    mock(mocked, "codearts_repo", status=429, headers={"Retry-After": "1"}, repeat=True)
    async with Client(retries=2, sleep=sleep) as client:
        with pytest.raises(RateLimitedError) as info:
            await call_repo(client)
    assert info.value.retry_after == 1.0
    assert attempts(mocked) == 3
    assert sleep.delays == [1.0, 1.0]


CONNECTION_ERRORS = {
    "connection-error": aiohttp.ClientConnectionError(),
    "server-disconnected": aiohttp.ServerDisconnectedError(),
    "payload-error": aiohttp.ClientPayloadError("broken"),
    "os-error": ConnectionResetError(104, "reset"),
}


@pytest.mark.parametrize("exc", list(CONNECTION_ERRORS.values()), ids=list(CONNECTION_ERRORS))
async def test_connection_error_then_success(
    mocked: aioresponses, sleep: FakeSleep, exc: Exception
) -> None:
    """A connection error is retried, and the next good answer is returned."""
    mock(mocked, "codearts_repo", exception=exc)
    mock_ok(mocked, "codearts_repo")
    async with Client(retries=1, sleep=sleep) as client:
        await call_repo(client)
    assert attempts(mocked) == 2
    assert len(sleep.delays) == 1


@vendor_params
@pytest.mark.parametrize("exc", list(CONNECTION_ERRORS.values()), ids=list(CONNECTION_ERRORS))
async def test_connection_error_every_attempt(
    mocked: aioresponses, sleep: FakeSleep, vendor: str, exc: Exception
) -> None:
    """A connection error on every attempt raises TransportError (no aiohttp or OS error
    escapes) after retries+1 attempts."""
    mock(mocked, vendor, exception=exc, repeat=True)
    async with Client(retries=2, sleep=sleep) as client:
        with pytest.raises(TransportError) as info:
            await run_call(vendor, client)
    assert type(info.value) is TransportError
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    assert attempts(mocked) == 3
    assert len(sleep.delays) == 2


@vendor_params
async def test_timeout_every_attempt(mocked: aioresponses, sleep: FakeSleep, vendor: str) -> None:
    """A timeout on every attempt is retried, then raises RequestTimeout."""
    mock(mocked, vendor, exception=TimeoutError(), repeat=True)
    async with Client(retries=2, sleep=sleep) as client:
        with pytest.raises(RequestTimeout):
            await run_call(vendor, client)
    assert attempts(mocked) == 3
    assert len(sleep.delays) == 2


async def test_timeout_then_success(mocked: aioresponses, sleep: FakeSleep) -> None:
    """A timeout followed by a good answer returns the run."""
    mock(mocked, "codearts_repo", exception=TimeoutError())
    mock_ok(mocked, "codearts_repo")
    async with Client(retries=1, sleep=sleep) as client:
        await call_repo(client)
    assert attempts(mocked) == 2


async def test_timeout_bounds_a_slow_attempt(mocked: aioresponses, sleep: FakeSleep) -> None:
    """An attempt that takes longer than ``timeout`` is cut off and raises RequestTimeout."""

    async def stall(url: URL, **kwargs: Any) -> CallbackResult:
        await asyncio.sleep(30)
        return CallbackResult(status=200, body=VENDORS["codearts_repo"][3])  # pragma: no cover

    mock(mocked, "codearts_repo", callback=stall, repeat=True)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with Client(timeout=0.05, retries=1, sleep=sleep) as client:
        with pytest.raises(RequestTimeout, match=r"0\.05"):
            await call_repo(client)
    assert loop.time() - started < 2.0
    assert attempts(mocked) == 2


NOT_RETRIED = {
    400: APIError,
    401: AuthError,
    403: ForbiddenError,
    404: NotFoundError,
    409: APIError,
}


@vendor_params
@pytest.mark.parametrize(
    ("status", "error"), list(NOT_RETRIED.items()), ids=[f"http-{s}" for s in NOT_RETRIED]
)
async def test_client_errors_not_retried(
    mocked: aioresponses, sleep: FakeSleep, vendor: str, status: int, error: type[APIError]
) -> None:
    """4xx other than 429 is raised at once (one attempt, no sleep) as its APIError class."""
    mock(mocked, vendor, status=status, repeat=True)
    async with Client(retries=3, sleep=sleep) as client:
        with pytest.raises(APIError) as info:
            await run_call(vendor, client)
    assert type(info.value) is error
    assert info.value.status == status
    assert attempts(mocked) == 1
    assert sleep.delays == []


UNUSABLE = {
    "invalid-json": b"{not json",
    "empty": b"",
    "wrong-shape": b'"a string"',
    "truncated": b'{"id": 1, "status": "succ',
}


@vendor_params
@pytest.mark.parametrize("payload", list(UNUSABLE.values()), ids=list(UNUSABLE))
async def test_unusable_2xx_not_retried(
    mocked: aioresponses, sleep: FakeSleep, vendor: str, payload: bytes
) -> None:
    """A 200 whose body is not usable JSON raises ResponseError after one attempt."""
    mock(mocked, vendor, status=200, body=payload, repeat=True)
    async with Client(retries=3, sleep=sleep) as client:
        with pytest.raises(ResponseError) as info:
            await run_call(vendor, client)
    assert info.value.vendor == vendor
    assert attempts(mocked) == 1
    assert sleep.delays == []


# --- backoff and Retry-After ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "cap"), [(0.5, 30.0), (1.0, 4.0), (2.0, 3.0), (0.0, 10.0)], ids=str
)
async def test_backoff_full_jitter_bounds(
    mocked: aioresponses, sleep: FakeSleep, base: float, cap: float
) -> None:
    """The n-th backoff sleep lies in [0, min(backoff_max, backoff_base * 2**(n-1))]."""
    retries = 8
    mock(mocked, "codearts_repo", status=503, repeat=True)
    async with Client(retries=retries, backoff_base=base, backoff_max=cap, sleep=sleep) as client:
        with pytest.raises(ServerError):
            await call_repo(client)
    assert len(sleep.delays) == retries
    for n, delay in enumerate(sleep.delays, start=1):
        assert 0 <= delay <= min(cap, base * 2 ** (n - 1)), (n, delay)
    if base:  # jitter: uniform draws, not the ceiling every time
        ceilings = [min(cap, base * 2 ** (n - 1)) for n in range(1, retries + 1)]
        assert sleep.delays != ceilings


async def test_retry_after_seconds_honoured(mocked: aioresponses, sleep: FakeSleep) -> None:
    """A 429 with ``Retry-After: 7`` sleeps exactly 7 seconds before the retry."""
    mock(mocked, "codearts_repo", status=429, headers={"Retry-After": "7"})
    mock_ok(mocked, "codearts_repo")
    async with Client(retries=1, sleep=sleep) as client:
        await call_repo(client)
    assert sleep.delays == [7.0]
    assert attempts(mocked) == 2


async def test_retry_after_http_date_honoured(mocked: aioresponses, sleep: FakeSleep) -> None:
    """A 429 with ``Retry-After`` as an HTTP date sleeps until that date (about 30 s)."""
    when = datetime.now(UTC) + timedelta(seconds=30)
    mock(
        mocked,
        "codearts_repo",
        status=429,
        headers={"Retry-After": email.utils.format_datetime(when, usegmt=True)},
    )
    mock_ok(mocked, "codearts_repo")
    async with Client(retries=1, sleep=sleep) as client:
        await call_repo(client)
    assert len(sleep.delays) == 1
    assert 27.0 <= sleep.delays[0] <= 30.5


@pytest.mark.parametrize(
    "value", ["soon", "-5", "nan", ""], ids=["word", "negative", "nan", "empty"]
)
async def test_unreadable_retry_after_falls_back_to_backoff(
    mocked: aioresponses, sleep: FakeSleep, value: str
) -> None:
    """An unreadable ``Retry-After`` is ignored: the retry waits the usual backoff."""
    mock(mocked, "codearts_repo", status=429, headers={"Retry-After": value})
    mock_ok(mocked, "codearts_repo")
    async with Client(retries=1, backoff_base=1.0, sleep=sleep) as client:
        await call_repo(client)
    assert len(sleep.delays) == 1
    assert 0 <= sleep.delays[0] <= 1.0


async def test_retry_after_on_503_honoured(mocked: aioresponses, sleep: FakeSleep) -> None:
    """A 503 with ``Retry-After: 7`` sleeps 7 seconds before the retry, as a 429 does."""
    mock(mocked, "codearts_repo", status=503, headers={"Retry-After": "7"})
    mock_ok(mocked, "codearts_repo")
    async with Client(retries=1, sleep=sleep) as client:
        await call_repo(client)
    assert sleep.delays == [7.0]


@pytest.mark.parametrize("form", ["seconds", "http-date"])
async def test_retry_after_beyond_max_wait_raises_at_once(
    mocked: aioresponses, sleep: FakeSleep, form: str
) -> None:
    """A ``Retry-After`` longer than ``max_retry_wait`` raises RateLimitedError at once, with
    the server's value in ``retry_after``, after one attempt and no sleep."""
    if form == "seconds":
        header = "120"
    else:
        when = datetime.now(UTC) + timedelta(seconds=120)
        header = email.utils.format_datetime(when, usegmt=True)
    mock(mocked, "codearts_repo", status=429, headers={"Retry-After": header}, repeat=True)
    async with Client(retries=5, max_retry_wait=10.0, sleep=sleep) as client:
        with pytest.raises(RateLimitedError) as info:
            await call_repo(client)
    assert info.value.retry_after is not None
    assert 117.0 <= info.value.retry_after <= 120.0
    assert info.value.status == 429
    assert attempts(mocked) == 1
    assert sleep.delays == []


# --- error bodies -----------------------------------------------------------------------------

ERROR_BODIES = [
    pytest.param(
        "codearts_repo", 401, "error-401.json", AuthError,
        "CH.00000002", "Recognize authentication information failed.",
        id="huawei-v4-401",
    ),
    pytest.param(
        "codearts_repo", 404, "error-404.json", NotFoundError,
        "CH.00402000", "The repository does not exist. Check and try again.",
        id="huawei-v4-404",
    ),
    pytest.param(
        "codearts_pipeline", 403, "error-403.json", ForbiddenError,
        "DEV.00000003", "You do not have permission to access this project.",
        id="huawei-v5-403",
    ),
    pytest.param(
        "codearts_pipeline", 404, "error-404.json", NotFoundError,
        "DEV.00000404", "The project does not exist.",
        id="huawei-v5-404",
    ),
    pytest.param(
        "yunxiao", 401, "error-401.json", AuthError,
        "InvalidToken", "The x-yunxiao-token is invalid or expired.",
        id="yunxiao-errorCode-401",
    ),
    pytest.param(
        "yunxiao", 404, "error-404.json", NotFoundError,
        "PipelineNotExist", "The pipeline does not exist.",
        id="yunxiao-errorCode-404",
    ),
    pytest.param(
        "yunxiao", 401, "error-401-code-message.json", AuthError,
        "Unauthorized", "The token is invalid.",
        id="yunxiao-code-message-401",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("vendor", "status", "name", "error", "code", "message"), ERROR_BODIES)
async def test_error_body_parsed(
    mocked: aioresponses,
    sleep: FakeSleep,
    vendor: str,
    status: int,
    name: str,
    error: type[APIError],
    code: str,
    message: str,
) -> None:
    """A vendor's error body fills ``code`` and ``message``; ``status`` and ``vendor`` are set,
    and ``str(error)`` names all four."""
    mock(mocked, vendor, status=status, body=body(vendor, name))
    async with Client(sleep=sleep) as client:
        with pytest.raises(APIError) as info:
            await run_call(vendor, client)
    exc = info.value
    assert type(exc) is error
    assert (exc.status, exc.vendor, exc.code, exc.message) == (status, vendor, code, message)
    for part in (vendor, str(status), code, message):
        assert part in str(exc)


async def test_error_body_nested_and_numeric_code(mocked: aioresponses, sleep: FakeSleep) -> None:
    """A Huawei error nested under ``error`` with a numeric code is still read."""
    payload = {"error": {"code": 40301, "message": "Nested refusal."}}
    mock(mocked, "codearts_repo", status=403, payload=payload)
    async with Client(sleep=sleep) as client:
        with pytest.raises(ForbiddenError) as info:
            await call_repo(client)
    assert (info.value.code, info.value.message) == ("40301", "Nested refusal.")


FALLBACKS = {
    "html": (b"<html><body><h1>Not here</h1></body></html>", "text/html"),
    "empty": (b"", "text/plain"),
    "json-without-fields": (b'{"requestId": "abc"}', "application/json"),
    "json-array": (b"[1, 2]", "application/json"),
}


@pytest.mark.parametrize(("payload", "content_type"), list(FALLBACKS.values()), ids=list(FALLBACKS))
async def test_error_body_falls_back_to_reason(
    mocked: aioresponses, sleep: FakeSleep, payload: bytes, content_type: str
) -> None:
    """An error body without a vendor code and message falls back to the HTTP reason."""
    mock(
        mocked,
        "yunxiao",
        status=404,
        body=payload,
        content_type=content_type,
        reason="Gone Fishing",
    )
    async with Client(sleep=sleep) as client:
        with pytest.raises(NotFoundError) as info:
            await call_flow(client)
    assert info.value.code is None
    assert info.value.message == "Gone Fishing"
    assert "yunxiao" in str(info.value)
    assert "404" in str(info.value)
    assert "Gone Fishing" in str(info.value)


async def test_server_error_body_parsed(mocked: aioresponses, sleep: FakeSleep) -> None:
    """The ServerError raised after the last retry carries the vendor's code and message."""
    payload = {"error_code": "CH.5000", "error_msg": "Backend busy."}
    mock(mocked, "codearts_repo", status=500, payload=payload, repeat=True)
    async with Client(retries=1, sleep=sleep) as client:
        with pytest.raises(ServerError) as info:
            await call_repo(client)
    assert (info.value.code, info.value.message) == ("CH.5000", "Backend busy.")


# --- body cap -----------------------------------------------------------------------------------


@vendor_params
async def test_body_over_cap_is_response_error(
    mocked: aioresponses, sleep: FakeSleep, vendor: str
) -> None:
    """A 200 body larger than ``max_body_bytes`` raises ResponseError after one attempt."""
    # Valid JSON padded with whitespace to 5000 bytes. (A body over ~64 KiB trips an
    # assertion in aiohttp's stream reader under aioresponses' fake protocol.)
    payload = VENDORS[vendor][3].ljust(5000)
    mock(mocked, vendor, status=200, body=payload, repeat=True)
    async with Client(max_body_bytes=1000, retries=3, sleep=sleep) as client:
        with pytest.raises(ResponseError, match="cap") as info:
            await run_call(vendor, client)
    assert info.value.vendor == vendor
    assert attempts(mocked) == 1


async def test_content_length_over_cap_is_response_error(
    mocked: aioresponses, sleep: FakeSleep
) -> None:
    """A 200 whose ``Content-Length`` is over the cap is refused before its body is read."""
    mock(
        mocked,
        "codearts_repo",
        status=200,
        body=VENDORS["codearts_repo"][3],
        headers={"Content-Length": "5000000"},
    )
    async with Client(max_body_bytes=1000, sleep=sleep) as client:
        with pytest.raises(ResponseError, match="5000000 bytes"):
            await call_repo(client)


async def test_body_at_cap_is_read(mocked: aioresponses, sleep: FakeSleep) -> None:
    """A 200 body of exactly ``max_body_bytes`` bytes is read and used."""
    payload = VENDORS["codearts_repo"][3]
    mock_ok(mocked, "codearts_repo")
    async with Client(max_body_bytes=len(payload), sleep=sleep) as client:
        run = await call_repo(client)
    assert run.vendor == "codearts_repo"


async def test_large_error_body_is_not_a_response_error(
    mocked: aioresponses, sleep: FakeSleep
) -> None:
    """The body cap is for 2xx answers: a large 404 body is still a NotFoundError."""
    payload = json.dumps({"error_code": "CH.404", "error_msg": "gone", "pad": "x" * 5000})
    mock(mocked, "codearts_repo", status=404, body=payload)
    async with Client(max_body_bytes=1000, sleep=sleep) as client:
        with pytest.raises(NotFoundError) as info:
            await call_repo(client)
    assert info.value.code == "CH.404"


# --- redirects --------------------------------------------------------------------------------

CROSS_ORIGIN = {
    "other-host": "https://evil.example.test/steal",
    "http-downgrade": "http://repo.example.test/v4/repositories/1/pipelines/2/latest-jobs",
    "other-port": "https://repo.example.test:8443/v4/repositories/1/pipelines/2/latest-jobs",
}


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308], ids=lambda s: f"http-{s}")
@pytest.mark.parametrize("location", list(CROSS_ORIGIN.values()), ids=list(CROSS_ORIGIN))
async def test_cross_origin_redirect_refused(
    mocked: aioresponses, sleep: FakeSleep, status: int, location: str
) -> None:
    """A redirect to another origin raises APIError naming that origin, and is never followed."""
    mock(mocked, "codearts_repo", status=status, headers={"Location": location}, repeat=True)
    mocked.get(re.compile(r".*"), status=200, body=VENDORS["codearts_repo"][3], repeat=True)
    async with Client(retries=3, sleep=sleep) as client:
        with pytest.raises(APIError) as info:
            await call_repo(client)
    assert type(info.value) is APIError
    assert info.value.status == status
    target = URL(location)
    assert f"{target.scheme}://{target.host}:{target.port}" in str(info.value)
    assert [str(url) for _, url, _ in sent(mocked)] == [LATEST]
    assert sleep.delays == []


async def test_cross_origin_redirect_of_batch_post_refused(
    mocked: aioresponses, sleep: FakeSleep
) -> None:
    """A 307 on the v5 batch POST to another origin is refused; the body is not replayed."""
    mocked.post(BATCH, status=307, headers={"Location": "https://evil.example.test/x"})
    mocked.post(re.compile(r".*"), status=200, body=VENDORS["codearts_pipeline"][3], repeat=True)
    async with Client(sleep=sleep) as client:
        pipe = client.codearts_pipeline(PIPE_BASE, project_id=PROJECT, token=TOKEN)
        results = await pipe.latest_results([V5_ID])
    assert isinstance(results[V5_ID], APIError)
    assert "evil.example.test" in str(results[V5_ID])
    assert [str(url) for _, url, _ in sent(mocked)] == [BATCH]


@pytest.mark.parametrize(
    "location",
    [
        "/v4/repositories/1/pipelines/2/latest-jobs-moved",
        "https://repo.example.test/v4/repositories/1/pipelines/2/latest-jobs-moved",
        "https://REPO.example.test:443/v4/repositories/1/pipelines/2/latest-jobs-moved",
    ],
    ids=["relative", "absolute", "explicit-port"],
)
async def test_same_origin_redirect_followed(
    mocked: aioresponses, sleep: FakeSleep, location: str
) -> None:
    """A same-origin redirect is followed, with the token, to the new path."""
    moved = LATEST + "-moved"
    mock(mocked, "codearts_repo", status=302, headers={"Location": location})
    moved_url = re.compile(r"^https://repo\.example\.test(:443)?/.*-moved$", re.IGNORECASE)
    mocked.get(moved_url, status=200, body=VENDORS["codearts_repo"][3])
    async with Client(sleep=sleep) as client:
        run = await call_repo(client)
    assert run.vendor == "codearts_repo"
    requests = sent(mocked)
    assert [url.path for _, url, _ in requests] == [URL(LATEST).path, URL(moved).path]
    assert all(kwargs["headers"][HUAWEI_HEADER] == TOKEN for _, _, kwargs in requests)


async def test_redirect_loop_stops(mocked: aioresponses, sleep: FakeSleep) -> None:
    """A same-origin redirect loop ends in APIError instead of running forever."""
    mock(mocked, "codearts_repo", status=302, headers={"Location": LATEST}, repeat=True)
    async with Client(retries=0, sleep=sleep) as client:
        with pytest.raises(APIError, match="too many redirects"):
            await call_repo(client)
    assert 1 < attempts(mocked) <= 10


async def test_redirect_without_location(mocked: aioresponses, sleep: FakeSleep) -> None:
    """A 3xx without a Location header is an APIError with that status, not retried."""
    mock(mocked, "codearts_repo", status=302, repeat=True)
    async with Client(retries=3, sleep=sleep) as client:
        with pytest.raises(APIError, match="302") as info:
            await call_repo(client)
    assert type(info.value) is APIError
    assert attempts(mocked) == 1


# --- conditional requests -----------------------------------------------------------------------


async def test_not_modified_returns_cached_run(mocked: aioresponses, sleep: FakeSleep) -> None:
    """After a 200 with an ETag the next GET is conditional, and a 304 gives the cached run."""
    mock(mocked, "yunxiao", status=200, body=VENDORS["yunxiao"][3], headers={"ETag": '"v1"'})
    mock(mocked, "yunxiao", status=304, body=b"")
    async with Client(sleep=sleep) as client:
        flow = client.yunxiao(FLOW_BASE, token=TOKEN)
        first = await flow.latest_run("123")
        second = await flow.latest_run("123")
    assert second == first
    (_, _, one), (_, _, two) = sent(mocked)
    assert "If-None-Match" not in one["headers"]
    assert two["headers"]["If-None-Match"] == '"v1"'


async def test_unconditional_client_sends_no_validators(
    mocked: aioresponses, sleep: FakeSleep
) -> None:
    """With ``conditional=False`` no request carries If-None-Match."""
    mock(mocked, "yunxiao", status=200, body=VENDORS["yunxiao"][3], headers={"ETag": '"v1"'},
         repeat=True)  # fmt: skip
    async with Client(conditional=False, sleep=sleep) as client:
        flow = client.yunxiao(FLOW_BASE, token=TOKEN)
        await flow.latest_run("123")
        await flow.latest_run("123")
    assert all("If-None-Match" not in kwargs["headers"] for _, _, kwargs in sent(mocked))


async def test_not_modified_to_unconditional_request(
    mocked: aioresponses, sleep: FakeSleep
) -> None:
    """A 304 to a request that sent no validators is a ResponseError."""
    mock(mocked, "yunxiao", status=304, body=b"")
    async with Client(sleep=sleep) as client:
        with pytest.raises(ResponseError, match="304"):
            await call_flow(client)


# --- tokens -----------------------------------------------------------------------------------


class Provider:
    """An async token provider that hands out the given tokens in turn and counts calls."""

    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        return self.tokens[min(self.calls, len(self.tokens)) - 1]


async def test_token_provider_called_once_and_reused(
    mocked: aioresponses, sleep: FakeSleep
) -> None:
    """A token callable is called once; its token is reused for later requests."""
    provider = Provider("tok-a")
    mocked.get(FLOW, status=200, body=VENDORS["yunxiao"][3], repeat=True)
    async with Client(sleep=sleep) as client:
        flow = client.yunxiao(FLOW_BASE, token=provider)
        for _ in range(3):
            await flow.latest_run("123")
    assert provider.calls == 1
    assert [kwargs["headers"][YUNXIAO_HEADER] for _, _, kwargs in sent(mocked)] == ["tok-a"] * 3


@pytest.mark.parametrize("retries", [0, 2], ids=lambda n: f"retries-{n}")
async def test_token_refreshed_once_on_401(
    mocked: aioresponses, sleep: FakeSleep, retries: int
) -> None:
    """On a 401 a token callable is called once more and the request retried with the new
    token, at once (no sleep), whatever ``retries`` is."""
    provider = Provider("tok-old", "tok-new")
    mocked.get(FLOW, status=401, body=body("yunxiao", "error-401.json"))
    mocked.get(FLOW, status=200, body=VENDORS["yunxiao"][3])
    async with Client(retries=retries, sleep=sleep) as client:
        run = await client.yunxiao(FLOW_BASE, token=provider).latest_run("123")
    assert run.vendor == "yunxiao"
    assert provider.calls == 2
    headers = [kwargs["headers"][YUNXIAO_HEADER] for _, _, kwargs in sent(mocked)]
    assert headers == ["tok-old", "tok-new"]
    assert sleep.delays == []


async def test_second_401_is_auth_error(mocked: aioresponses, sleep: FakeSleep) -> None:
    """A 401 to the refreshed token raises AuthError: two attempts, two provider calls."""
    provider = Provider("tok-old", "tok-new", "tok-newer")
    mocked.get(FLOW, status=401, body=body("yunxiao", "error-401.json"), repeat=True)
    async with Client(retries=3, sleep=sleep) as client:
        with pytest.raises(AuthError):
            await client.yunxiao(FLOW_BASE, token=provider).latest_run("123")
    assert provider.calls == 2
    assert attempts(mocked) == 2


async def test_static_token_401_not_retried(mocked: aioresponses, sleep: FakeSleep) -> None:
    """With a static token a 401 raises AuthError after one attempt."""
    mocked.get(FLOW, status=401, body=body("yunxiao", "error-401.json"), repeat=True)
    async with Client(retries=3, sleep=sleep) as client:
        with pytest.raises(AuthError):
            await call_flow(client)
    assert attempts(mocked) == 1


async def _raising_provider() -> str:
    raise RuntimeError(f"vault down, last token was {TOKEN}")


async def _empty_provider() -> str:
    return ""


async def _blank_provider() -> str:
    return "   "


async def _none_provider() -> str:
    return None  # type: ignore[return-value]


BAD_PROVIDERS = {
    "raises": _raising_provider,
    "empty": _empty_provider,
    "blank": _blank_provider,
    "none": _none_provider,
}


@pytest.mark.parametrize("provider", list(BAD_PROVIDERS.values()), ids=list(BAD_PROVIDERS))
async def test_bad_token_provider(
    mocked: aioresponses, sleep: FakeSleep, provider: Callable[[], Awaitable[str]]
) -> None:
    """A provider that raises or returns no token gives PipestatusError, not its own
    exception, and no request is sent."""
    mocked.get(FLOW, status=200, body=VENDORS["yunxiao"][3], repeat=True)
    async with Client(sleep=sleep) as client:
        with pytest.raises(PipestatusError) as info:
            await client.yunxiao(FLOW_BASE, token=provider).latest_run("123")
    exc = info.value
    assert type(exc) is PipestatusError
    assert exc.__cause__ is None
    assert TOKEN not in str(exc)
    assert TOKEN not in "".join(traceback.format_exception(exc))
    assert mocked.requests == {}


@pytest.mark.parametrize(
    ("vendor", "header"),
    [
        ("codearts_repo", HUAWEI_HEADER),
        ("codearts_pipeline", HUAWEI_HEADER),
        ("yunxiao", YUNXIAO_HEADER),
    ],
)
async def test_token_sent_only_in_vendor_header(
    mocked: aioresponses, sleep: FakeSleep, vendor: str, header: str
) -> None:
    """The token is sent in the vendor's header and nowhere else (URL, other headers, body)."""
    mock_ok(mocked, vendor)
    async with Client(sleep=sleep) as client:
        await run_call(vendor, client)
    ((_, url, kwargs),) = sent(mocked)
    headers = kwargs["headers"]
    assert headers[header] == TOKEN
    assert [name for name, value in headers.items() if TOKEN in str(value)] == [header]
    assert TOKEN not in str(url)
    assert TOKEN.encode() not in (kwargs.get("data") or b"")
    assert kwargs["allow_redirects"] is False


async def test_token_never_in_repr_errors_or_logs(
    mocked: aioresponses, sleep: FakeSleep, caplog: pytest.LogCaptureFixture
) -> None:
    """The token appears in no repr, no error's str/repr/traceback and no DEBUG log record."""
    caplog.set_level(logging.DEBUG, logger="pipestatus")
    texts: list[str] = []
    errors: list[BaseException] = []
    echo = {"error_code": "X", "error_msg": "bad token"}
    mocked.get(LATEST, status=503, repeat=True)
    mocked.get(f"{REPO_BASE}/v4/repositories/1/pipelines/3/latest-jobs", status=401, payload=echo)
    mocked.get(FLOW, exception=aiohttp.ClientConnectionError(TOKEN), repeat=True)
    mocked.get(
        f"{FLOW_BASE}/oapi/v1/flow/organizations/pipelines/9/runs/latestPipelineRun",
        status=200,
        body=b"{bad json",
    )
    mocked.post(BATCH, status=200, body=VENDORS["codearts_pipeline"][3])
    async with Client(retries=1, sleep=sleep) as client:
        repo = client.codearts_repo(REPO_BASE, token=TOKEN)
        pipe = client.codearts_pipeline(PIPE_BASE, project_id=PROJECT, token=TOKEN)
        flow = client.yunxiao(FLOW_BASE, token=TOKEN, organization_id=None)
        texts += [repr(client), repr(repo), repr(pipe), repr(flow)]
        targets = [repo.target(1, 2), pipe.target(V5_ID), flow.target("123")]
        texts += [repr(t) for t in targets] + [str(t) for t in targets]
        for call in (
            repo.latest_run(1, 2),
            repo.latest_run(1, 3),
            flow.latest_run("123"),
            flow.latest_run("9"),
        ):
            try:
                await call
            except PipestatusError as exc:
                errors.append(exc)
        polled = await client.poll(targets)
        errors += [v for v in polled.values() if isinstance(v, BaseException)]
    texts.append(repr(client))
    assert len(errors) >= 4
    for error in errors:
        texts += [str(error), repr(error), "".join(traceback.format_exception(error))]
    assert caplog.records
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.args), record.exc_text or ""]
    for text in texts:
        assert TOKEN not in text


async def test_concurrent_401s_refresh_the_token_once(
    mocked: aioresponses, sleep: FakeSleep
) -> None:
    """Two requests that meet a 401 at the same time share one fresh token."""
    provider = Provider("tok-old", "tok-new", "tok-newer")
    release = asyncio.Event()
    stale = 0

    async def serve(url: URL, **kwargs: Any) -> CallbackResult:
        nonlocal stale
        if kwargs["headers"][YUNXIAO_HEADER] == "tok-old":
            stale += 1
            if stale == 2:  # both requests have met the old token: answer both
                release.set()
            await release.wait()
            return CallbackResult(status=401, reason="Unauthorized", body=b"")
        return CallbackResult(status=200, body=VENDORS["yunxiao"][3])

    mocked.get(FLOW, callback=serve, repeat=True)
    async with Client(sleep=sleep) as client:
        flow = client.yunxiao(FLOW_BASE, token=provider)
        await asyncio.gather(flow.latest_run("123"), flow.latest_run("123"))
    assert provider.calls == 2
    headers = sorted(kwargs["headers"][YUNXIAO_HEADER] for _, _, kwargs in sent(mocked))
    assert headers == ["tok-new", "tok-new", "tok-old", "tok-old"]


async def test_token_echoed_by_server_is_hidden(mocked: aioresponses, sleep: FakeSleep) -> None:
    """A server that echoes the token in its error body does not get it into the error."""
    echo = {"error_code": "CH.00000002", "error_msg": f"token {TOKEN} is invalid"}
    mocked.get(LATEST, status=401, payload=echo)
    async with Client(sleep=sleep) as client:
        with pytest.raises(AuthError) as info:
            await call_repo(client)
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value)
    assert TOKEN not in (info.value.message or "")


# --- argument checks --------------------------------------------------------------------------

BAD_V4_IDS = {"zero": 0, "negative": -1, "over-int32": 2147483648, "word": "abc", "bool": True,
              "empty": "", "float": 1.0, "none": None, "signed-string": "+5"}  # fmt: skip


@pytest.mark.parametrize("bad", list(BAD_V4_IDS.values()), ids=list(BAD_V4_IDS))
async def test_v4_invalid_ids(mocked: aioresponses, sleep: FakeSleep, bad: Any) -> None:
    """An invalid v4 repository or pipeline ID raises ValueError before any request."""
    mocked.get(re.compile(r".*"), status=200, body=b"[]", repeat=True)
    async with Client(sleep=sleep) as client:
        repo = client.codearts_repo(REPO_BASE, token=TOKEN)
        for args in ((bad, 2), (1, bad)):
            with pytest.raises(ValueError, match="_id"):
                await repo.latest_run(*args)
            with pytest.raises(ValueError, match="_id"):
                await repo.jobs(*args)
            with pytest.raises(ValueError, match="_id"):
                repo.target(*args)
    assert mocked.requests == {}


@pytest.mark.parametrize(("repository_id", "pipeline_id"), [(1, 2), ("1", "2"), (" 1 ", 2)])
async def test_v4_ids_accepted(
    mocked: aioresponses, sleep: FakeSleep, repository_id: Any, pipeline_id: Any
) -> None:
    """v4 IDs may be ints or strings of digits; both give the same path."""
    mock_ok(mocked, "codearts_repo")
    async with Client(sleep=sleep) as client:
        await client.codearts_repo(REPO_BASE, token=TOKEN).latest_run(repository_id, pipeline_id)
    assert [str(url) for _, url, _ in sent(mocked)] == [LATEST]


async def test_v4_id_upper_bound_accepted(mocked: aioresponses, sleep: FakeSleep) -> None:
    """2147483647 is a valid v4 ID."""
    url = f"{REPO_BASE}/v4/repositories/2147483647/pipelines/1/latest-jobs"
    mocked.get(url, status=200, body=VENDORS["codearts_repo"][3])
    async with Client(sleep=sleep) as client:
        await client.codearts_repo(REPO_BASE, token=TOKEN).latest_run(2147483647, 1)
    assert attempts(mocked) == 1


BAD_STRING_IDS = {"empty": "", "blank": "  ", "dot": ".", "dot-dot": "..", "control": "a\nb",
                  "none": None, "too-long": "x" * 1000}  # fmt: skip


@pytest.mark.parametrize("bad", list(BAD_STRING_IDS.values()), ids=list(BAD_STRING_IDS))
async def test_v5_and_yunxiao_invalid_ids(mocked: aioresponses, sleep: FakeSleep, bad: Any) -> None:
    """An empty, dot, or dot-dot v5/Yunxiao ID raises ValueError before any request."""
    mocked.get(re.compile(r".*"), status=200, body=b"{}", repeat=True)
    mocked.post(re.compile(r".*"), status=200, body=b"[]", repeat=True)
    async with Client(sleep=sleep) as client:
        pipe = client.codearts_pipeline(PIPE_BASE, project_id=PROJECT, token=TOKEN)
        flow = client.yunxiao(FLOW_BASE, token=TOKEN)
        with pytest.raises(ValueError, match="pipeline_id"):
            await pipe.latest_runs([V5_ID, bad])
        with pytest.raises(ValueError, match="pipeline_id"):
            await pipe.latest_results([bad])
        with pytest.raises(ValueError, match="pipeline_id"):
            pipe.target(bad)
        with pytest.raises(ValueError, match="pipeline_id"):
            await flow.latest_run(bad)
        with pytest.raises(ValueError, match="pipeline_id"):
            flow.target(bad)
        with pytest.raises(ValueError, match="project_id"):
            client.codearts_pipeline(PIPE_BASE, project_id=bad, token=TOKEN)
        if bad is not None:  # None is the default: no organization in the path
            with pytest.raises(ValueError, match="organization_id"):
                client.yunxiao(FLOW_BASE, token=TOKEN, organization_id=bad)
    assert mocked.requests == {}


@pytest.mark.parametrize("token", ["", "   "], ids=["empty", "blank"])
@pytest.mark.parametrize("vendor", list(VENDORS))
async def test_empty_token_refused(
    mocked: aioresponses, sleep: FakeSleep, vendor: str, token: str
) -> None:
    """An empty token raises ValueError from the factory that receives it."""
    factories: dict[str, Callable[[Client], object]] = {
        "codearts_repo": lambda c: c.codearts_repo(REPO_BASE, token=token),
        "codearts_pipeline": lambda c: c.codearts_pipeline(
            PIPE_BASE, project_id=PROJECT, token=token
        ),
        "yunxiao": lambda c: c.yunxiao(FLOW_BASE, token=token),
    }
    async with Client(sleep=sleep) as client:
        with pytest.raises(ValueError, match="token"):
            factories[vendor](client)
    assert mocked.requests == {}


PATH_IDS = {
    "slash": ("a/b", "a%2Fb"),
    "question": ("a?b", "a%3Fb"),
    "hash": ("a#b", "a%23b"),
    "encoded-slash": ("a%2Fb", "a%252Fb"),
    "space": ("a b", "a%20b"),
    "dot-dot-x": ("..x", "..x"),
    "chinese": ("构建", "%E6%9E%84%E5%BB%BA"),
    "dot-dot-slash": ("../admin", "..%2Fadmin"),
    "int": (123, "123"),
}


@pytest.mark.parametrize(("raw", "encoded"), list(PATH_IDS.values()), ids=list(PATH_IDS))
async def test_yunxiao_id_is_one_path_segment(
    mocked: aioresponses, sleep: FakeSleep, raw: Any, encoded: str
) -> None:
    """A Yunxiao pipeline ID is percent-encoded into exactly one path segment."""
    mocked.get(ANY_FLOW, status=200, body=VENDORS["yunxiao"][3])
    async with Client(sleep=sleep) as client:
        await client.yunxiao(FLOW_BASE, token=TOKEN).latest_run(raw)
    ((_, url, _),) = sent(mocked)
    assert url.host == "flow.example.test"
    assert url.raw_path == f"/oapi/v1/flow/organizations/pipelines/{encoded}/runs/latestPipelineRun"
    assert url.raw_query_string == ""
    assert url.raw_fragment == ""


@pytest.mark.parametrize(("raw", "encoded"), list(PATH_IDS.values())[:7], ids=list(PATH_IDS)[:7])
async def test_organization_and_project_ids_are_one_segment(
    mocked: aioresponses, sleep: FakeSleep, raw: str, encoded: str
) -> None:
    """Yunxiao organization IDs and v5 project IDs are each one percent-encoded segment."""
    mocked.get(ANY_FLOW, status=200, body=VENDORS["yunxiao"][3])
    mocked.post(re.compile(r"^https://pipe\.example\.test/"), status=200, body=b"[]")
    async with Client(sleep=sleep) as client:
        await client.yunxiao(FLOW_BASE, token=TOKEN, organization_id=raw).latest_run("7")
        pipe = client.codearts_pipeline(PIPE_BASE, project_id=raw, token=TOKEN)
        assert await pipe.latest_runs(["p1"]) == {}
    paths = sorted(url.raw_path for _, url, _ in sent(mocked))
    assert paths == sorted(
        [
            f"/oapi/v1/flow/organizations/{encoded}/pipelines/7/runs/latestPipelineRun",
            f"/v5/{encoded}/api/pipelines/status",
        ]
    )


# --- paging (v4 job list) ---------------------------------------------------------------------


def make_job(number: int) -> dict[str, Any]:
    job: dict[str, Any] = copy.deepcopy(load_fixture("codearts_repo", "jobs-200.json")[0])
    job["id"] = number
    return job


def job_list(
    m: aioresponses, total: int, *, x_total: bool = True, stuck: bool = False
) -> Callable[[], list[int]]:
    """Serve a job list of ``total`` jobs; returns a function giving the offsets requested.
    ``stuck`` makes the server ignore ``offset`` (it serves the first page every time)."""
    jobs = [make_job(n) for n in range(1, total + 1)]

    def serve(url: URL, **kwargs: Any) -> CallbackResult:
        offset = 0 if stuck else int(url.query["offset"])
        page = jobs[offset : offset + int(url.query["limit"])]
        headers = {"X-Total": str(total)} if x_total else {}
        return CallbackResult(status=200, body=json.dumps(page), headers=headers)

    m.get(JOBS, callback=serve, repeat=True)

    def offsets() -> list[int]:
        return sorted(int(url.query["offset"]) for _, url, _ in sent(m))

    return offsets


PAGING = [
    pytest.param(4, True, None, [0, 2], 4, id="stops-at-x-total"),
    pytest.param(4, False, None, [0, 2, 4], 4, id="no-x-total-stops-at-empty-page"),
    pytest.param(3, False, None, [0, 2], 3, id="stops-at-short-page"),
    pytest.param(3, True, None, [0, 2], 3, id="short-page-and-x-total"),
    pytest.param(10, True, 3, [0, 2], 3, id="max-jobs-mid-page"),
    pytest.param(10, True, 4, [0, 2], 4, id="max-jobs-on-page-boundary"),
    pytest.param(10, True, 0, [], 0, id="max-jobs-zero"),
    pytest.param(0, True, None, [0], 0, id="empty-list"),
]


@pytest.mark.parametrize(("total", "x_total", "max_jobs", "offsets", "count"), PAGING)
async def test_iter_jobs_paging(
    mocked: aioresponses,
    sleep: FakeSleep,
    total: int,
    x_total: bool,
    max_jobs: int | None,
    offsets: list[int],
    count: int,
) -> None:
    """``iter_jobs`` pages by offset and stops at X-Total, at a short page, or at max_jobs."""
    requested = job_list(mocked, total, x_total=x_total)
    async with Client(sleep=sleep) as client:
        repo = client.codearts_repo(REPO_BASE, token=TOKEN)
        jobs = [j async for j in repo.iter_jobs(1, 2, max_jobs=max_jobs, page_size=2)]
    assert [job.id for job in jobs] == [str(n) for n in range(1, count + 1)]
    assert requested() == offsets
    assert all(url.query["limit"] == "2" for _, url, _ in sent(mocked))


async def test_jobs_reads_every_page(mocked: aioresponses, sleep: FakeSleep) -> None:
    """``jobs`` returns every job of a 150-job list in two pages of 100."""
    requested = job_list(mocked, 150)
    async with Client(sleep=sleep) as client:
        jobs = await client.codearts_repo(REPO_BASE, token=TOKEN).jobs(1, 2)
    assert [job.id for job in jobs] == [str(n) for n in range(1, 151)]
    assert requested() == [0, 100]
    assert {url.query["limit"] for _, url, _ in sent(mocked)} == {"100"}


async def test_jobs_max_jobs(mocked: aioresponses, sleep: FakeSleep) -> None:
    """``jobs(max_jobs=5)`` returns the first five jobs after one request."""
    requested = job_list(mocked, 150)
    async with Client(sleep=sleep) as client:
        jobs = await client.codearts_repo(REPO_BASE, token=TOKEN).jobs(1, 2, max_jobs=5)
    assert [job.id for job in jobs] == ["1", "2", "3", "4", "5"]
    assert requested() == [0]


async def test_jobs_repeated_page_refused(mocked: aioresponses, sleep: FakeSleep) -> None:
    """A server that serves the same page again raises ResponseError instead of looping."""
    requested = job_list(mocked, 10, stuck=True)
    async with Client(sleep=sleep) as client:
        repo = client.codearts_repo(REPO_BASE, token=TOKEN)
        with pytest.raises(ResponseError, match="same page"):
            [j async for j in repo.iter_jobs(1, 2, page_size=2)]
    assert requested() == [0, 2]


async def test_jobs_page_error_is_raised(mocked: aioresponses, sleep: FakeSleep) -> None:
    """An error on a later page raises it (after the transport's retries)."""
    mocked.get(f"{REPO_BASE}/v4/repositories/1/pipelines/2/jobs?limit=2&offset=0",
               status=200, body=json.dumps([make_job(1), make_job(2)]))  # fmt: skip
    mocked.get(JOBS, status=404, payload={"error_code": "CH.1", "error_msg": "gone"}, repeat=True)
    async with Client(sleep=sleep) as client:
        repo = client.codearts_repo(REPO_BASE, token=TOKEN)
        with pytest.raises(NotFoundError):
            [j async for j in repo.iter_jobs(1, 2, page_size=2)]


@pytest.mark.parametrize("page_size", [0, 101], ids=["zero", "over-100"])
async def test_jobs_bad_page_size(mocked: aioresponses, sleep: FakeSleep, page_size: int) -> None:
    """A page size outside 1..100 raises ValueError before any request."""
    async with Client(sleep=sleep) as client:
        repo = client.codearts_repo(REPO_BASE, token=TOKEN)
        with pytest.raises(ValueError, match="page_size"):
            [j async for j in repo.iter_jobs(1, 2, page_size=page_size)]
    assert mocked.requests == {}


# --- v5 batching ------------------------------------------------------------------------------


def batch_server(
    m: aioresponses, *, known: set[str] | None = None, bad: frozenset[str] = frozenset()
) -> None:
    """Answer v5 batch POSTs with one item per requested ID (only ``known`` ones, if given);
    items for ``bad`` IDs have an unreadable ``run_number``."""
    template = load_fixture("codearts_pipeline", "batch-status-200.json")[0]

    def serve(url: URL, **kwargs: Any) -> CallbackResult:
        items = []
        for pipeline_id in json.loads(kwargs["data"]):
            if known is not None and pipeline_id not in known:
                continue
            item = copy.deepcopy(template)
            item["pipeline_id"] = pipeline_id
            if pipeline_id in bad:
                item["run_number"] = "not a number"
            items.append(item)
        return CallbackResult(status=200, body=json.dumps(items))

    m.post(BATCH, callback=serve, repeat=True)


def posted(m: aioresponses) -> list[list[str]]:
    return [json.loads(kwargs["data"]) for method, _, kwargs in sent(m) if method == "POST"]


async def test_batches_partition_the_ids(mocked: aioresponses, sleep: FakeSleep) -> None:
    """250 IDs with batch_size=100 go out as 3 POSTs whose bodies partition the IDs."""
    ids = [f"p{n:03d}" for n in range(250)]
    batch_server(mocked)
    async with Client(sleep=sleep) as client:
        pipe = client.codearts_pipeline(PIPE_BASE, project_id=PROJECT, token=TOKEN, batch_size=100)
        runs = await pipe.latest_runs(ids)
    bodies = posted(mocked)
    assert sorted(len(b) for b in bodies) == [50, 100, 100]
    assert sorted(i for b in bodies for i in b) == ids
    assert set(runs) == set(ids)
    assert all(run.pipeline_id == key for key, run in runs.items())


async def test_batch_duplicates_sent_once(mocked: aioresponses, sleep: FakeSleep) -> None:
    """An ID given twice is sent once."""
    batch_server(mocked)
    async with Client(sleep=sleep) as client:
        pipe = client.codearts_pipeline(PIPE_BASE, project_id=PROJECT, token=TOKEN)
        runs = await pipe.latest_runs(["a", "b", "a"])
    assert posted(mocked) == [["a", "b"]]
    assert set(runs) == {"a", "b"}


async def test_batch_omitted_pipelines(mocked: aioresponses, sleep: FakeSleep) -> None:
    """Pipelines the answer leaves out are missing from latest_runs and NotFoundError in
    latest_results."""
    batch_server(mocked, known={"a", "c"})
    async with Client(sleep=sleep) as client:
        pipe = client.codearts_pipeline(PIPE_BASE, project_id=PROJECT, token=TOKEN)
        runs = await pipe.latest_runs(["a", "b", "c", "d"])
        results = await pipe.latest_results(["a", "b", "c", "d"])
    assert set(runs) == {"a", "c"}
    assert isinstance(results["a"], Run)
    assert isinstance(results["c"], Run)
    for missing in ("b", "d"):
        error = results[missing]
        assert isinstance(error, NotFoundError)
        assert error.vendor == "codearts_pipeline"
        assert missing in str(error)


async def test_batch_bad_item_does_not_hide_others(mocked: aioresponses, sleep: FakeSleep) -> None:
    """One unreadable item is a ResponseError for its pipeline only; the others get runs."""
    batch_server(mocked, bad=frozenset({"b"}))
    async with Client(sleep=sleep) as client:
        pipe = client.codearts_pipeline(PIPE_BASE, project_id=PROJECT, token=TOKEN)
        results = await pipe.latest_results(["a", "b", "c"])
        with pytest.raises(ResponseError):
            await pipe.latest_runs(["a", "b", "c"])
    assert isinstance(results["a"], Run)
    assert isinstance(results["c"], Run)
    assert isinstance(results["b"], ResponseError)
    assert "run_number" in str(results["b"])


async def test_batch_failure_is_each_pipelines_error(
    mocked: aioresponses, sleep: FakeSleep
) -> None:
    """A failed batch call is each of its pipelines' error; other batches are unaffected."""
    template = load_fixture("codearts_pipeline", "batch-status-200.json")[0]

    def serve(url: URL, **kwargs: Any) -> CallbackResult:
        ids = json.loads(kwargs["data"])
        if "p0" in ids:
            return CallbackResult(status=403, reason="Forbidden", body=b"")
        items = [{**template, "pipeline_id": i} for i in ids]
        return CallbackResult(status=200, body=json.dumps(items))

    mocked.post(BATCH, callback=serve, repeat=True)
    async with Client(sleep=sleep) as client:
        pipe = client.codearts_pipeline(PIPE_BASE, project_id=PROJECT, token=TOKEN, batch_size=2)
        results = await pipe.latest_results(["p0", "p1", "p2", "p3"])
    assert isinstance(results["p0"], ForbiddenError)
    assert isinstance(results["p1"], ForbiddenError)
    assert isinstance(results["p2"], Run)
    assert isinstance(results["p3"], Run)


async def test_latest_runs_raises_when_batch_call_is_404(
    mocked: aioresponses, sleep: FakeSleep
) -> None:
    """A 404 to the batch call itself (unknown project) raises NotFoundError from latest_runs."""
    mocked.post(BATCH, status=404, body=body("codearts_pipeline", "error-404.json"))
    async with Client(sleep=sleep) as client:
        pipe = client.codearts_pipeline(PIPE_BASE, project_id=PROJECT, token=TOKEN)
        with pytest.raises(NotFoundError, match=r"DEV\.00000404"):
            await pipe.latest_runs([V5_ID])


# --- session ownership and lifecycle ----------------------------------------------------------


async def test_caller_session_used_and_left_open(mocked: aioresponses, sleep: FakeSleep) -> None:
    """With ``session=``, requests go through the caller's session, which is not closed."""
    mock_ok(mocked, "codearts_repo")
    session = aiohttp.ClientSession(headers={"X-Caller": "mine"})
    try:
        async with Client(session=session, sleep=sleep) as client:
            await call_repo(client)
        assert not session.closed
        ((_, _, kwargs),) = sent(mocked)
        assert kwargs["headers"]["X-Caller"] == "mine"
    finally:
        await session.close()


async def test_own_session_closed_on_exit(mocked: aioresponses, sleep: FakeSleep) -> None:
    """Without ``session=``, the client's own session is closed on exit."""
    client = Client(sleep=sleep)
    async with client:
        assert "closed=False" in repr(client)
    assert "closed=True" in repr(client)


@pytest.mark.parametrize(
    ("caller_session", "when"),
    [
        pytest.param(False, "before", id="own-session-before-enter"),
        pytest.param(False, "after", id="own-session-after-exit"),
        pytest.param(True, "before", id="caller-session-before-enter"),
        pytest.param(True, "after", id="caller-session-after-exit"),
    ],
)
async def test_adapter_outside_client_raises(
    mocked: aioresponses, sleep: FakeSleep, caller_session: bool, when: str
) -> None:
    """Using an adapter outside ``async with Client()`` raises RuntimeError and sends nothing."""
    mock_ok(mocked, "codearts_repo")
    session = aiohttp.ClientSession() if caller_session else None
    try:
        client = Client(session=session, sleep=sleep)
        repo = client.codearts_repo(REPO_BASE, token=TOKEN)
        if when == "after":
            async with client:
                pass
        with pytest.raises(RuntimeError, match="async with"):
            await repo.latest_run(1, 2)
    finally:
        if session is not None:
            await session.close()
    assert mocked.requests == {}


# --- found in review ------------------------------------------------------------------------


@pytest.mark.parametrize("total", ["²", "①", "-1", "1e3", "9" * 40], ids=repr)
async def test_unreadable_x_total_is_ignored(
    mocked: aioresponses, sleep: FakeSleep, total: str
) -> None:
    """An X-Total that is not a plain number is ignored: paging stops at the short page."""
    mocked.get(
        JOBS, payload=load_fixture("codearts_repo", "jobs-200.json"), headers={"X-Total": total}
    )
    async with Client(sleep=sleep) as client:
        jobs = await client.codearts_repo(REPO_BASE, token=TOKEN).jobs(1, 2)
    assert len(jobs) == 1


@pytest.mark.parametrize("token", ["tok\r\nX-Injected: 1", "tok\nen", "tok\x00", "tok\x7f"])
def test_token_with_control_characters_is_refused(token: str) -> None:
    """A token that would inject a header is a ValueError from the factory, not at send time."""
    client = Client()
    with pytest.raises(ValueError, match="control characters") as caught:
        client.codearts_repo(REPO_BASE, token=token)
    assert token not in str(caught.value)


@pytest.mark.parametrize(
    "url", ["http://a..b", "http://" + "x" * 64 + ".example", "ftp://host", "http://u:p@host"]
)
def test_unusable_base_url_is_refused_by_the_factory(url: str) -> None:
    """A base URL whose host cannot be resolved as written is a ValueError at once."""
    with pytest.raises(ValueError, match="base URL"):
        Client().yunxiao(url, token=TOKEN)
