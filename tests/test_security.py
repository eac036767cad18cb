"""Security properties: the token stays secret and home, IDs stay in their path segment, and TLS
is verified unless the caller says otherwise.

Every test runs against real servers on 127.0.0.1 (``pipestatus.testing.VendorServer``, or a tiny
recording server where the raw request line matters), never the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import ssl
import subprocess
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from aiohttp import web
from conftest import load_fixture

from pipestatus import Change, Client, Run, Target
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

TOKEN = "sec-TOKEN-7f3a9c1e5b"  # distinctive, so any leak is found by a substring search
REPO, PIPE = 2111976239, 6
V5_ID = "d1971e7b3fb44f4a8e79d4b4f1b2c3d4"
YX_ID = "123"
#: Which header each vendor's token travels in (lower case, as the server records it).
TOKEN_HEADER = {
    "codearts_repo": "x-auth-token",
    "codearts_pipeline": "x-auth-token",
    "yunxiao": "x-yunxiao-token",
}
VENDORS = sorted(TOKEN_HEADER)


async def _no_sleep(_: float) -> None:
    return None


def _run(status: str = "success") -> SimRun:
    return SimRun(7, status, [SimStage("build", [SimJob("make", status)])])


@pytest.fixture
async def server() -> AsyncIterator[VendorServer]:
    async with VendorServer(token=TOKEN) as srv:
        srv.add_repo_pipeline(REPO, PIPE, _run(), extra_jobs=3)
        srv.add_v5_pipeline("proj", V5_ID, _run("failed"))
        srv.add_yunxiao_pipeline(YX_ID, _run("running"))
        yield srv


@pytest.fixture
async def third() -> AsyncIterator[VendorServer]:
    """A third origin, the end of a redirect chain."""
    async with VendorServer(token="third-token") as srv:
        yield srv


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with Client(timeout=2.0, retries=1, sleep=_no_sleep) as c:
        yield c


def _call(client: Client, base: str, vendor: str, token: Any = TOKEN) -> Awaitable[object]:
    """The main call of ``vendor`` against ``base``."""
    if vendor == "codearts_repo":
        return client.codearts_repo(base, token=token).latest_run(REPO, PIPE)
    if vendor == "codearts_pipeline":
        pipe = client.codearts_pipeline(base, project_id="proj", token=token)
        return pipe.latest_runs([V5_ID])
    return client.yunxiao(base, token=token).latest_run(YX_ID)


def _path(vendor: str) -> str:
    return {
        "codearts_repo": f"/v4/repositories/{REPO}/pipelines/{PIPE}/latest-jobs",
        "codearts_pipeline": "/v5/proj/api/pipelines/status",
        "yunxiao": f"/oapi/v1/flow/organizations/pipelines/{YX_ID}/runs/latestPipelineRun",
    }[vendor]


def _texts(error: BaseException) -> list[str]:
    """Everything an error shows: str, repr, args, and the traceback as printed."""
    return [
        str(error),
        repr(error),
        repr(error.args),
        repr(vars(error)),
        "".join(traceback.format_exception(error)),
    ]


def _log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return [formatter.format(record) for record in caplog.records] + [caplog.text]


# --- no token in any repr or str ----------------------------------------------------------------


async def test_no_token_in_reprs(server: VendorServer, client: Client) -> None:
    """Client, adapters, targets, auth, endpoints, runs and changes never show the token."""

    async def provider() -> str:
        return TOKEN

    repo = client.codearts_repo(server.url, token=TOKEN)
    pipe = client.codearts_pipeline(server.url, project_id="proj", token=TOKEN)
    flow = client.yunxiao(server.url, token=TOKEN)
    flow_org = client.yunxiao(server.url, token=provider, organization_id="org-1")
    adapters: list[Any] = [repo, pipe, flow, flow_org]
    targets: list[Target] = [repo.target(REPO, PIPE), pipe.target(V5_ID), flow.target(YX_ID)]
    run = await flow.latest_run(YX_ID)
    with contextlib.suppress(PipestatusError):  # the provider's token is now cached in the Auth
        await flow_org.latest_run(YX_ID)
    watch = client.watch(targets, interval=0.05)
    first: Change = await anext(watch)
    await watch.aclose()
    objects: list[Any] = [
        client,
        *adapters,
        *targets,
        *(adapter._endpoint for adapter in adapters),
        *(adapter._endpoint.auth for adapter in adapters),
        run,
        *run.stages,
        *run.jobs,
        first,
        await client.poll(targets),
    ]
    for obj in objects:
        assert TOKEN not in repr(obj), type(obj)
        assert TOKEN not in str(obj), type(obj)
    assert "hidden" in repr(repo._endpoint.auth)


# --- no token in errors or DEBUG logs, on every error path ----------------------------------------


async def _failing_provider() -> str:
    raise RuntimeError(f"the vault refused to renew {TOKEN}")


async def _empty_provider() -> str:
    return ""


#: name -> (set-up on the server, Client options, token, the error expected)
ERROR_PATHS: dict[str, tuple[dict[str, Any] | None, dict[str, Any], Any, type[Exception]]] = {
    "401": ({"status": 401}, {}, TOKEN, AuthError),
    "401-wrong-token": (None, {}, TOKEN + "-wrong", AuthError),
    "403": ({"status": 403}, {}, TOKEN, ForbiddenError),
    "404": ({"status": 404}, {}, TOKEN, NotFoundError),
    "429": ({"status": 429, "retry_after": 0}, {}, TOKEN, RateLimitedError),
    "500": ({"status": 500}, {}, TOKEN, ServerError),
    "503-json-body": (
        {"status": 503, "body": {"error_code": "X", "error_msg": f"echo {TOKEN}"}},
        {},
        TOKEN,
        ServerError,
    ),
    "timeout": ({"hang": True}, {"timeout": 0.2}, TOKEN, RequestTimeout),
    "reset": ({"reset": True}, {}, TOKEN, TransportError),
    "bad-json": ({"malformed": True}, {}, TOKEN, ResponseError),
    "body-cap": ({"oversize_bytes": 50_000}, {"max_body_bytes": 1_000}, TOKEN, ResponseError),
    "redirect-refused": ({"redirect_to": "FOREIGN"}, {}, TOKEN, APIError),
    "provider-fails": (None, {}, _failing_provider, PipestatusError),
    "provider-empty": (None, {}, _empty_provider, PipestatusError),
}


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("path", sorted(ERROR_PATHS))
async def test_no_token_in_errors_or_debug_logs(
    server: VendorServer,
    foreign: VendorServer,
    caplog: pytest.LogCaptureFixture,
    vendor: str,
    path: str,
) -> None:
    """Each error path raises its PipestatusError, and neither the error nor any DEBUG log
    line of the "pipestatus" logger holds the token."""
    setup, options, token, expected = ERROR_PATHS[path]
    if setup is not None:
        if setup.get("redirect_to") == "FOREIGN":
            setup = {**setup, "redirect_to": f"{foreign.url}{_path(vendor)}"}
        server.fault(**setup)
    caplog.set_level(logging.DEBUG, logger="pipestatus")
    async with Client(**{"retries": 1, "sleep": _no_sleep, **options}) as client:
        with pytest.raises(expected) as caught:
            async with asyncio.timeout(10):
                await _call(client, server.url, vendor, token)
    texts = _texts(caught.value) + _log_texts(caplog)
    leaks = [text for text in texts if TOKEN in text]
    assert not leaks, leaks[0][:500]
    assert foreign.request_count == 0


async def test_debug_logs_of_a_watch_hold_no_token(
    server: VendorServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A watch through errors and recoveries logs at DEBUG without ever showing the token."""
    caplog.set_level(logging.DEBUG, logger="pipestatus")
    server.chaos(0.5, seed=5, kinds=("http_500", "http_429", "malformed", "unknown_status"))
    async with Client(retries=0, sleep=_no_sleep) as client:
        targets = [
            client.codearts_repo(server.url, token=TOKEN).target(REPO, PIPE),
            client.codearts_pipeline(server.url, project_id="proj", token=TOKEN).target(V5_ID),
            client.yunxiao(server.url, token=TOKEN).target(YX_ID),
        ]
        watch = client.watch(targets, interval=0.02, errors=True)
        changes: list[Change] = []
        async with asyncio.timeout(20):
            async for change in watch:
                changes.append(change)
                if len(changes) == 15:
                    break
        await watch.aclose()
    assert any(isinstance(change.current, PipestatusError) for change in changes)
    assert caplog.records
    assert not [text for text in _log_texts(caplog) if TOKEN in text]
    for change in changes:
        assert TOKEN not in repr(change)


