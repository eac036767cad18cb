"""The server core: lifecycle, the request pipeline, faults and chaos, recording, concurrency.

:class:`VendorServer` is a real :mod:`aiohttp.web` server on a loopback address. It knows no
vendor: its routes are those of the dialects (:data:`pipestatus.testing.dialects.DIALECTS`, one
per registered vendor) and the services they share (``Dialect.services``: served once, through
the first dialect naming them), and each request goes through one pipeline:

1. the middleware counts it (``request_count``, ``in_flight``, ``peak_in_flight``);
2. the body is read, and the first matching fault is taken, else chaos may draw one (faults are
   matched before authentication, like a gateway in front of the vendor);
3. the request is recorded (:attr:`VendorServer.requests`, bounded by ``record_limit``);
4. a request with a header value over 4 KiB (:data:`~pipestatus.testing.hostile.MAX_HEADER`)
   is refused with a 400, as a gateway's buffers refuse it;
5. without a fault, the dialect's handler answers and the answer is written as JSON, with an
   ``ETag`` on a GET 200 (a matching ``If-None-Match`` gets ``304``); with one, the fault's
   effects run in order (:mod:`pipestatus.testing.faults`).

Closing the server cuts whatever is held (hangs, trickles, streams) instead of waiting for it.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Unpack

import attrs
from aiohttp import web

from pipestatus.testing._answers import HTML_BODY, Answer, render
from pipestatus.testing._sim import RunSource, Served
from pipestatus.testing.chaos import CHAOS_KINDS, ChaosSettings, pick_chaos
from pipestatus.testing.dialects import DIALECTS, Dialect, Pipelines
from pipestatus.testing.dialects._base import Context, Handler, Quirks, Route
from pipestatus.testing.faults import Exchange, Fault, FaultOptions, fault_from
from pipestatus.testing.hostile import MAX_HEADER

__all__ = ["RecordedRequest", "VendorServer"]


@attrs.frozen
class RecordedRequest:
    """One request as the server saw it; ``fault`` names the fault applied, if any."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  #: lower-case keys
    body: bytes
    peer: str | None
    vendor: str | None = None
    fault: str | None = None


