"""The transport: every request of every vendor, with the rules of ``pipestatus._sansio``.

:class:`Transport` owns the loop around one logical request (attempts, the retry decision and its
wait, the 401 refresh, redirects within one attempt, the concurrency limits) and knows no
network library: it hands each attempt's final request to a :class:`Driver` (``pipestatus.http``
is the aiohttp one) and gets back a :class:`~pipestatus._sansio.Response` or a
``TransportError``. So the rules hold for every vendor at once:

* ``timeout`` bounds each attempt as a whole (redirect hops and the whole body included), with
  one timer per attempt;
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
import json
import logging
import math
import random
from collections.abc import Awaitable, Callable, Mapping
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
    Validators,
    api_error_for,
    follow_redirect,
    origin_of,
    parse_retry_after,
    retry_delay,
)
from pipestatus._version import __version__
from pipestatus.errors import APIError, AuthError, RequestTimeout, TransportError

__all__ = ["USER_AGENT", "Attempt", "Driver", "Transport"]

logger = logging.getLogger("pipestatus.http")

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

    @property
    def retries(self) -> int:
        return self.policy.retries

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        self._slots = asyncio.Semaphore(self.max_concurrency)
        self._host_slots = {}
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
        """Send one request, retrying as the rules say; a 2xx or 304, else a PipestatusError."""
        if self.closed:
            raise RuntimeError("the Client is not open: use `async with Client() as client:`")
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        body = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        if validators and method == "GET":
            if validators.etag:
                headers["If-None-Match"] = validators.etag
            if validators.last_modified:
                headers["If-Modified-Since"] = validators.last_modified
        request = Request(
            method=method,
            url=endpoint.base_url + path,
            query=urlencode(params) if params else "",
            headers=headers,
            body=body,
        )
        loop = asyncio.get_running_loop()
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            started = loop.time()
            try:
                response, sent = await self._attempt(endpoint, request)
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
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            delay = retry_delay(error, attempt, self.policy, self._rng, retry_after=retry_after)
            if delay is None:
                raise error
            await self._sleep(delay)

    async def _attempt(self, endpoint: Endpoint, request: Request) -> tuple[Response, Request]:
        """One attempt: its redirect hops, each with credentials applied, under one deadline."""
        if self.max_per_host is None:
            async with self._slots:
                return await self._hops(endpoint, request)
        host = self._host_slots.get(endpoint.origin)
        if host is None:
            host = self._host_slots[endpoint.origin] = asyncio.Semaphore(self.max_per_host)
        async with host, self._slots:
            return await self._hops(endpoint, request)

    async def _hops(self, endpoint: Endpoint, request: Request) -> tuple[Response, Request]:
        deadline: float | None = None
        hops = 0
        while True:
            # Only ever to the configured origin: follow_redirect refuses every other one, and
            # this check holds the line should that ever change.
            home = request.url.startswith(endpoint.base_url) or (
                origin_of(request.url) == endpoint.origin
            )
            sent = await endpoint.auth.apply(request, self) if home else request
            if deadline is None:
                deadline = asyncio.get_running_loop().time() + self.timeout
            timed_out = False
            try:
                async with asyncio.timeout_at(deadline):
                    response = await self.driver.send(
                        sent, vendor=endpoint.vendor, limit=self.max_body_bytes
                    )
            except TimeoutError:
                timed_out = True
            if timed_out:  # raised outside the except block: no context to carry along
                raise RequestTimeout(
                    f"{endpoint.vendor}: timed out: no complete answer within {self.timeout:g} s"
                ) from None
            location = response.headers.get("location")
            if response.status not in REDIRECTS or not location:
                return response, sent
            hops += 1
            if hops > MAX_REDIRECTS:
                raise APIError(
                    status=response.status, vendor=endpoint.vendor, message="too many redirects"
                )
            request = follow_redirect(
                request, response.status, location, endpoint.origin, vendor=endpoint.vendor
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