# --- the token stays home: redirects ----------------------------------------------------------


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
async def test_redirect_chain_to_other_origins_carries_no_token(
    server: VendorServer,
    foreign: VendorServer,
    third: VendorServer,
    client: Client,
    vendor: str,
    code: int,
) -> None:
    """A redirect chain A -> B -> C across origins is refused at the first hop: B and C see
    no request at all, so no token header and no replayed body."""
    foreign.fault(redirect_to=f"{third.url}{_path(vendor)}", redirect_status=code)
    server.fault(redirect_to=f"{foreign.url}{_path(vendor)}", redirect_status=code)
    with pytest.raises(APIError) as caught:
        await _call(client, server.url, vendor)
    assert caught.value.status == code
    assert foreign.request_count == 0
    assert third.request_count == 0
    assert not foreign.requests
    assert not third.requests


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize(
    "where",
    [
        "https://127.0.0.1:{port}",  # http -> https on the same host and port: another origin
        "https://127.0.0.1:{foreign}",  # http -> https on another port
        "http://localhost:{port}",  # the same socket under another name
        "http://127.0.0.1:{foreign}",  # another port
        "//127.0.0.1:{foreign}",  # scheme-relative
        "http://127.0.0.1:{port}@127.0.0.1:{foreign}",  # userinfo trick
    ],
)
async def test_redirect_to_another_scheme_host_or_port_is_refused(
    server: VendorServer, foreign: VendorServer, client: Client, vendor: str, where: str
) -> None:
    """A redirect that changes scheme, host name or port is refused; the other side records
    nothing, and the first server saw the token only in the vendor's header."""
    location = where.format(port=server.port, foreign=foreign.port) + _path(vendor)
    server.fault(redirect_to=location)
    with pytest.raises(APIError):
        await _call(client, server.url, vendor)
    assert foreign.request_count == 0
    (seen,) = server.requests
    assert seen.headers[TOKEN_HEADER[vendor]] == TOKEN


