"""Auth objects as the transport consults them: on every attempt and hop, after every other header
is final (so a signature covers conditional headers, and each retry is signed afresh), with token
providers fetched once at a time and bounded by the client's timeout.

A toy signer stands in for Huawei's AK/SK signing here; a real aiohttp server on 127.0.0.1 checks
each signature exactly as it was sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web
from conftest import fixture_bytes

from pipestatus import Client, Run
from pipestatus._sansio import Request, Sender
from pipestatus.auth import Auth, ProvidedToken
from pipestatus.errors import AuthError, PipestatusError
from pipestatus.vendors import yunxiao

KEY = b"toy-signing-key-0123456789"
PATH = "/oapi/v1/flow/organizations/pipelines/123/runs/latestPipelineRun"
SIGNED = ("host", "if-none-match", "x-nonce")


def _string_to_sign(method: str, path: str, query: str, headers: dict[str, str]) -> bytes:
    lines = [method, path, query, *(f"{name}:{headers.get(name, '')}" for name in SIGNED)]
    return "\n".join(lines).encode()


class ToySigner(Auth):
    """Signs method, path, query and three headers with a nonce that changes per signature."""

    def __init__(self, key: bytes = KEY) -> None:
        self._key = key
        self._nonces: Iterator[int] = itertools.count(1)
        self.signed: list[Request] = []

    async def apply(self, request: Request, sender: Sender) -> Request:
        request = request.with_headers({"X-Nonce": str(next(self._nonces))})
        rest = request.url.split("://", 1)[1]
        host, _, path = rest.partition("/")
        headers = {name.lower(): value for name, value in request.headers.items()}
        headers["host"] = host
        mac = hmac.new(
            self._key,
            _string_to_sign(request.method, f"/{path}", request.query, headers),
            hashlib.sha256,
        )
        signed = request.with_headers({"Authorization": f"TOY {mac.hexdigest()}"})
        self.signed.append(signed)
        return signed

    def __repr__(self) -> str:
        return "ToySigner(key=<hidden>)"


class SigningServer:
    """Serves one Yunxiao run; answers 401 unless the toy signature matches exactly what came."""

    def __init__(self) -> None:
        self.failures: list[int] = []  # statuses to answer first, one per request
        self.seen: list[dict[str, str]] = []
        self.etag = '"v1"'
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.seen.append(headers)
        query = request.query_string
        expected = hmac.new(
            KEY, _string_to_sign(request.method, request.path, query, headers), hashlib.sha256
        ).hexdigest()
        if headers.get("authorization") != f"TOY {expected}":
            return web.json_response({"errorCode": "BadSignature"}, status=401)
        if self.failures:
            return web.Response(status=self.failures.pop(0))
        if headers.get("if-none-match") == self.etag:
            return web.Response(status=304, headers={"ETag": self.etag})
        body = fixture_bytes("yunxiao", "latest-run-200.json")
        return web.Response(
            body=body, headers={"ETag": self.etag, "Content-Type": "application/json"}
        )


@pytest.fixture
async def signing() -> AsyncIterator[SigningServer]:
    server = SigningServer()
    app = web.Application()
    app.router.add_get(PATH, server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}"
    yield server
    await runner.cleanup()


async def _no_sleep(_: float) -> None:
    return None


def _flow(client: Client, url: str, auth: Auth) -> yunxiao.YunxiaoFlow:
    return client._connect(yunxiao.SPEC, url, auth, yunxiao.Options())


async def test_signer_sees_the_final_headers_and_signs_each_attempt(
    signing: SigningServer,
) -> None:
    """Each retry is signed afresh (a new nonce each time) and every signature is accepted."""
    signing.failures = [503, 502]
    signer = ToySigner()
    async with Client(retries=3, sleep=_no_sleep) as client:
        run = await _flow(client, signing.url, signer).latest_run("123")
    assert isinstance(run, Run)
    assert [seen["x-nonce"] for seen in signing.seen] == ["1", "2", "3"]
    assert len({seen["authorization"] for seen in signing.seen}) == 3


async def test_signature_covers_the_conditional_header(signing: SigningServer) -> None:
    """The second request carries If-None-Match inside its signature, and its 304 reuses the run."""
    signer = ToySigner()
    async with Client(sleep=_no_sleep) as client:
        flow = _flow(client, signing.url, signer)
        first = await flow.latest_run("123")
        second = await flow.latest_run("123")
    assert second is first
    assert "if-none-match" not in signing.seen[0]
    assert signing.seen[1]["if-none-match"] == signing.etag
    assert signer.signed[1].headers["If-None-Match"] == signing.etag


async def test_a_wrong_signature_is_an_auth_error(signing: SigningServer) -> None:
    """A signer with the wrong key is refused once (a signer has nothing to refresh)."""
    async with Client(retries=3, sleep=_no_sleep) as client:
        with pytest.raises(AuthError):
            await _flow(client, signing.url, ToySigner(b"wrong")).latest_run("123")
    assert len(signing.seen) == 1


class CountingProvider:
    """A token provider that counts its calls and answers once released."""

    def __init__(self) -> None:
        self.calls = 0
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self) -> str:
        self.calls += 1
        self.entered.set()
        await self.release.wait()
        return f"token-{self.calls}"


async def test_one_token_fetch_however_many_requests_wait(signing: SigningServer) -> None:
    """Fifty requests waiting for a provider's first token cause one fetch."""
    provider = CountingProvider()
    auth = ProvidedToken("x-yunxiao-token", provider)

    async def fetch_all() -> list[Request]:
        request = Request(method="GET", url=f"{signing.url}/x")
        async with Client() as client:
            sender = client._transport
            tasks = [asyncio.create_task(auth.apply(request, sender)) for _ in range(50)]
            await provider.entered.wait()  # the first fetch is under way, the rest queue behind
            provider.release.set()
            return await asyncio.gather(*tasks)

    applied = await fetch_all()
    assert provider.calls == 1
    assert {r.headers["x-yunxiao-token"] for r in applied} == {"token-1"}


