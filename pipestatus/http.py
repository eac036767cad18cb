"""The transport: the one module that touches aiohttp's client.

Every request of every vendor goes through :class:`Transport`, so its rules hold everywhere:

* one ``aiohttp.ClientSession`` (the client's own, or one the caller owns and closes);
* ``timeout`` bounds each attempt as a whole (connect, redirects, the whole body);
* retries with exponential backoff and full jitter for 5xx, 429, connection errors and
  timeouts; ``Retry-After`` (seconds or HTTP date) honoured up to ``max_retry_wait``, beyond
  which ``RateLimitedError`` is raised at once;
* a body cap, checked against ``Content-Length`` and while streaming;
* redirects decided here (``allow_redirects=False``): same-origin hops are followed, a
  cross-origin one is refused, so a token never leaves its origin;
* one concurrency limit for everything, and an optional one per host;
* every aiohttp, OS and timeout exception translated through one table into the error tree.

Tokens live in :class:`Auth` objects only; they never reach a repr, a log line, an exception or
a URL. Log lines (DEBUG) carry the method, path, status, attempt and elapsed time, no headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import math
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode, urljoin, urlsplit

import aiohttp
import attrs
import yarl

from pipestatus._version import __version__
from pipestatus.errors import (
    APIError,
    AuthError,
    PipestatusError,
    RateLimitedError,
    RequestTimeout,
    ResponseError,
    ServerError,
    TransportError,
    api_error,
)

__all__ = [
    "Auth",
    "Endpoint",
    "Response",
    "Session",
    "TokenProvider",
    "Transport",
    "Validators",
    "parse_error_body",
    "parse_retry_after",
]

logger = logging.getLogger(__name__)

TokenProvider = Callable[[], Awaitable[str]]
#: The session type a caller may hand to ``Client(session=...)``.
Session = aiohttp.ClientSession

USER_AGENT: Final = f"pipestatus/{__version__}"
MAX_REDIRECTS: Final = 5
#: Error bodies are read only this far: enough for a vendor's code and message.
ERROR_BODY_LIMIT: Final = 64 * 1024
_CHUNK: Final = 64 * 1024
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})


def origin_of(url: str) -> str:
    """``scheme://host:port`` of a URL, with the default port made explicit.

    Raises ``ValueError`` for a URL that cannot be split or has an invalid port: such a URL is
    nobody's origin, least of all the configured one.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme, 0)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def _has_control(text: str) -> bool:
    return any(ord(char) < 0x20 or ord(char) == 0x7F for char in text)


class Auth:
    """A token for one header: a string, or an async callable for tokens that expire.

    With a callable, the token is fetched once and reused; a 401 makes one fresh call.
    """

    __slots__ = ("_lock", "_provider", "_token", "header")

    def __init__(self, header: str, token: str | TokenProvider) -> None:
        self.header = header
        self._lock = asyncio.Lock()
        self._token: str | None
        self._provider: TokenProvider | None
        if isinstance(token, str):
            if not token.strip():
                raise ValueError("token must not be empty")
            if _has_control(token):
                raise ValueError("token must not contain control characters (CR, LF, ...)")
            self._token, self._provider = token, None
        elif callable(token):
            self._token, self._provider = None, token
        else:
            raise TypeError(f"token must be a string or an async callable, not {type(token)!r}")

    @property
    def refreshable(self) -> bool:
        return self._provider is not None

    async def get(self) -> str:
        if self._token is not None:
            return self._token
        async with self._lock:
            if self._token is None:
                self._token = await self._fetch()
            return self._token

    async def refresh(self, stale: str) -> str:
        """A fresh token, unless another request already replaced ``stale``."""
        async with self._lock:
            if self._token == stale or self._token is None:
                self._token = await self._fetch()
            return self._token

    async def _fetch(self) -> str:
        assert self._provider is not None
        try:
            token = await self._provider()
        except Exception as exc:  # noqa: BLE001 - the provider is user code; say it failed
            raise PipestatusError(
                f"the token provider for {self.header} failed: {type(exc).__name__}"
            ) from None
        if not isinstance(token, str) or not token.strip():  # type: ignore[redundant-expr]
            raise PipestatusError(f"the token provider for {self.header} returned no token")
        if _has_control(token):
            raise PipestatusError(
                f"the token provider for {self.header} returned control characters"
            )
        return token

    def __repr__(self) -> str:
        kind = "provider" if self._provider else "static"
        return f"Auth(header={self.header!r}, token=<{kind}, hidden>)"