@pytest.mark.parametrize("vendor", VENDORS)
async def test_same_origin_redirect_keeps_the_token_in_its_header(
    server: VendorServer, client: Client, vendor: str
) -> None:
    """A same-origin redirect is followed with the token in the vendor's header (the control
    for the refusals above)."""
    server.fault(redirect_to=f"{server.url}{_path(vendor)}", redirect_status=307, times=1)
    await _call(client, server.url, vendor)
    assert len(server.requests) == 2
    for seen in server.requests:
        assert seen.headers[TOKEN_HEADER[vendor]] == TOKEN


# --- the token only in its header -----------------------------------------------------------


async def test_token_only_in_the_vendor_header(server: VendorServer, client: Client) -> None:
    """Across every call, the token appears only in the vendor's own header: never in a URL,
    a query, a body or any other header."""
    repo = client.codearts_repo(server.url, token=TOKEN)
    await repo.latest_run(REPO, PIPE)
    await repo.jobs(REPO, PIPE)
    pipe = client.codearts_pipeline(server.url, project_id="proj", token=TOKEN)
    await pipe.latest_results([V5_ID, "missing"])
    flow = client.yunxiao(server.url, token=TOKEN)
    await flow.latest_run(YX_ID)
    await client.poll([repo.target(REPO, PIPE), pipe.target(V5_ID), flow.target(YX_ID)])
    assert len(server.requests) >= 6
    for seen in server.requests:
        assert TOKEN not in seen.path
        assert not any(TOKEN in key or TOKEN in value for key, value in seen.query.items())
        assert TOKEN.encode() not in seen.body
        carrying = {name for name, value in seen.headers.items() if TOKEN in value}
        assert carrying == {TOKEN_HEADER[seen.vendor or ""]}, seen


