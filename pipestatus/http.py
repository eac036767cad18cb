"""The aiohttp driver: the one client-side module that knows aiohttp.

It only sends bytes: one ``aiohttp.ClientSession`` (the client's own, or one the caller owns and
closes), redirects never followed by aiohttp (``pipestatus._transport`` decides them), bodies read
under a cap (checked against ``Content-Length``; an announced, uncompressed body under it is read
in one call, any other in chunks, so a compressed or chunked answer cannot outgrow it), and every
aiohttp, OS and timeout exception translated through one table into the error tree. Each error
is built inside ``except`` and raised after it, so no ``__context__`` carries aiohttp's request
(whose headers hold the credentials).
"""

from __future__ import annotations

import errno
import ssl
from typing import Final

import aiohttp
import yarl

from pipestatus._safe import clean
from pipestatus._sansio import ERROR_BODY_LIMIT, REDIRECTS, Request, Response
from pipestatus._transport import CLOSED, USER_AGENT
from pipestatus.errors import PipestatusError, RequestTimeout, ResponseError, TransportError

__all__ = ["USER_AGENT", "AiohttpDriver", "Session"]

#: The session type a caller may hand to ``Client(session=...)``.
Session = aiohttp.ClientSession

_CHUNK: Final = 64 * 1024

#: Lower-layer exceptions to the error tree, most specific first (timeouts before connection
#: errors: ``aiohttp.ServerTimeoutError`` is both; a certificate and DNS before any other
#: connector error), each with what it tells a person: ``{where}`` is the request's host and
#: port, ``{host}`` its host, ``{reason}`` the lower layer's own words (the OS's, OpenSSL's).
_EXCEPTIONS: Final[tuple[tuple[type[BaseException], type[TransportError], str], ...]] = (
    (aiohttp.ConnectionTimeoutError, RequestTimeout, "timed out connecting to {where}"),
    (TimeoutError, RequestTimeout, "timed out: no complete answer within {timeout:g} s"),
    (aiohttp.ClientPayloadError, TransportError, "the connection to {where} broke mid-body"),
    (aiohttp.ServerDisconnectedError, TransportError, "{where} closed the connection"),
    (
        aiohttp.ClientConnectorCertificateError,
        TransportError,
        "the TLS certificate of {where} was not accepted ({reason})",
    ),
    (aiohttp.ClientSSLError, TransportError, "the TLS handshake with {where} failed ({reason})"),
    (aiohttp.ClientConnectorDNSError, TransportError, "cannot resolve {host} (DNS: {reason})"),
    (aiohttp.ClientConnectorError, TransportError, "cannot connect to {where} ({reason})"),
    (aiohttp.ClientResponseError, TransportError, "{where} sent no valid HTTP answer"),
    (aiohttp.ClientError, TransportError, "the request to {where} failed ({reason})"),
    (OSError, TransportError, "the connection to {where} failed ({reason})"),
    # aiohttp refuses, at send time, a header or URL that HTTP forbids (a control character)
    # with a ValueError (a UnicodeError for what it cannot encode): the request never left.
    (
        ValueError,
        TransportError,
        "the request could not be sent (a header or the URL holds what HTTP forbids)",
    ),
)
_TRANSLATED: Final = tuple(kind for kind, _, _ in _EXCEPTIONS)
#: The lower layer's own words are cut to this length.
_REASON_LIMIT: Final = 200


def translate(exc: BaseException, vendor: str, timeout: float, url: str = "") -> TransportError:
    """The error-tree error for a lower-layer exception (one of ``_EXCEPTIONS``) of a request
    to ``url``, saying what happened to a person: refused, DNS, TLS, timeout, with the host."""
    for kind, error, what in _EXCEPTIONS:
        if isinstance(exc, kind):
            if kind is aiohttp.ClientConnectorError and _errno(exc) == errno.ECONNREFUSED:
                what = "connection refused by {where} (is anything listening there?)"
            host, where = _where(url)
            text = what.format(where=where, host=host, reason=_reason(exc), timeout=timeout)
            return error(f"{vendor}: {text}")
    raise AssertionError(f"untranslated {type(exc)!r}")  # pragma: no cover


def _where(url: str) -> tuple[str, str]:
    """``(host, host:port)`` of a URL, for messages."""
    try:
        parsed = yarl.URL(url)
        host = parsed.host or "the server"
        return host, f"{host}:{parsed.port}" if parsed.port else host
    except (ValueError, TypeError):
        return "the server", "the server"


def _errno(exc: BaseException) -> int | None:
    os_error = getattr(exc, "os_error", None)
    return getattr(os_error, "errno", None)


