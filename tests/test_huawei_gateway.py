"""The simulated Huawei gateway checks exactly what arrives: requests signed by the pure
signer and sent raw are accepted as signed, and refused once anything signed changed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from urllib.parse import quote

import aiohttp
import pytest
import yarl

from pipestatus.auth._sign import sign
from pipestatus.testing import SimJob, SimRun, SimStage, VendorServer

AK = "TESTACCESSKEY0000001"
SK = "test-secret-key-9d8e7f6a5b4c3d2e1f"
REPO, PIPE = 2111976239, 6
PROJECT = "proj ü+x(1)"
V5_IDS = ["d1971e7b3fb44f4a8e79d4b4f1b2c3d4", "二号流水线"]

Tamper = Callable[[dict[str, str], str, bytes | None], tuple[dict[str, str], str, bytes | None]]


@pytest.fixture
async def server() -> AsyncIterator[VendorServer]:
    run = SimRun(7, "success", [SimStage("build", [SimJob("make", "success")])])
    async with VendorServer() as srv:
        srv.add_repo_pipeline(REPO, PIPE, run, extra_jobs=10)
        for pipeline_id in V5_IDS:
            srv.add_v5_pipeline(PROJECT, pipeline_id, run)
        srv.huawei.add_key(AK, SK)
        yield srv


async def _send(
    server: VendorServer,
    *,
    method: str = "GET",
    path: str = f"/v4/repositories/{REPO}/pipelines/{PIPE}/jobs",
    query: str = "limit=5&offset=0",
    body: bytes | None = None,
    tamper: Tamper | None = None,
) -> tuple[int, object]:
    """Sign a request with _sign.sign, let ``tamper`` change it, send it raw; the answer."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    signed = sign(
        method=method,
        url=server.url + path,
        query=query,
        headers=headers,
        body=body,
        ak=AK,
        sk=SK,
        now=server.huawei.now(),
    )
    out, sent_query, sent_body = dict(signed.headers), signed.query, body
    if tamper is not None:
        out, sent_query, sent_body = tamper(out, sent_query, sent_body)
    url = server.url + path + (f"?{sent_query}" if sent_query else "")
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, yarl.URL(url, encoded=True), headers=out, data=sent_body) as resp,
    ):
        return resp.status, await resp.json()


async def test_the_gateway_accepts_exactly_what_was_signed(server: VendorServer) -> None:
    """A request signed by the pure signer and sent as signed is accepted, also with a header
    added that the signature does not cover."""
    assert (await _send(server))[0] == 200

    def extra(
        h: dict[str, str], q: str, b: bytes | None
    ) -> tuple[dict[str, str], str, bytes | None]:
        return {**h, "X-Unsigned-Extra": "1"}, q, b

    assert (await _send(server, tamper=extra))[0] == 200
    assert server.huawei.refused == 0


def _changed_header(
    h: dict[str, str], q: str, b: bytes | None
) -> tuple[dict[str, str], str, bytes | None]:
    return {**h, "Content-Type": "text/plain"}, q, b


def _reordered_query(
    h: dict[str, str], q: str, b: bytes | None
) -> tuple[dict[str, str], str, bytes | None]:
    return h, "&".join(reversed(q.split("&"))), b


def _changed_query(
    h: dict[str, str], q: str, b: bytes | None
) -> tuple[dict[str, str], str, bytes | None]:
    return h, q.replace("limit=5", "limit=6"), b


def _changed_body(
    h: dict[str, str], q: str, b: bytes | None
) -> tuple[dict[str, str], str, bytes | None]:
    return h, q, (b or b"") + b" "


def _unsigned_host(
    h: dict[str, str], q: str, b: bytes | None
) -> tuple[dict[str, str], str, bytes | None]:
    value = h["Authorization"].replace("SignedHeaders=content-type;host;", "SignedHeaders=")
    return {**h, "Authorization": value.replace("SignedHeaders=host;", "SignedHeaders=")}, q, b


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        pytest.param(_changed_header, "verify aksk signature fail", id="signed-header"),
        pytest.param(_reordered_query, "canonical form", id="query-order"),
        pytest.param(_changed_query, "verify aksk signature fail", id="query-value"),
        pytest.param(_changed_body, "verify aksk signature fail", id="body"),
        pytest.param(_unsigned_host, "verify aksk signature fail", id="host-not-signed"),
    ],
)
async def test_the_gateway_refuses_what_changed_after_signing(
    server: VendorServer,
    tamper: Tamper,
    message: str,
) -> None:
    """A signed header, the query, the body changed after signing, or host left unsigned:
    the gateway's 401 APIGW.0301."""
    if tamper is _changed_body:
        status, answer = await _send(
            server,
            method="POST",
            path=f"/v5/{quote(PROJECT, safe='')}/api/pipelines/status",
            query="",
            body=json.dumps(V5_IDS).encode(),
            tamper=tamper,
        )
    else:
        status, answer = await _send(
            server, body=b"[]" if tamper is _changed_header else None, tamper=tamper
        )
    assert status == 401
    assert isinstance(answer, dict)
    assert answer["error_code"] == "APIGW.0301"
    assert message in answer["error_msg"]
    assert server.huawei.refused == 1
