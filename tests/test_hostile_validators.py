"""A validator a server sent (``ETag``, ``Last-Modified``) is kept only if it can be sent back,
and dropped once a conditional request failed: a server's bad validator costs at most one
poll, never every later request of that pipeline, and nothing but ``PipestatusError`` escapes."""

from __future__ import annotations

import pytest

from pipestatus import Client, Run
from pipestatus._sansio import MAX_VALIDATOR, Request, Response, Validators, sendable
from pipestatus.errors import APIError, TransportError
from pipestatus.http import AiohttpDriver
from pipestatus.testing import Fault, SimJob, SimRun, SimStage, VendorServer
from pipestatus.testing.hostile import UNSENDABLE_ETAGS, RawHeaders

TOKEN = "validator-token"


@pytest.mark.parametrize(
    "value",
    ['"abc"', 'W/"0815"', "Wed, 21 Oct 2015 07:28:00 GMT", '"' + "x" * (MAX_VALIDATOR - 2) + '"'],
)
def test_a_plain_validator_is_kept(value: str) -> None:
    """Printable ASCII up to the limit can be sent back as it came."""
    assert sendable(value) == value


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        '"v1\x01"',
        '"v1\r\nX-Injected: 1"',
        '"v1\x7f"',
        '"v1\t"',
        '"caf\u00e9"',
        '"\udcff"',
        "x" * (MAX_VALIDATOR + 1),
        UNSENDABLE_ETAGS[1],
    ],
    ids=["none", "empty", "SOH", "CRLF", "DEL", "TAB", "non-ASCII", "surrogate", "long", "6KB"],
)
def test_an_unsendable_validator_is_dropped(value: str | None) -> None:
    """Control characters, non-ASCII and oversized values are never kept to send back."""
    assert sendable(value) is None
    assert not Validators(value, value)


def test_a_response_offers_only_sendable_validators() -> None:
    """A response's validators leave out what cannot be sent and keep the rest."""
    response = Response(
        status=200,
        headers={"etag": '"bad\x01"', "last-modified": "Wed, 21 Oct 2015 07:28:00 GMT"},
        body=b"{}",
        vendor="v",
    )
    assert response.validators == Validators(None, "Wed, 21 Oct 2015 07:28:00 GMT")


async def test_the_driver_turns_aiohttps_refusal_to_send_into_a_transport_error() -> None:
    """A header aiohttp refuses at send time is a TransportError, not aiohttp's ValueError."""
    driver = AiohttpDriver(timeout=5, max_concurrency=1, max_per_host=None)
    async with VendorServer(token=TOKEN) as server:
        await driver.open()
        try:
            request = Request(method="GET", url=f"{server.url}/x", headers={"X-Bad": "a\x01b"})
            with pytest.raises(TransportError, match="could not be sent") as info:
                await driver.send(request, vendor="v", limit=1024)
        finally:
            await driver.close()
    assert info.value.__context__ is None
    assert info.value.__cause__ is None


def _run() -> SimRun:
    return SimRun(number=1, status="running", stages=[SimStage("b", [SimJob("m", "running")])])


@pytest.mark.parametrize("etag", UNSENDABLE_ETAGS, ids=["control-character", "6KB"])
async def test_an_unsendable_etag_never_poisons_later_requests(etag: str) -> None:
    """After an answer whose ETag cannot be sent back, every later request of the pipeline
    goes out unconditionally and is answered."""
    async with VendorServer(token=TOKEN) as server, Client(timeout=5, retries=0) as client:
        server.add_repo_pipeline(2000, 1, _run())
        server.add_fault(
            Fault(vendor="codearts_repo", times=1, effects=(RawHeaders({"ETag": etag}),))
        )
        repo = client.codearts_repo(server.url, token=TOKEN)
        for _ in range(3):
            assert isinstance(await repo.latest_run(2000, 1), Run)
    (_, second, third) = server.requests
    assert "if-none-match" not in second.headers
    assert third.headers.get("if-none-match")  # the server's own ETag of the second answer


async def test_validators_are_dropped_after_a_conditional_request_fails() -> None:
    """A conditional request refused (a gateway that cannot take its validator, say) fails
    once; the next request goes without validators and is answered."""
    async with VendorServer(token=TOKEN) as server, Client(timeout=5, retries=0) as client:
        server.add_repo_pipeline(2000, 1, _run())
        repo = client.codearts_repo(server.url, token=TOKEN)
        target = repo.target(2000, 1)
        assert isinstance(await repo.fetch(target), Run)
        server.fault(times=1, status=400)
        with pytest.raises(APIError):
            await repo.fetch(target)
        assert isinstance((await client.poll([target]))[target], Run)
    _, refused, after = server.requests
    assert refused.headers.get("if-none-match")
    assert "if-none-match" not in after.headers
