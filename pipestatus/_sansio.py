"""The transport's decisions, with no networking code at all.

Requests and responses are plain values here, and every rule the transport applies is a pure
function over them: where a request goes (:class:`Endpoint`), what a conditional request sends
back (:class:`Validators`), how long ``Retry-After`` asks to wait, whether to retry and after how
long (:func:`retry_delay`), where a redirect may lead (:func:`follow_redirect`), and which error
a non-2xx answer is (:func:`api_error_for`). The async loop that applies them is
``pipestatus._transport``; the one module that talks to aiohttp is ``pipestatus.http``.

Nothing here imports aiohttp: vendor modules depend on :class:`Sender`, a small protocol, so
their parse functions and adapters load no network library.
"""

from __future__ import annotations

import email.utils
import json
import math
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar
from urllib.parse import urljoin, urlsplit

import attrs

from pipestatus._safe import clean
from pipestatus.errors import (
    APIError,
    PipestatusError,
    RateLimitedError,
    ResponseError,
    ServerError,
    TransportError,
    api_error,
)

if TYPE_CHECKING:
    from pipestatus.auth import Auth

__all__ = [
    "ERROR_BODY_LIMIT",
    "MAX_REDIRECTS",
    "MAX_VALIDATOR",
    "REDIRECTS",
    "Endpoint",
    "ErrorDecoder",
    "RetryHint",
    "Request",
    "Response",
    "Sealed",
    "Sender",
    "Validators",
    "api_error_for",
    "backoff",
    "check_base_url",
    "follow_redirect",
    "has_control",
    "looks_like_html",
    "origin_of",
    "parse_retry_after",
    "retry_delay",
    "sendable",
]

MAX_REDIRECTS: Final = 5
#: Error bodies are read only this far: enough for a vendor's code and message.
ERROR_BODY_LIMIT: Final = 64 * 1024
REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
#: A vendor's code or message is cut to this length (after secrets are hidden).
MESSAGE_LIMIT: Final = 500
#: The longest ``ETag`` or ``Last-Modified`` kept to send back: an entity tag is a short quoted
#: string and a date is 29 characters, while a gateway refuses a request whose headers are too
#: large (a server that sent a 6 KB ``ETag`` would have every later request refused).
MAX_VALIDATOR: Final = 512

#: A vendor's error body -> ``(code, message)``; ``(None, None)`` when it holds neither.
ErrorDecoder = Callable[[bytes], tuple[str | None, str | None]]
#: A 429's body -> the seconds the vendor says to wait there, or ``None``.
RetryHint = Callable[[bytes], float | None]

T = TypeVar("T")


