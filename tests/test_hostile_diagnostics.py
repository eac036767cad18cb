"""What a person needs from an error: a connection error says refused, DNS failure, TLS
certificate problem or timeout, with the host; an endpoint that answers 200 with an HTML page
(a console address pasted as the endpoint) gets a hint."""

from __future__ import annotations

import errno
import socket
import ssl

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from pipestatus import Client
from pipestatus.errors import RequestTimeout, ResponseError, TransportError
from pipestatus.http import translate
from pipestatus.testing import SimRun, VendorServer

URL = "https://ci.example.com:8443/v4/repositories/1/pipelines/2/latest-jobs"
KEY = ConnectionKey("ci.example.com", 8443, True, True, None, None, None)


def _certificate_error() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "self-signed certificate"
    return error


@pytest.mark.parametrize(
    ("exc", "kind", "says"),
    [
        pytest.param(
            aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(errno.ECONNREFUSED, "x")),
            TransportError,
            "connection refused by ci.example.com:8443 (is anything listening there?)",
            id="refused",
        ),
        pytest.param(
            aiohttp.ClientConnectorDNSError(
                KEY, socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            ),
            TransportError,
            "cannot resolve ci.example.com (DNS: Name or service not known)",
            id="dns",
        ),
        pytest.param(
            aiohttp.ClientConnectorCertificateError(KEY, _certificate_error()),
            TransportError,
            "the TLS certificate of ci.example.com:8443 was not accepted (self-signed certificate)",
            id="certificate",
        ),
        pytest.param(
            aiohttp.ConnectionTimeoutError("Connection timeout to host"),
            RequestTimeout,
            "timed out connecting to ci.example.com:8443",
            id="connect-timeout",
        ),
        pytest.param(
            aiohttp.ClientConnectorError(KEY, OSError(errno.ENETUNREACH, "Network is unreachable")),
            TransportError,
            "cannot connect to ci.example.com:8443 (Network is unreachable)",
            id="unreachable",
        ),
        pytest.param(
            aiohttp.ServerDisconnectedError(),
            TransportError,
            "ci.example.com:8443 closed the connection",
            id="disconnected",
        ),
    ],
)
def test_a_connection_error_says_what_happened_and_where(
    exc: BaseException, kind: type[TransportError], says: str
) -> None:
    """Each kind of connection failure is named for a person, with the host (and port)."""
    error = translate(exc, "codearts_repo", 10.0, URL)
    assert type(error) is kind
    assert str(error) == f"codearts_repo: {says}"


async def test_a_refused_connection_names_the_host_over_a_real_socket() -> None:
    """A port nobody listens on is 'connection refused by 127.0.0.1:PORT'."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with Client(retries=0) as client:
        flow = client.yunxiao(f"http://127.0.0.1:{port}", token="t")
        with pytest.raises(TransportError) as info:
            await flow.latest_run("9")
    assert str(info.value) == (
        f"yunxiao: connection refused by 127.0.0.1:{port} (is anything listening there?)"
    )


async def test_an_html_page_where_json_belongs_gets_a_hint() -> None:
    """A 200 whose body is an HTML page (a console's address pasted as the endpoint) is a
    ResponseError that says the endpoint may not be the API's."""
    async with VendorServer(token="t") as server, Client(retries=0) as client:
        server.add_yunxiao_pipeline("9", SimRun(1, "running"))
        server.fault(body=b"<!DOCTYPE html><html><head><title>Console</title></head></html>")
        with pytest.raises(ResponseError) as info:
            await client.yunxiao(server.url, token="t").latest_run("9")
    assert "HTML page" in str(info.value)
    assert "is the endpoint the API's address?" in str(info.value)