@attrs.frozen(kw_only=True)
class Endpoint:
    """Where one adapter sends its requests: the vendor, base URL, origin and auth."""

    vendor: str
    base_url: str
    auth: Auth = attrs.field(repr=False, eq=False)
    origin: str = attrs.field(init=False, repr=False, eq=False)

    @origin.default
    def _origin(self) -> str:
        return origin_of(self.base_url)

    @classmethod
    def create(cls, vendor: str, base_url: str, auth: Auth) -> Endpoint:
        """Validate ``base_url``: http(s), a host, no credentials, query or fragment."""
        if not isinstance(base_url, str):
            raise TypeError("base URL must be a string")
        parts = urlsplit(base_url.strip())
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base URL must be http(s)://host[:port][/prefix], got {base_url!r}")
        if parts.username is not None or parts.password is not None:
            raise ValueError("base URL must not carry credentials: pass token= instead")
        if parts.query or parts.fragment:
            raise ValueError("base URL must not have a query or fragment")
        try:
            _ = parts.port
        except ValueError:
            raise ValueError(f"base URL has an invalid port: {base_url!r}") from None
        try:
            # What the socket layer will do with the host: IDNA-encode it (empty labels fail).
            parts.hostname.encode("idna")
        except (ValueError, UnicodeError):
            raise ValueError(f"base URL has an invalid host: {base_url!r}") from None
        normalized = f"{parts.scheme.lower()}://{parts.netloc}{parts.path.rstrip('/')}"
        return cls(vendor=vendor, base_url=normalized, auth=auth)


@attrs.frozen
class Validators:
    """What a conditional request sends back: the last ``ETag`` and ``Last-Modified``."""

    etag: str | None = None
    last_modified: str | None = None

    def __bool__(self) -> bool:
        return bool(self.etag or self.last_modified)