class VendorServer(Pipelines):
    """A simulated vendor server on 127.0.0.1; use it as an async context manager.

    ``port=0`` picks a free port. ``record_limit`` bounds :attr:`requests` (oldest dropped).
    Pipelines are added per vendor (``add_repo_pipeline`` and the other typed methods, or
    :meth:`add_pipeline` by vendor key); faults with :meth:`fault` or :meth:`add_fault`.
    """

    def __init__(
        self,
        *,
        token: str = "secret-token",  # noqa: S107 - the demo token of a simulated server
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
        record_limit: int = 10_000,
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"VendorServer binds loopback addresses only, not {host!r}")
        self._token = token
        self.seed = seed
        self.host = host
        self.port = port
        self.record = record
        self.etags = True
        self.request_count = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self._chaos = ChaosSettings(kinds=CHAOS_KINDS)
        self._chaos_rng = random.Random(seed)
        self._requests: collections.deque[RecordedRequest] = collections.deque(maxlen=record_limit)
        self._faults: list[Fault] = []
        self._ids: dict[tuple[object, ...], int] = {}
        self._started = time.monotonic()
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None
        self._in_flight_changed: asyncio.Condition | None = None
        context = Context(token=token, elapsed=self._elapsed, make_id=self._make_id)
        self._dialects: dict[str, Dialect] = {
            key: dialect(context) for key, dialect in DIALECTS.items()
        }

    def __repr__(self) -> str:
        return f"<VendorServer url={self.url if self._runner else None!r} has_token=True>"

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (valid once started)."""
        if self._runner is None:
            raise RuntimeError("VendorServer is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def token(self) -> str:
        """The token every request must carry in its vendor's header."""
        return self._token

    async def start(self) -> None:
        """Bind and serve; prefer ``async with``."""
        self._closing = asyncio.Event()
        self._in_flight_changed = asyncio.Condition()
        app = web.Application(middlewares=[self._middleware])
        services: set[Route] = set()
        for dialect in self._dialects.values():
            for route in dialect.routes():
                app.router.add_route(
                    route.method, route.path, self._endpoint(dialect, route.handler)
                )
            for route in dialect.services():
                if route not in services:  # a cloud's service, shared by its dialects: once
                    services.add(route)
                    app.router.add_route(
                        route.method, route.path, self._endpoint(dialect, route.handler)
                    )
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        self._started = time.monotonic()
        self._runner = runner

    async def close(self) -> None:
        """Stop serving; hung, trickling and streaming answers are cut off."""
        if self._closing is not None:
            self._closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> VendorServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- pipelines ---------------------------------------------------------------------------

    def add_pipeline(
        self, vendor: str, ids: Sequence[str | int], run: RunSource, **options: Any
    ) -> None:
        """Serve a pipeline of the vendor registered as ``vendor``.

        ``ids`` are the pipeline's IDs in the order of the vendor spec's ``ids``; ``options``
        are the account options it lives under, named as in the vendor spec's options (a
        project, an organization), and the dialect's extras (such as ``extra_jobs``). A
        ``TypeError`` names options the dialect does not take.
        """
        self._dialect(vendor).add(ids, run, **options)

    def remove_pipeline(self, vendor: str, ids: Sequence[str | int], **options: Any) -> None:
        """Stop serving a pipeline of ``vendor`` (as if deleted): its lists leave it out and its
        endpoints answer 404 from now on."""
        self._dialect(vendor).remove(ids, **options)

    def paging(self, vendor: str, **quirks: Any) -> None:
        """Make ``vendor``'s paged lists misbehave from now on (see
        :class:`~pipestatus.testing.dialects._base.Quirks`: ``repeat_page``, ``total_delta``,
        ``empty_page``, ``stuck_log``); no keywords: behave again."""
        self._dialect(vendor).quirks = Quirks(**quirks)

    def pipelines(self, vendor: str) -> list[Served]:
        """The pipelines served for ``vendor``, in the order they were added."""
        return self._dialect(vendor).pipelines()

    def _dialect(self, vendor: str) -> Dialect:
        try:
            return self._dialects[vendor]
        except KeyError:
            raise ValueError(
                f"no simulator dialect for vendor {vendor!r} (known: {', '.join(self._dialects)})"
            ) from None

    # -- faults ------------------------------------------------------------------------------

    def fault(self, **options: Unpack[FaultOptions]) -> Fault:
        """Damage the next ``times`` matching requests (``None``: until cleared).

        Matching is by ``vendor`` key, ``pipeline`` ID (in a batch call, any ID in the request
        body) and ``path_prefix``; the first matching fault wins. Effects, in order: ``delay``
        seconds, ``hang`` (until :meth:`Fault.release` or server close), then one answer:
        ``redirect_to`` (with ``redirect_status``, default 302), ``status`` (default body an
        nginx-like HTML page; ``retry_after`` sets ``Retry-After``), ``body`` (a 200 with that
        raw body: bytes/str verbatim, anything else as JSON), ``oversize_bytes`` (a streamed
        valid-looking JSON of that size, chunked unless ``announce``), ``malformed`` (invalid
        JSON), ``truncate``/``reset`` (Content-Length larger than what is sent, then close or
        TCP reset mid-body), ``trickle`` (one byte every ``trickle`` seconds).
        ``payload_mutator`` alters the rendered JSON first; ``headers`` go on every answer.
        """
        return self.add_fault(fault_from(**options))

    def add_fault(self, fault: Fault) -> Fault:
        """Apply ``fault`` (built from :mod:`pipestatus.testing.faults`) to matching requests,
        after the faults added before it."""
        fault.attach(self._faults)
        return fault

    def clear_faults(self) -> None:
        """Withdraw every fault (hung requests stay hung until released or the server closes)."""
        self._faults.clear()

    def chaos(
        self,
        rate: float,
        seed: int = 0,
        kinds: Iterable[str] = CHAOS_KINDS,
        *,
        hang: float = 30.0,
        trickle: float = 0.05,
    ) -> None:
        """Give each request a random fault from ``kinds`` with probability ``rate`` (0: off).

        Kinds are drawn by the weights of :data:`pipestatus.testing.chaos.CHAOS`, from a
        generator seeded with ``seed``. Hangs last ``hang`` seconds, then answer normally;
        trickles send a byte every ``trickle`` seconds; 429s carry ``Retry-After`` of 0 or 1.
        """
        chosen = tuple(kinds)
        unknown = set(chosen) - set(CHAOS_KINDS)
        if unknown:
            raise ValueError(f"unknown chaos kinds: {sorted(unknown)}")
        self._chaos = ChaosSettings(rate=rate, kinds=chosen, hang=hang, trickle=trickle)
        self._chaos_rng = random.Random(seed)

    @property
    def chaos_rate(self) -> float:
        """The share of requests chaos faults (0: off); settable."""
        return self._chaos.rate

    @chaos_rate.setter
    def chaos_rate(self, value: float) -> None:
        self._chaos = attrs.evolve(self._chaos, rate=value)

    @property
    def chaos_hang(self) -> float:
        """How long a chaos hang holds a request, in seconds; settable."""
        return self._chaos.hang

    @chaos_hang.setter
    def chaos_hang(self, value: float) -> None:
        self._chaos = attrs.evolve(self._chaos, hang=value)

    @property
    def chaos_trickle(self) -> float:
        """The seconds between the bytes of a chaos trickle; settable."""
        return self._chaos.trickle

    @chaos_trickle.setter
    def chaos_trickle(self, value: float) -> None:
        self._chaos = attrs.evolve(self._chaos, trickle=value)

    # -- recording and concurrency -----------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """The recorded requests, oldest first (bounded by ``record_limit``)."""
        return list(self._requests)

    def reset_stats(self) -> None:
        """Forget recorded requests and counters (``peak_in_flight`` restarts at ``in_flight``)."""
        self._requests.clear()
        self.request_count = 0
        self.peak_in_flight = self.in_flight

    async def wait_in_flight(self, count: int) -> None:
        """Wait until at least ``count`` requests are being handled at once.

        Bound it with ``asyncio.timeout``.
        """
        cond = self._in_flight_changed
        if cond is None:
            raise RuntimeError("VendorServer is not started")
        async with cond:
            await cond.wait_for(lambda: self.in_flight >= count)

    async def _set_in_flight(self, delta: int) -> None:
        self.in_flight += delta
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        if self._in_flight_changed is not None:
            async with self._in_flight_changed:
                self._in_flight_changed.notify_all()

    # -- the request pipeline ----------------------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.request_count += 1
        await self._set_in_flight(1)
        try:
            return await handler(request)
        finally:
            await self._set_in_flight(-1)

    def _endpoint(
        self, dialect: Dialect, handler: Handler
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            return await self._serve(request, dialect, handler)

        return endpoint

    def _match(self, request: web.Request, dialect: Dialect, body: bytes) -> Fault | None:
        """The first fault matching the request (its pipelines are read only when needed)."""
        pipelines: list[str] | None = None
        for fault in self._faults:
            if fault.pipeline is not None and pipelines is None:
                pipelines = dialect.pipelines_of(request, body)
            if fault.matches(dialect.key, pipelines or (), request.path):
                return fault
        return None

    async def _serve(
        self, request: web.Request, dialect: Dialect, handler: Handler
    ) -> web.StreamResponse:
        body = await request.read()
        fault = self._match(request, dialect, body) or pick_chaos(self._chaos_rng, self._chaos)
        if fault is not None:
            fault.hit()
        if self.record:
            self._record(request, body, dialect.key, fault)
        if any(len(value) > MAX_HEADER for value in request.headers.values()):
            # A gateway in front refuses what its buffers cannot hold, before any fault.
            return web.Response(
                status=400,
                body=HTML_BODY.format(status=400, reason="Request Header Or Cookie Too Large"),
                content_type="text/html",
            )
        if fault is None:
            return render(request, await handler(request, body), etags=self.etags)
        assert self._closing is not None

        async def produce() -> Answer:
            # The exchange's request: an effect may have replaced it (another page, say).
            return await handler(exchange.request, body)

        def write(answer: Answer) -> web.StreamResponse:
            return render(exchange.request, answer, etags=self.etags)

        exchange = Exchange(request, fault, self._closing, produce, write)
        return await fault.apply(exchange)

    def _record(self, request: web.Request, body: bytes, vendor: str, fault: Fault | None) -> None:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self._requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                peer=f"{peer[0]}:{peer[1]}" if peer else None,
                vendor=vendor,
                fault=fault.name if fault is not None else None,
            )
        )

    # -- what the dialects use ---------------------------------------------------------------

    def _elapsed(self) -> float:
        return time.monotonic() - self._started

    def _make_id(self, *key: object) -> int:
        found = self._ids.get(key)
        if found is None:
            found = self._ids[key] = 10_001 + len(self._ids)
        return found