class Sealed(Generic[T]):
    """A value that must not show (a request body holding a password, a rejected token): its
    ``repr`` is ``<hidden>``, so a traceback frame that holds it (an error reporter records
    frames' locals by their ``repr``) or a log line shows nothing of it."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<hidden>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sealed) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)


def _headers_repr(headers: Mapping[str, str]) -> str:
    # Names only: the values hold credentials (a token, a signature, a security token).
    return f"<headers {', '.join(headers)}>"


def _body_repr(body: bytes | None) -> str:
    # A request body may hold a password, an answer's an echoed token: its size only.
    return "None" if body is None else f"<{len(body)} bytes>"


#: What an HTML page where JSON belongs most often means.
HTML_HINT: Final = (
    "is the endpoint the API's address? a web console's or a login page's address answers HTML"
)


def looks_like_html(body: bytes, content_type: str | None) -> bool:
    """Whether an answer is a web page: an HTML content type, or a body that starts like one."""
    if content_type and "html" in content_type.lower():
        return True
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def sendable(value: str | None) -> str | None:
    """``value`` if it can be sent back in a request header (``If-None-Match``,
    ``If-Modified-Since``): printable ASCII of 1 to :data:`MAX_VALIDATOR` characters; else
    ``None``. aiohttp reads control characters in a response header but refuses them in a
    request, at send time; a non-ASCII value would be sent as bytes the server never sent."""
    if value and len(value) <= MAX_VALIDATOR and value.isascii() and value.isprintable():
        return value
    return None


def has_control(text: str) -> bool:
    """True if ``text`` holds a C0 control character or DEL (never valid in a header value)."""
    return any(ord(char) < 0x20 or ord(char) == 0x7F for char in text)


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


def check_base_url(base_url: object) -> str:
    """A base URL made canonical: http(s), a host, no credentials, query or fragment, no
    trailing slash. Raises ``TypeError``/``ValueError`` naming what is wrong."""
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
    return f"{parts.scheme.lower()}://{parts.netloc}{parts.path.rstrip('/')}"


@attrs.frozen(kw_only=True)
class Endpoint:
    """Where one adapter sends its requests: the vendor, its base URL and origin, the auth that
    signs or carries its credentials, and the decoder of its error bodies."""

    vendor: str
    base_url: str
    auth: Auth = attrs.field(repr=False, eq=False)
    decode_error: ErrorDecoder = attrs.field(repr=False, eq=False)
    #: Reads a 429's body for the wait when ``Retry-After`` is missing (``None``: never).
    retry_hint: RetryHint | None = attrs.field(default=None, repr=False, eq=False)
    origin: str = attrs.field(init=False, repr=False, eq=False)

    @origin.default
    def _origin(self) -> str:
        return origin_of(self.base_url)

    @classmethod
    def create(
        cls,
        vendor: str,
        base_url: object,
        auth: Auth,
        decode_error: ErrorDecoder,
        retry_hint: RetryHint | None = None,
    ) -> Endpoint:
        """An endpoint at a validated base URL (see :func:`check_base_url`)."""
        return cls(
            vendor=vendor,
            base_url=check_base_url(base_url),
            auth=auth,
            decode_error=decode_error,
            retry_hint=retry_hint,
        )


@attrs.frozen
class Validators:
    """What a conditional request sends back: the last ``ETag`` and ``Last-Modified``, each
    only if it can be sent (:func:`sendable`)."""

    etag: str | None = attrs.field(default=None, converter=sendable)
    last_modified: str | None = attrs.field(default=None, converter=sendable)

    def __bool__(self) -> bool:
        return bool(self.etag or self.last_modified)


@attrs.frozen(kw_only=True)
class Request:
    """One HTTP request as a value. ``url`` has no query; ``query`` is already encoded (what
    goes after ``?``, or ``""``); ``headers`` are final once auth has seen them. Its ``repr``
    names the headers and sizes the body, never shows their values."""

    method: str
    url: str
    query: str = ""
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=_headers_repr)
    body: bytes | None = attrs.field(default=None, repr=_body_repr)

    @property
    def target(self) -> str:
        """The URL as sent: ``url`` plus ``?query`` when there is one."""
        return f"{self.url}?{self.query}" if self.query else self.url

    def with_headers(self, extra: Mapping[str, str]) -> Request:
        """The same request with ``extra`` headers added (or replaced)."""
        # Built directly: attrs.evolve re-reads the class's fields on every call, and this runs
        # once per attempt.
        return Request(
            method=self.method,
            url=self.url,
            query=self.query,
            headers={**self.headers, **extra},
            body=self.body,
        )


@attrs.frozen(kw_only=True)
class Response:
    """An answer: status, headers and the body (capped); for a usable one, a 2xx or a 304 to a
    conditional request. Headers are looked up by lower-case name: the driver hands over
    aiohttp's case-insensitive view, a test a dict with lower-case keys."""

    status: int
    headers: Mapping[str, str] = attrs.field(repr=_headers_repr)
    body: bytes = attrs.field(repr=_body_repr)
    vendor: str
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 or self.status == 304

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def validators(self) -> Validators:
        return Validators(self.headers.get("etag"), self.headers.get("last-modified"))

    def json(self) -> Any:
        """The decoded body, or ``ResponseError`` when it is not JSON (with a hint when it is
        an HTML page: an endpoint pasted from a browser's address bar answers one)."""
        try:
            return json.loads(self.body)
        except RecursionError:
            reason = "JSON nested too deeply"
        except (ValueError, UnicodeDecodeError) as exc:
            if looks_like_html(self.body, self.headers.get("content-type")):
                reason = f"invalid JSON: the answer is an HTML page ({HTML_HINT})"
            elif self.body.strip():
                reason = f"invalid JSON ({exc})"
            else:
                reason = "empty body, JSON expected"
        raise ResponseError(reason[:300], vendor=self.vendor, path=None)