@attrs.frozen(kw_only=True)
class Response:
    """A usable answer: a 2xx (or a 304 to a conditional request)."""

    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    vendor: str
    reason: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def validators(self) -> Validators:
        return Validators(self.headers.get("etag"), self.headers.get("last-modified"))

    def json(self) -> Any:
        """The decoded body, or ``ResponseError`` when it is not JSON."""
        try:
            return json.loads(self.body)
        except RecursionError:
            reason = "JSON nested too deeply"
        except (ValueError, UnicodeDecodeError) as exc:
            reason = f"invalid JSON ({exc})" if self.body.strip() else "empty body, JSON expected"
        raise ResponseError(reason[:300], vendor=self.vendor, path=None) from None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), or ``None`` if unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def parse_error_body(body: bytes) -> tuple[str | None, str | None]:
    """A vendor's error ``(code, message)``: Huawei ``error_code``/``error_msg``, Yunxiao
    ``errorCode``/``errorMessage`` or ``code``/``message``; ``(None, None)`` for HTML or noise."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        data = data["error"]  # some Huawei services nest it
    if not isinstance(data, dict):
        return None, None

    def pick(*keys: str) -> str | None:
        for key in keys:
            value = data.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)[:500]
        return None

    return pick("error_code", "errorCode", "code"), pick(
        "error_msg", "errorMessage", "message", "msg"
    )


def _hide(text: str | None, token: str) -> str | None:
    return text.replace(token, "<hidden>") if text and token in text else text


class _Redirect(Exception):
    def __init__(self, url: str, status: int) -> None:
        self.url, self.status = url, status


#: Lower-layer exceptions to the error tree, most specific first (timeouts before connection
#: errors: ``aiohttp.ServerTimeoutError`` is both).
_EXCEPTIONS: Final[tuple[tuple[type[BaseException], type[TransportError], str], ...]] = (
    (TimeoutError, RequestTimeout, "timed out"),
    (aiohttp.ClientPayloadError, TransportError, "the connection broke mid-body"),
    (aiohttp.ServerDisconnectedError, TransportError, "the server closed the connection"),
    (aiohttp.ClientConnectorError, TransportError, "cannot connect"),
    (aiohttp.ClientResponseError, TransportError, "not a valid HTTP answer"),
    (aiohttp.ClientError, TransportError, "request failed"),
    (OSError, TransportError, "connection failed"),
)


def _translate(exc: BaseException, vendor: str, timeout: float) -> TransportError:
    for kind, error, what in _EXCEPTIONS:
        if isinstance(exc, kind):
            if error is RequestTimeout:
                return RequestTimeout(f"{vendor}: {what}: no complete answer within {timeout:g} s")
            return error(f"{vendor}: {what} ({type(exc).__name__})")
    raise AssertionError(f"untranslated {type(exc)!r}")  # pragma: no cover


_TRANSLATED: Final = tuple(kind for kind, _, _ in _EXCEPTIONS)


class Transport:
    """Sends requests for every adapter of one ``Client``; see the module docstring."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        max_retry_wait: float = 60.0,
        max_body_bytes: int = 16 * 1024 * 1024,
        max_concurrency: int = 64,
        max_per_host: int | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        verify_tls: bool | ssl.SSLContext = True,
        session: aiohttp.ClientSession | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ValueError("timeout must be a positive number of seconds")
        if retries < 0:
            raise ValueError("retries must be >= 0")
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        if max_per_host is not None and max_per_host < 1:
            raise ValueError("max_per_host must be >= 1 or None")
        if max_body_bytes < 1:
            raise ValueError("max_body_bytes must be >= 1")
        if max_retry_wait < 0 or backoff_base < 0 or backoff_max < 0:
            raise ValueError("waits must be >= 0")
        self.timeout = timeout
        self.retries = retries
        self.max_retry_wait = max_retry_wait
        self.max_body_bytes = max_body_bytes
        self.max_concurrency = max_concurrency
        self.max_per_host = max_per_host
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._verify: bool | ssl.SSLContext = verify_tls
        self._session = session
        self._owns_session = session is None
        self._open = False
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._slots = asyncio.Semaphore(max_concurrency)
        self._host_slots: dict[str, asyncio.Semaphore] = {}

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        self._open = True
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.max_concurrency,
                limit_per_host=self.max_per_host or 0,
                ssl=self._verify,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                # Each attempt is bounded by asyncio.timeout(); these only catch a stuck socket.
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self.timeout, sock_read=self.timeout
                ),
                trust_env=False,
            )
            # aiohttp quietly resends an idempotent request once when a kept-alive connection
            # turns out dead (PITFALLS.md), which would break "retries=N: at most N+1
            # attempts". Its own test utilities switch that off the same way.
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False

    async def close(self) -> None:
        self._open = False
        if self._owns_session and self._session is not None:
            session, self._session = self._session, None
            await session.close()

    @property
    def closed(self) -> bool:
        return not self._open or self._session is None or self._session.closed

    # --- one logical request --------------------------------------------------------------------

    async def request(
        self,
        endpoint: Endpoint,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
        validators: Validators | None = None,
    ) -> Response:
        """Send one request, retrying as the rules say; a 2xx or 304, else a PipestatusError."""
        if self.closed:
            raise RuntimeError("the Client is not open: use `async with Client() as client:`")
        url = endpoint.base_url + path
        if params:
            url += "?" + urlencode(params)
        body = None if json_body is None else json.dumps(json_body).encode()
        auth = endpoint.auth
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            token = await auth.get()
            started = asyncio.get_running_loop().time()
            try:
                async with self._slot(endpoint.origin):
                    response = await self._attempt(endpoint, method, url, body, token, validators)
            except TransportError as exc:
                self._log(method, url, type(exc).__name__, attempt, started)
                if attempt > self.retries:
                    raise
                await self._sleep(self._backoff(attempt))
                continue
            self._log(method, url, response.status, attempt, started)
            if 200 <= response.status < 300 or response.status == 304:
                return response
            error = self._api_error(endpoint, response, token)
            if isinstance(error, AuthError) and auth.refreshable and not refreshed:
                refreshed = True  # one fresh token and one more try, not counted as a retry
                attempt -= 1
                await auth.refresh(token)
                continue
            if not isinstance(error, RateLimitedError | ServerError):
                raise error
            # Retry-After counts on a 503 as much as on a 429.
            wait = parse_retry_after(response.headers.get("retry-after"))
            if wait is not None and wait > self.max_retry_wait:
                raise error  # not waited out: the caller decides
            if attempt > self.retries:
                raise error
            await self._sleep(wait if wait is not None else self._backoff(attempt))

    @contextlib.asynccontextmanager
    async def _slot(self, origin: str) -> AsyncIterator[None]:
        if self.max_per_host is None:
            async with self._slots:
                yield
            return
        host = self._host_slots.get(origin)
        if host is None:
            host = self._host_slots[origin] = asyncio.Semaphore(self.max_per_host)
        async with host, self._slots:
            yield

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**(attempt-1))]."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** min(attempt - 1, 30))
        return self._rng.uniform(0, ceiling)

    def _log(self, method: str, url: str, outcome: object, attempt: int, started: float) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            elapsed = asyncio.get_running_loop().time() - started
            parts = urlsplit(url)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            logger.debug(
                "%s %s -> %s (attempt %d, %.3f s)", method, target, outcome, attempt, elapsed
            )

    def _api_error(self, endpoint: Endpoint, response: Response, token: str) -> APIError:
        code, message = parse_error_body(response.body)
        if response.status in _REDIRECTS:
            message = message or f"redirect without a usable Location ({response.status})"
        retry_after = None
        if response.status == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
        return api_error(
            response.status,
            vendor=endpoint.vendor,
            code=_hide(code, token),
            # A server that echoes the token must not put it into our error message.
            message=_hide(message or response.reason, token),
            retry_after=retry_after,
        )

    # --- one attempt: redirects, the body, all within the timeout -------------------------------

    async def _attempt(
        self,
        endpoint: Endpoint,
        method: str,
        url: str,
        body: bytes | None,
        token: str,
        validators: Validators | None,
    ) -> Response:
        try:
            async with asyncio.timeout(self.timeout):
                hops = 0
                while True:
                    try:
                        return await self._send(endpoint, method, url, body, token, validators)
                    except _Redirect as hop:
                        hops += 1
                        if hops > MAX_REDIRECTS:
                            raise APIError(
                                status=hop.status,
                                vendor=endpoint.vendor,
                                message="too many redirects",
                            ) from None
                        try:
                            target = urljoin(url, hop.url)
                            target_origin = origin_of(target)
                            yarl.URL(target, encoded=True).raw_path  # noqa: B018 - validates
                        except ValueError:
                            raise APIError(
                                status=hop.status,
                                vendor=endpoint.vendor,
                                message="redirect with an unusable Location refused",
                            ) from None
                        if target_origin != endpoint.origin:
                            raise APIError(
                                status=hop.status,
                                vendor=endpoint.vendor,
                                message=f"redirect to another origin refused: {target_origin}",
                            ) from None
                        if hop.status == 303 or (hop.status in (301, 302) and method == "POST"):
                            method, body = "GET", None
                        url = target
        except _TRANSLATED as exc:
            raise _translate(exc, endpoint.vendor, self.timeout) from None

    async def _send(
        self,
        endpoint: Endpoint,
        method: str,
        url: str,
        body: bytes | None,
        token: str,
        validators: Validators | None,
    ) -> Response:
        assert self._session is not None
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        # Only ever to the configured origin: _attempt refuses every cross-origin hop before
        # it gets here, and this check holds the line should that ever change.
        if url.startswith(endpoint.base_url) or origin_of(url) == endpoint.origin:
            headers[endpoint.auth.header] = token
        if body is not None:
            headers["Content-Type"] = "application/json"
        if validators and method == "GET":
            if validators.etag:
                headers["If-None-Match"] = validators.etag
            if validators.last_modified:
                headers["If-Modified-Since"] = validators.last_modified
        async with self._session.request(
            method,
            yarl.URL(url, encoded=True),  # already percent-encoded: no re-quoting, no dot-folding
            data=body,
            headers=headers,
            allow_redirects=False,
            raise_for_status=False,  # a caller's session may say otherwise: statuses are ours
            ssl=self._verify,
        ) as resp:
            location = resp.headers.get("Location")
            if resp.status in _REDIRECTS and location:
                raise _Redirect(location, resp.status)
            ok = 200 <= resp.status < 300
            data = await self._read(resp, endpoint.vendor, strict=ok)
            return Response(
                status=resp.status,
                headers={key.lower(): value for key, value in resp.headers.items()},
                body=data,
                vendor=endpoint.vendor,
                reason=resp.reason,
            )

    async def _read(self, resp: aiohttp.ClientResponse, vendor: str, *, strict: bool) -> bytes:
        """The body, holding no more than the cap: a 2xx over the cap is a ResponseError; an
        error body is only read far enough to find the vendor's code and message."""
        limit = self.max_body_bytes if strict else ERROR_BODY_LIMIT
        if strict and resp.content_length is not None and resp.content_length > limit:
            raise ResponseError(
                f"body of {resp.content_length} bytes is over the {limit}-byte cap", vendor=vendor
            )
        buffer = bytearray()
        async for chunk in resp.content.iter_chunked(_CHUNK):
            if len(buffer) + len(chunk) > limit:
                if strict:
                    raise ResponseError(f"body is over the {limit}-byte cap", vendor=vendor)
                buffer += chunk[: limit - len(buffer)]
                break
            buffer += chunk
        return bytes(buffer)