def _reason(exc: BaseException) -> str:
    """The lower layer's own words for ``exc``: a certificate's verification message, the OS's
    error text, else the exception's class name; cleaned and cut."""
    certificate = getattr(exc, "certificate_error", None)
    os_error = getattr(exc, "os_error", None)
    text = (
        getattr(certificate, "verify_message", None)
        or getattr(os_error, "reason", None)
        or getattr(os_error, "strerror", None)
        or (str(os_error) if os_error is not None else None)
        or (exc.strerror if isinstance(exc, OSError) else None)
        or type(exc).__name__
    )
    return clean(str(text))[:_REASON_LIMIT]


class AiohttpDriver:
    """Sends requests over one aiohttp session; see the module docstring."""

    def __init__(
        self,
        *,
        timeout: float,
        max_concurrency: int,
        max_per_host: int | None,
        verify_tls: bool | ssl.SSLContext = True,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._timeout = timeout
        self._limit = max_concurrency
        self._limit_per_host = max_per_host or 0
        self._verify: bool | ssl.SSLContext = verify_tls
        self._session = session
        self._owns_session = session is None

    async def open(self) -> None:
        if self._session is None or (self._owns_session and self._session.closed):
            connector = aiohttp.TCPConnector(
                limit=self._limit, limit_per_host=self._limit_per_host, ssl=self._verify
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                # The transport bounds each attempt with one deadline; this only bounds
                # connecting, which that deadline would otherwise also cover.
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout),
                trust_env=False,
            )
            # aiohttp quietly resends an idempotent request once when a kept-alive connection
            # turns out dead (PITFALLS.md), which would break "retries=N: at most N+1
            # attempts". Its own test utilities switch that off the same way.
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            session, self._session = self._session, None
            await session.close()

    @property
    def closed(self) -> bool:
        return self._session is None or self._session.closed

    async def send(self, request: Request, *, vendor: str, limit: int) -> Response:
        session = self._session
        if session is None or session.closed:
            raise TransportError(f"{vendor}: {CLOSED}")
        outcome: Response | PipestatusError
        try:
            outcome = await _exchange(session, request, vendor, limit, self._verify)
        except _TRANSLATED as exc:
            outcome = translate(exc, vendor, self._timeout, request.url)
        # Raised here, after the except block and outside the frames that held aiohttp's
        # response (whose request_info carries the credentials): no context, no such local.
        if isinstance(outcome, Response):
            return outcome
        raise outcome from None


async def _exchange(
    session: aiohttp.ClientSession,
    request: Request,
    vendor: str,
    limit: int,
    verify: bool | ssl.SSLContext,
) -> Response | ResponseError:
    """One request and its answer, the body read under the cap: a ``Response``, or the
    ``ResponseError`` of a 2xx over the cap (returned, for :meth:`AiohttpDriver.send` to
    raise). aiohttp's own exceptions propagate, for ``send`` to translate."""
    async with session.request(
        request.method,
        # Already percent-encoded: no re-quoting, no dot-folding.
        yarl.URL(request.target, encoded=True),
        data=request.body,
        headers=request.headers,
        allow_redirects=False,
        raise_for_status=False,  # a caller's session may say otherwise: statuses are ours
        ssl=verify,
    ) as resp:
        status = resp.status
        headers = resp.headers  # case-insensitive: lower-case lookups find them
        if status in REDIRECTS and "Location" in headers:
            body: bytes | ResponseError = b""
        else:
            ok = 200 <= status < 300
            # An error body is only read far enough to find the vendor's code and message;
            # a 2xx over the cap is a ResponseError.
            cap = limit if ok else ERROR_BODY_LIMIT
            length = resp.content_length
            if length is not None and length <= cap and "Content-Encoding" not in headers:
                # Announced, under the cap and not inflated: aiohttp reads no more than
                # Content-Length, so one call reads it all.
                body = await resp.read()
            else:
                body = await _read_capped(resp, vendor, ok=ok, limit=cap)
        if isinstance(body, ResponseError):
            return body
        return Response(
            status=status, headers=headers, body=body, vendor=vendor, reason=resp.reason
        )


async def _read_capped(
    resp: aiohttp.ClientResponse, vendor: str, *, ok: bool, limit: int
) -> bytes | ResponseError:
    """The body in chunks, holding no more than ``limit`` bytes (a streamed or compressed body
    can outgrow what it announced): past it, a 2xx is a ResponseError (returned) and an error
    body is cut."""
    if ok and resp.content_length is not None and resp.content_length > limit:
        return ResponseError(
            f"body of {resp.content_length} bytes is over the {limit}-byte cap", vendor=vendor
        )
    buffer = bytearray()
    async for chunk in resp.content.iter_chunked(_CHUNK):
        if len(buffer) + len(chunk) > limit:
            if ok:
                return ResponseError(f"body is over the {limit}-byte cap", vendor=vendor)
            buffer += chunk[: limit - len(buffer)]
            break
        buffer += chunk
    return bytes(buffer)