class Sender(Protocol):
    """What a vendor adapter sends its requests through (the client's transport)."""

    @property
    def max_concurrency(self) -> int: ...

    @property
    def timeout(self) -> float: ...

    @property
    def closed(self) -> bool: ...

    async def request(
        self,
        endpoint: Endpoint,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
        validators: Validators | None = None,
    ) -> Response: ...


# --- decisions -----------------------------------------------------------------------------------


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


def backoff(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter: uniform in ``[0, min(cap, base * 2**(attempt-1))]``."""
    return rng.uniform(0, min(cap, base * 2 ** min(attempt - 1, 30)))


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How many attempts a request gets and how long it waits between them."""

    retries: int = 3
    max_retry_wait: float = 60.0
    backoff_base: float = 0.5
    backoff_max: float = 30.0


def retry_delay(
    error: PipestatusError,
    attempt: int,
    policy: RetryPolicy,
    rng: random.Random,
    *,
    retry_after: float | None = None,
) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or ``None`` when ``error`` is final.

    Retried: connection errors and timeouts, 5xx and 429, at most ``policy.retries`` times. A
    ``Retry-After`` (on a 429 or a 5xx) is the wait, unless it is longer than
    ``max_retry_wait``: then the error is final at once and the caller decides.
    """
    if attempt > policy.retries:
        return None
    if isinstance(error, TransportError):
        return backoff(attempt, base=policy.backoff_base, cap=policy.backoff_max, rng=rng)
    if not isinstance(error, RateLimitedError | ServerError):
        return None
    if retry_after is not None:
        return None if retry_after > policy.max_retry_wait else retry_after
    return backoff(attempt, base=policy.backoff_base, cap=policy.backoff_max, rng=rng)


def follow_redirect(
    request: Request, status: int, location: str, origin: str, *, vendor: str
) -> Request:
    """The next hop of a redirect, or ``APIError`` when it may not be followed: a Location
    that cannot be used, or one on another origin (credentials never leave home).

    303, and 301/302 to a POST, become a GET without a body, as browsers do.
    """
    unusable = False
    try:
        target = urljoin(request.target, location)
        parts = urlsplit(target)
        target_origin = origin_of(target)
    except ValueError:
        unusable = True  # raised below, after the except block: no context
    if (
        unusable
        or not target.isascii()
        or has_control(target)
        or any(char.isspace() for char in target)
    ):
        raise APIError(
            status=status, vendor=vendor, message="redirect with an unusable Location refused"
        ) from None
    if target_origin != origin:
        raise APIError(
            status=status,
            vendor=vendor,
            message=f"redirect to another origin refused: {target_origin}",
        )
    method, body = request.method, request.body
    headers = dict(request.headers)
    if status == 303 or (status in (301, 302) and method == "POST"):
        method, body = "GET", None
        headers.pop("Content-Type", None)
    url = target.split("?", 1)[0].split("#", 1)[0]
    return Request(method=method, url=url, query=parts.query, headers=headers, body=body)


def _cut(text: str | None) -> str | None:
    return text[:MESSAGE_LIMIT] if text else text


def api_error_for(response: Response, endpoint: Endpoint, hide: Callable[[str], str]) -> APIError:
    """The ``APIError`` for a non-2xx answer: the vendor's code and message from its error body
    (the HTTP reason when it has none), with every secret ``hide`` knows hidden, every unsafe
    code point replaced (:func:`pipestatus._safe.clean`), then cut."""
    code, message = endpoint.decode_error(response.body)
    if response.status in REDIRECTS:
        message = message or f"redirect without a usable Location ({response.status})"
    retry_after = None
    if response.status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if retry_after is None and endpoint.retry_hint is not None:
            retry_after = endpoint.retry_hint(response.body)  # the vendor says so in its body
    message = message or response.reason
    return api_error(
        response.status,
        vendor=endpoint.vendor,
        # A server that echoes a credential must not put it into our error: hide, then cut,
        # so a secret straddling the cut cannot leak half of itself; and its text may hold
        # anything (an ESC, a line break that would forge a log line): cleaned, here, once.
        code=_vendor_text(code, hide),
        message=_vendor_text(message, hide),
        retry_after=retry_after,
    )


def _vendor_text(text: str | None, hide: Callable[[str], str]) -> str | None:
    """Vendor text as it enters an error: secrets hidden, unsafe code points replaced, cut."""
    return _cut(clean(hide(text))) if text else None
