"""The service's :mod:`aiohttp.web` application: its routes, the bearer token guard and the
headers every answer carries.

=====================  ==========================================================
``GET /``              the dashboard (:mod:`pipestatus.serve.page`)
``GET /static/NAME``   its script and stylesheet, from the package
``GET /events``        server-sent events (:mod:`pipestatus.serve.events`)
``GET /metrics``       Prometheus text format (:mod:`pipestatus.serve.metrics`)
``GET /cctray.xml``    the CCTray feed, ``?account=`` and ``?name=`` filters
``GET /api/v1/runs``   every pipeline's latest run as JSON
``GET /healthz``       200 while the watch runs, 503 once it has stopped
=====================  ==========================================================

With a token, every path wants it: ``Authorization: Bearer TOKEN`` (what Prometheus sends with
``authorization: credentials``), or HTTP Basic with the token as the password (what a browser
asks for, and then sends with the page's event stream too); compared in constant time. Every
answer carries a Content-Security-Policy that lets the page load only its own script, style and
event stream, and ``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Final

import attrs
from aiohttp import web
from multidict import CIMultiDict

from pipestatus.cli.text import iso
from pipestatus.serve.api import dumps, health_document, runs_document
from pipestatus.serve.board import Board, row_of
from pipestatus.serve.events import Subscriber, format_event
from pipestatus.serve.feed import render_feed
from pipestatus.serve.metrics import CONTENT_TYPE, Metrics
from pipestatus.serve.notify import Notifier
from pipestatus.serve.page import ASSETS, asset, render_page

__all__ = ["SECURITY_HEADERS", "Faces", "authorized", "make_app"]

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
#: Milliseconds a page's event stream waits before it reconnects.
RETRY_MS: Final = 3000


def authorized(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``token``: ``Bearer TOKEN``, or ``Basic``
    with the token as the password (any user name). Constant-time comparison."""
    if not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        given = value
    elif scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return False
        given = decoded.partition(":")[2]
    else:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("utf-8", "replace"))


@attrs.define
class Faces:
    """Everything the routes read: the board, the metrics, the notifier (or ``None``), the
    token (or ``None``: no guard), how the page groups, the heartbeat and the clock."""

    board: Board
    metrics: Metrics
    notifier: Notifier | None = None
    token: str | None = attrs.field(default=None, repr=False)
    group_by: str = "account"
    heartbeat: float = 15.0
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    subscribers: set[Subscriber] = attrs.Factory(set)
    closing: bool = False

    def sinks_failing(self) -> list[str]:
        return self.notifier.failing() if self.notifier is not None else []


FACES: Final = web.AppKey("faces", Faces)


def _unauthorized() -> web.Response:
    headers: CIMultiDict[str] = CIMultiDict()
    headers.add("WWW-Authenticate", 'Bearer realm="pipestatus"')
    headers.add("WWW-Authenticate", 'Basic realm="pipestatus", charset="UTF-8"')
    return web.Response(status=401, text="401: a token is needed\n", headers=headers)


@web.middleware
async def _guard(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    faces = request.app[FACES]
    if faces.token is not None and not authorized(
        request.headers.get("Authorization"), faces.token
    ):
        response: web.StreamResponse = _unauthorized()
    else:
        response = await handler(request)
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)
    return response


# --- routes ---------------------------------------------------------------------------------


async def _page(request: web.Request) -> web.Response:
    faces = request.app[FACES]
    html = render_page(
        faces.board,
        group_by=faces.group_by,
        heartbeat=faces.heartbeat,
        sinks_failing=faces.sinks_failing(),
        now=faces.clock(),
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8")


async def _static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    return web.Response(body=asset(name), headers={"Content-Type": ASSETS[name]})


def _tick(faces: Faces) -> bytes:
    board = faces.board
    return format_event(
        "tick",
        {
            "time": iso(faces.clock()),
            "stale": board.stale_keys(),
            "accounts_down": board.accounts_down(),
            "sinks_failing": faces.sinks_failing(),
            "running": board.running,
        },
    )


async def _events(request: web.Request) -> web.StreamResponse:
    faces = request.app[FACES]
    board = faces.board
    response = web.StreamResponse(
        headers={
            **SECURITY_HEADERS,
            "Content-Type": "text/event-stream; charset=utf-8",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    subscriber = Subscriber(board)
    faces.subscribers.add(subscriber)
    loop = asyncio.get_running_loop()
    try:
        await response.write(f"retry: {RETRY_MS}\n\n".encode())
        next_tick = loop.time()
        while not faces.closing:
            keys = subscriber.take()
            if keys:
                now = faces.clock()
                stale = board.stale()
                chunk = b"".join(
                    format_event(
                        "row", row_of(entry, now, stale=entry.item.target in stale), event_id=None
                    )
                    for entry in (board.by_key[key] for key in keys)
                )
                await response.write(chunk)
            if loop.time() >= next_tick:
                await response.write(_tick(faces))
                next_tick = loop.time() + faces.heartbeat
            try:
                async with asyncio.timeout(max(0.0, next_tick - loop.time())):
                    await subscriber.wake.wait()
            except TimeoutError:
                pass
    except (ConnectionError, RuntimeError):
        pass  # the page went away (a reset, or a write to a closed transport)
    finally:
        subscriber.close()
        faces.subscribers.discard(subscriber)
    return response


async def _metrics(request: web.Request) -> web.Response:
    faces = request.app[FACES]
    return web.Response(body=faces.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


async def _feed(request: web.Request) -> web.Response:
    faces = request.app[FACES]
    query = request.rel_url.query
    xml = render_feed(
        faces.board, faces.clock(), query.getall("account", []), query.getall("name", [])
    )
    return web.Response(text=xml, content_type="application/xml", charset="utf-8")


async def _runs(request: web.Request) -> web.Response:
    faces = request.app[FACES]
    body = dumps(runs_document(faces.board, faces.clock()))
    return web.Response(body=body, content_type="application/json", charset="utf-8")


async def _health(request: web.Request) -> web.Response:
    faces = request.app[FACES]
    body = dumps(health_document(faces.board, faces.clock(), faces.sinks_failing()))
    status = 200 if faces.board.running else 503
    return web.Response(status=status, body=body, content_type="application/json", charset="utf-8")


async def _close_streams(app: web.Application) -> None:
    """On shutdown, every event stream ends (a page then reconnects to the next process)."""
    faces = app[FACES]
    faces.closing = True
    for subscriber in list(faces.subscribers):
        subscriber.wake.set()


def make_app(faces: Faces) -> web.Application:
    """The application serving ``faces``."""
    app = web.Application(middlewares=[_guard])
    app[FACES] = faces
    app.router.add_get("/", _page)
    app.router.add_get("/static/{name}", _static)
    app.router.add_get("/events", _events)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/cctray.xml", _feed)
    app.router.add_get("/api/v1/runs", _runs)
    app.router.add_get("/healthz", _health)
    app.on_shutdown.append(_close_streams)
    return app
