"""The transport: every request of every vendor, with the rules of ``pipestatus._sansio``.

:class:`Transport` owns the loop around one logical request (attempts, the retry decision and its
wait, the 401 refresh, redirects within one attempt, the concurrency limits) and knows no
network library: it hands each attempt's final request to a :class:`Driver` (``pipestatus.http``
is the aiohttp one) and gets back a :class:`~pipestatus._sansio.Response` or a
``TransportError``. So the rules hold for every vendor at once:

* ``timeout`` bounds each attempt as a whole (redirect hops and the whole body included): one
  deadline per attempt, all of them behind one timer (:class:`Deadlines`);
* retries with exponential backoff and full jitter for 5xx, 429, connection errors and timeouts;
  ``Retry-After`` honoured up to ``max_retry_wait``, beyond which the error is raised at once;
* redirects only within the configured origin, so credentials never leave home;
* credentials (:class:`~pipestatus.auth.Auth`) applied on every attempt and every hop, after
  every other header is final, and refreshed once after a 401 when they can be;
* one concurrency limit for everything, and an optional one per origin.

Log lines (DEBUG) carry the method, path, status, attempt and elapsed time, never a header.
An optional ``on_attempt`` callback hears the same facts of every attempt as an
:class:`Attempt` (the service counts requests, retries and 429s with it).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import json
import logging
import math
import random
from collections.abc import Awaitable, Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, Final, Protocol
from urllib.parse import urlencode

import attrs

from pipestatus._sansio import (
    MAX_REDIRECTS,
    REDIRECTS,
    Endpoint,
    Request,
    Response,
    RetryPolicy,
    Sealed,
    Validators,
    api_error_for,
    follow_redirect,
    origin_of,
    parse_retry_after,
    retry_delay,
)
from pipestatus._version import __version__
from pipestatus.errors import (
    APIError,
    AuthError,
    RateLimitedError,
    RequestTimeout,
    TransportError,
)

__all__ = [
    "CLOSED",
    "USER_AGENT",
    "Attempt",
    "Deadline",
    "Deadlines",
    "Driver",
    "Transport",
    "under_way",
]

logger = logging.getLogger("pipestatus.http")

#: Set while a request is under way (and in the tasks it starts, such as a token fetch): a
#: request that finds the client closed then fails as a TransportError, not a usage error.
_UNDER_WAY: Final[contextvars.ContextVar[bool]] = contextvars.ContextVar(
    "pipestatus_request_under_way", default=False
)
CLOSED: Final = "the client was closed while the request was under way"


@contextlib.contextmanager
def under_way() -> Iterator[None]:
    """Marks what runs inside (and the tasks it starts) as a call under way: a request it
    makes after the client closed fails as a ``TransportError``, not as the ``RuntimeError``
    of a call made on a closed client. A poll wraps its whole fan-out in it."""
    marker = _UNDER_WAY.set(True)
    try:
        yield
    finally:
        _UNDER_WAY.reset(marker)


USER_AGENT: Final = f"pipestatus/{__version__}"


@attrs.frozen(kw_only=True)
class Attempt:
    """One attempt as ``on_attempt`` hears it: the vendor, the HTTP status (or the
    ``TransportError`` class name when no answer came), the attempt's number (2 and more are
    retries) and its seconds. No URL, no header."""

    vendor: str
    outcome: int | str
    number: int
    seconds: float


class Driver(Protocol):
    """Sends one request and returns its answer, or raises a ``PipestatusError`` (a
    ``TransportError`` when no HTTP answer came, a ``ResponseError`` for a 2xx over ``limit``).
    A redirect with a ``Location`` comes back with an empty body."""

    @property
    def closed(self) -> bool: ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def send(self, request: Request, *, vendor: str, limit: int) -> Response: ...


class Deadlines:
    """The deadlines of every attempt in flight, behind one timer.

    ``asyncio.timeout`` arms a timer per use: a heap push, and a cancelled handle that the loop
    sweeps up later. Every attempt of a transport lasts the same ``timeout``, so deadlines come
    due in the order the attempts started: a FIFO queue holds them, and one timer, armed for the
    oldest unfinished one, serves them all. An attempt costs an append and a flag; the timer
    fires about once per ``timeout`` under steady traffic, expires whatever is overdue, and
    re-arms for the next oldest. Expiry works as ``asyncio.timeout``'s does: the attempt's task
    is cancelled, and its :class:`Deadline` turns that ``CancelledError`` into a timeout unless
    someone else asked for a cancellation too.
    """

    __slots__ = ("_armed", "_loop", "_queue", "_timer", "timeout")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._loop = loop
        self.timeout = timeout
        self._queue: collections.deque[Deadline] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._armed = 0.0  # the time the timer is armed for

    def start(self) -> Deadline:
        """A deadline ``timeout`` seconds from now for the current task; use it with ``with``."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline needs a task")
        deadline = Deadline(self, self._loop.time() + self.timeout, task)
        self._queue.append(deadline)
        if self._timer is None:
            self._arm(deadline.when)
        return deadline

    def _arm(self, when: float) -> None:
        self._armed = when
        self._timer = self._loop.call_at(when, self._fire)

    def _finished(self) -> None:
        queue = self._queue
        while queue and queue[0].state is not _RUNNING:
            queue.popleft()

    def _fire(self) -> None:
        self._timer = None
        # Due: everything up to now, and up to the time the loop fired this for (it may run a
        # timer a clock tick early, as it would asyncio.timeout's).
        queue, due = self._queue, max(self._loop.time(), self._armed)
        while queue:
            head = queue[0]
            if head.state is _RUNNING:
                if head.when > due:
                    break
                head.expire()
            queue.popleft()
        if queue:
            self._arm(queue[0].when)

    def __len__(self) -> int:
        """Deadlines not yet known to have ended (some may have, behind a running one)."""
        return len(self._queue)