async def test_a_provider_that_never_answers_costs_one_timeout() -> None:
    """A token provider that hangs fails the request after the client's timeout, as a
    PipestatusError, instead of hanging it."""
    provider = CountingProvider()  # never released
    async with Client(timeout=0.2, retries=0, sleep=_no_sleep) as client:
        flow = client.yunxiao("http://127.0.0.1:9", token=provider)
        with pytest.raises(PipestatusError, match=r"did not answer within 0\.2 s"):
            async with asyncio.timeout(5):
                await flow.latest_run("123")
    assert provider.calls == 1


def test_a_client_and_its_provider_work_under_a_second_event_loop() -> None:
    """A client opened, closed and opened again under another asyncio.run keeps working (no
    lock or semaphore bound to the first loop)."""
    calls = 0

    async def provider() -> str:
        nonlocal calls
        calls += 1
        return "tok"

    client = Client(max_concurrency=1, sleep=_no_sleep)

    async def once() -> None:
        async with SigninglessServer() as url, client:
            flow = client.yunxiao(url, token=provider)
            await asyncio.gather(*(flow.latest_run("123") for _ in range(4)))

    asyncio.run(once())
    asyncio.run(once())
    assert calls == 2  # one fetch per adapter, each under its own loop


class SigninglessServer:
    """A plain server for the latest run, for the event-loop test."""

    async def __aenter__(self) -> str:
        async def handle(_: web.Request) -> web.Response:
            body = fixture_bytes("yunxiao", "latest-run-200.json")
            return web.Response(body=body, content_type="application/json")

        app = web.Application()
        app.router.add_get(PATH, handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def __aexit__(self, *exc_info: object) -> None:
        await self._runner.cleanup()