# --- IDs stay in their segment ------------------------------------------------------------------


class RawRecorder:
    """A server that records each request's raw (still percent-encoded) path and body, and
    answers 404: the place to see exactly what the client put on the wire."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bytes]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.raw_path, await request.read()))
        return web.json_response({"errorCode": "NotFound"}, status=404)

    async def __aenter__(self) -> RawRecorder:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


NASTY_IDS = [
    "a/b",
    "../../admin",
    "..%2F..",
    "..%2F..%2Fadmin",
    "%2F",
    "a?b=c",
    "a#frag",
    "a b",
    "a+b",
    "a;b",
    "%",
    "%%32%65",
    "\\..\\",
    "...",
    ".a",
    "流水线/一",
    "ü/ñ",
    "\u202e\u2066",
    "a\u2215b",  # a division slash, which some servers fold to "/"
    "~user",
]


@pytest.fixture
async def recorder() -> AsyncIterator[RawRecorder]:
    async with RawRecorder() as rec:
        yield rec


def _segments(raw_path: str) -> list[str]:
    return raw_path.split("?", 1)[0].split("/")


@pytest.mark.parametrize("value", NASTY_IDS)
async def test_yunxiao_ids_are_one_encoded_segment(
    recorder: RawRecorder, client: Client, value: str
) -> None:
    """A Yunxiao pipeline or organization ID, whatever it holds, reaches the server as exactly
    one percent-encoded path segment, so the path keeps its shape."""
    plain = client.yunxiao(recorder.url, token=TOKEN)
    with_org = client.yunxiao(recorder.url, token=TOKEN, organization_id=value)
    region = client.yunxiao(recorder.url, token=TOKEN, region_edition=True)
    for adapter, expected in (
        (plain, ["", "oapi", "v1", "flow", "organizations", "pipelines", value, "runs", "x"]),
        (
            with_org,
            ["", "oapi", "v1", "flow", "organizations", value, "pipelines", "7", "runs", "x"],
        ),
        (region, ["", "oapi", "v1", "flow", "pipelines", value, "runs", "x"]),
    ):
        recorder.seen.clear()
        with pytest.raises(NotFoundError):
            await adapter.latest_run("7" if adapter is with_org else value)
        ((raw, _),) = recorder.seen
        segments = _segments(raw)
        assert len(segments) == len(expected), raw
        index = expected.index(value)
        assert segments[index] == quote(value, safe=""), raw
        assert unquote(segments[index]) == value
        assert "?" not in raw
        assert "#" not in raw


@pytest.mark.parametrize("value", NASTY_IDS)
async def test_v5_ids_stay_in_their_place(
    recorder: RawRecorder, client: Client, value: str
) -> None:
    """A v5 project ID is one encoded path segment; a v5 pipeline ID travels only in the JSON
    body, verbatim."""
    pipe = client.codearts_pipeline(recorder.url, project_id=value, token=TOKEN)
    with pytest.raises(NotFoundError):
        await pipe.latest_runs([value])
    ((raw, body),) = recorder.seen
    segments = _segments(raw)
    assert len(segments) == 6, raw  # "", v5, {project}, api, pipelines, status
    assert segments[2] == quote(value, safe="")
    assert segments[3:] == ["api", "pipelines", "status"]
    assert json.loads(body) == [value]


@pytest.mark.parametrize(
    "value", ["1/2", "../1", "1?x=2", "1#2", "%31", "1 2", "\uff11\uff12", "0", "-1"]
)
async def test_v4_ids_that_are_no_integers_are_refused(
    recorder: RawRecorder, client: Client, value: str
) -> None:
    """A v4 repository or pipeline ID that is not an integer in range raises ValueError before
    any request."""
    repo = client.codearts_repo(recorder.url, token=TOKEN)
    with pytest.raises(ValueError, match="must be"):
        await repo.latest_run(value, PIPE)
    with pytest.raises(ValueError, match="must be"):
        await repo.latest_run(REPO, value)
    with pytest.raises(ValueError, match="must be"):
        repo.target(value, PIPE)
    with pytest.raises(ValueError, match="must be"):
        await repo.jobs(REPO, value)
    assert recorder.seen == []


DOT_CALLS: dict[str, Callable[[Client, str, str], Any]] = {
    "yunxiao.latest_run": lambda c, url, v: c.yunxiao(url, token=TOKEN).latest_run(v),
    "yunxiao.target": lambda c, url, v: c.yunxiao(url, token=TOKEN).target(v),
    "yunxiao.organization_id": lambda c, url, v: c.yunxiao(url, token=TOKEN, organization_id=v),
    "v5.project_id": lambda c, url, v: c.codearts_pipeline(url, project_id=v, token=TOKEN),
    "v5.latest_runs": lambda c, url, v: c.codearts_pipeline(
        url, project_id="p", token=TOKEN
    ).latest_runs([v]),
    "v5.target": lambda c, url, v: c.codearts_pipeline(url, project_id="p", token=TOKEN).target(v),
}


@pytest.mark.parametrize("value", [".", "..", "", " ", "a\nb", "a\x00b", "a\rb\x7f"])
@pytest.mark.parametrize("call", sorted(DOT_CALLS))
async def test_dot_segments_and_control_characters_are_refused(
    recorder: RawRecorder, client: Client, call: str, value: str
) -> None:
    """``.``, ``..``, empty IDs and control characters raise ValueError before any request."""

    async def invoke() -> None:
        outcome = DOT_CALLS[call](client, recorder.url, value)
        if asyncio.iscoroutine(outcome):
            await outcome

    with pytest.raises(ValueError, match="must"):
        await invoke()
    assert recorder.seen == []


# --- TLS ------------------------------------------------------------------------------------------


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl CLI): (certificate, key)."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "the openssl CLI is needed (.ci/run installs it)"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(  # noqa: S603 - a fixed command line, no user input
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """An https server on 127.0.0.1 with a self-signed certificate that serves one Yunxiao run;
    yields its URL and the certificate file."""
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    payload = load_fixture("yunxiao", "latest-run-200.json")

    async def handle(request: web.Request) -> web.Response:
        if request.headers.get("x-yunxiao-token") != TOKEN:
            return web.json_response({"errorCode": "Unauthorized"}, status=401)
        return web.json_response(payload)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.Server)
    try:
        yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}", cert
    finally:
        await runner.cleanup()


async def test_tls_is_verified_by_default(tls_server: tuple[str, Path]) -> None:
    """By default a self-signed certificate fails with TransportError, not a run."""
    url, _ = tls_server
    async with Client(retries=0, timeout=5.0) as client:
        with pytest.raises(TransportError):
            await client.yunxiao(url, token=TOKEN).latest_run(YX_ID)


async def test_tls_verification_off_is_explicit(tls_server: tuple[str, Path]) -> None:
    """Only ``verify_tls=False`` accepts the self-signed certificate."""
    url, _ = tls_server
    async with Client(retries=0, timeout=5.0, verify_tls=False) as client:
        run = await client.yunxiao(url, token=TOKEN).latest_run(YX_ID)
    assert isinstance(run, Run)


async def test_tls_with_own_ca_context(tls_server: tuple[str, Path]) -> None:
    """An ``ssl.SSLContext`` that trusts the certificate verifies it and reads the run."""
    url, cert = tls_server
    context = ssl.create_default_context(cafile=str(cert))
    async with Client(retries=0, timeout=5.0, verify_tls=context) as client:
        run = await client.yunxiao(url, token=TOKEN).latest_run(YX_ID)
    assert isinstance(run, Run)