_RUNNING: Final = "running"
_EXPIRED: Final = "expired"
_DONE: Final = "done"


class Deadline:
    """One attempt's deadline: ``with deadlines.start() as deadline:``, then ``timed_out``.

    Leaving the block stops it. When it expired while the block ran, the ``CancelledError`` it
    caused is swallowed and ``timed_out`` is true, unless the task was also cancelled from
    elsewhere: then that cancellation goes on.
    """

    __slots__ = ("_cancelling", "_owner", "state", "task", "timed_out", "when")

    def __init__(self, owner: Deadlines, when: float, task: asyncio.Task[Any]) -> None:
        self._owner = owner
        self.when = when
        self.task = task
        self._cancelling = task.cancelling()
        self.state = _RUNNING
        self.timed_out = False

    def expire(self) -> None:
        self.state = _EXPIRED
        self.task.cancel()

    def __enter__(self) -> Deadline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        expired = self.state is _EXPIRED
        self.state = _DONE
        self._owner._finished()
        if expired and self.task.uncancel() <= self._cancelling:
            self.timed_out = exc_type is asyncio.CancelledError
            return self.timed_out
        return False


class Transport:
    """Sends requests for every adapter of one ``Client``; see the module docstring."""

    def __init__(
        self,
        driver: Driver,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        max_retry_wait: float = 60.0,
        max_body_bytes: int = 16 * 1024 * 1024,
        max_concurrency: int = 64,
        max_per_host: int | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        on_attempt: Callable[[Attempt], None] | None = None,
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
        self.driver = driver
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self.max_concurrency = max_concurrency
        self.max_per_host = max_per_host
        self.policy = RetryPolicy(
            retries=retries,
            max_retry_wait=max_retry_wait,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
        )
        self._sleep = sleep
        self.on_attempt = on_attempt
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._open = False
        # Made in open(), inside the running loop: a semaphore binds to the loop it first
        # waits in, and a client may be opened again under another asyncio.run().
        self._slots = asyncio.Semaphore(max_concurrency)
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._deadlines: Deadlines | None = None

    @property
    def retries(self) -> int:
        return self.policy.retries

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        self._slots = asyncio.Semaphore(self.max_concurrency)
        self._host_slots = {}
        # Attempts still running under an earlier open keep the deadlines they started with.
        self._deadlines = Deadlines(asyncio.get_running_loop(), self.timeout)
        await self.driver.open()
        self._open = True

    async def close(self) -> None:
        self._open = False
        await self.driver.close()

    @property
    def closed(self) -> bool:
        return not self._open or self.driver.closed

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
        """Send one request, retrying as the rules say; a 2xx or 304, else a PipestatusError.

        On a client that is not open, ``RuntimeError`` (a usage error); a request under way
        when the client closes (and any request its credentials make meanwhile) ends in a
        ``TransportError`` instead, so nothing but a ``PipestatusError`` ends a call that
        began while the client was open."""
        if not self._open or self.driver.closed:
            if _UNDER_WAY.get():
                raise TransportError(f"{endpoint.vendor}: {CLOSED}")
            raise RuntimeError("the Client is not open: use `async with Client() as client:`")
        marker = _UNDER_WAY.set(True)  # as under_way() does, without a generator per request
        try:
            return await self._request(endpoint, method, path, params, json_body, validators)
        finally:
            _UNDER_WAY.reset(marker)

    async def _request(
        self,
        endpoint: Endpoint,
        method: str,
        path: str,
        params: Mapping[str, str | int] | None,
        json_body: Any,
        validators: Validators | None,
    ) -> Response:
        # Built elsewhere, so that no frame of this one holds the encoded body as a local
        # (``json_body`` may be a Sealed body holding a password).
        request = _build(endpoint, method, path, params, json_body, validators)
        loop = asyncio.get_running_loop()
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            # Outside the concurrency limits: a token fetched here through this transport
            # never waits for a slot held by a request that waits for the token.
            await endpoint.auth.prepare(self)
            if not self._open:
                raise TransportError(f"{endpoint.vendor}: {CLOSED}")
            started = loop.time()
            try:
                response, sent = await self._attempt(endpoint, request, loop)
            except TransportError as exc:
                self._log(endpoint, request, type(exc).__name__, attempt, started)
                delay = retry_delay(exc, attempt, self.policy, self._rng)
                if delay is None:
                    raise
                await self._sleep(delay)
                continue
            self._log(endpoint, request, response.status, attempt, started)
            if response.ok:
                return response
            error = api_error_for(response, endpoint, endpoint.auth.hide)
            if (
                isinstance(error, AuthError)
                and not refreshed
                and await endpoint.auth.refresh(sent, self)
            ):
                refreshed = True  # fresh credentials and one more try, not counted as a retry
                attempt -= 1
                continue
            if isinstance(error, RateLimitedError):
                retry_after = error.retry_after  # the header's, or the vendor's body's
            else:
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            delay = retry_delay(error, attempt, self.policy, self._rng, retry_after=retry_after)
            if delay is None:
                raise error
            await self._sleep(delay)

    async def _attempt(
        self, endpoint: Endpoint, request: Request, loop: asyncio.AbstractEventLoop
    ) -> tuple[Response, Request]:
        """One attempt: its redirect hops, each with credentials applied, under one deadline
        (one timer) that starts once a slot is free and the first hop's credentials are on."""
        host = None
        if self.max_per_host is not None:
            host = self._host_slots.get(endpoint.origin)
            if host is None:
                host = self._host_slots[endpoint.origin] = asyncio.Semaphore(self.max_per_host)
            await host.acquire()
        try:
            async with self._slots:
                sent = await endpoint.auth.apply(request, self)  # the configured origin: home
                assert self._deadlines is not None  # made by open()
                hops = 0
                with self._deadlines.start():
                    while True:
                        response = await self.driver.send(
                            sent, vendor=endpoint.vendor, limit=self.max_body_bytes
                        )
                        location = response.headers.get("location")
                        if response.status not in REDIRECTS or not location:
                            return response, sent
                        hops += 1
                        if hops > MAX_REDIRECTS:
                            raise APIError(
                                status=response.status,
                                vendor=endpoint.vendor,
                                message="too many redirects",
                            )
                        request = follow_redirect(
                            request,
                            response.status,
                            location,
                            endpoint.origin,
                            vendor=endpoint.vendor,
                        )
                        # Only ever to the configured origin: follow_redirect refuses every
                        # other one, and this check holds the line should that ever change.
                        home = request.url.startswith(endpoint.base_url) or (
                            origin_of(request.url) == endpoint.origin
                        )
                        sent = await endpoint.auth.apply(request, self) if home else request
                # Only a deadline that expired gets here: it swallowed its cancellation.
        finally:
            if host is not None:
                host.release()
        raise RequestTimeout(
            f"{endpoint.vendor}: timed out: no complete answer within {self.timeout:g} s"
        )

    def _log(
        self, endpoint: Endpoint, request: Request, outcome: int | str, attempt: int, started: float
    ) -> None:
        if self.on_attempt is not None:
            elapsed = asyncio.get_running_loop().time() - started
            self.on_attempt(
                Attempt(vendor=endpoint.vendor, outcome=outcome, number=attempt, seconds=elapsed)
            )
        if logger.isEnabledFor(logging.DEBUG):
            elapsed = asyncio.get_running_loop().time() - started
            path = request.url.split("://", 1)[-1].partition("/")[2]
            query = f"?{request.query}" if request.query else ""
            logger.debug(
                "%s /%s%s -> %s (attempt %d, %.3f s)",
                request.method,
                path,
                query,
                outcome,
                attempt,
                elapsed,
            )


def _build(
    endpoint: Endpoint,
    method: str,
    path: str,
    params: Mapping[str, str | int] | None,
    json_body: Any,
    validators: Validators | None,
) -> Request:
    """The request as it goes out before credentials: JSON body (a :class:`Sealed` one
    unwrapped), conditional headers."""
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if isinstance(json_body, Sealed):
        json_body = json_body.value
    if json_body is not None:
        headers["Content-Type"] = "application/json"
    if validators and method == "GET":
        if validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
    return Request(
        method=method,
        url=endpoint.base_url + path,
        query=urlencode(params) if params else "",
        headers=headers,
        body=None if json_body is None else json.dumps(json_body).encode(),
    )
