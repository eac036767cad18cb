"""Answers as values, and the ways the server writes them: whole, or damaged on the wire.

A dialect's handler returns an :class:`Answer` (a status, a JSON-able payload, headers);
:func:`render` writes it as JSON with an ``ETag`` on a GET 200 (and ``304`` for a matching
``If-None-Match``). The other writers here serve the faults: :func:`truncated` (a
``Content-Length`` larger than what is sent, then a close or a TCP reset), :func:`trickle` (one
byte per interval), :func:`oversize` (a valid-looking JSON stream of any size, generated on the
fly and never held in memory), :func:`cut` (drop the connection), :func:`write_raw` and
:func:`raw_reply` (bytes no HTTP library would write), and :func:`wait_closing`,
which every wait uses so that closing the server cuts whatever is held.
"""

from __future__ import annotations

import asyncio
import hashlib
import http
import json
import socket
import struct
from collections.abc import Mapping
from typing import Any, Final

import attrs
from aiohttp import web

__all__ = [
    "HTML_BODY",
    "JSON_TYPE",
    "Answer",
    "cut",
    "etag_matches",
    "oversize",
    "raw_reply",
    "render",
    "trickle",
    "truncated",
    "wait_closing",
    "write_raw",
]

JSON_TYPE: Final = "application/json;charset=UTF-8"
#: The body of a fault's status answer when it names none: what a gateway in front sends.
HTML_BODY: Final = (
    "<html><head><title>{status} {reason}</title></head>"
    "<body><center><h1>{status} {reason}</h1></center><hr><center>nginx</center></body></html>"
)


@attrs.define
class Answer:
    """What a dialect answers: a status, a JSON-able payload and extra headers."""

    status: int
    payload: Any
    headers: dict[str, str] = attrs.field(factory=dict)


def dumps(payload: Any) -> bytes:
    """The JSON bytes of a payload, as the server sends them: UTF-8 text, or, for a payload
    holding a lone surrogate (which UTF-8 cannot encode), ASCII with ``\\uXXXX`` escapes (a
    ``"\\ud800"`` in a JSON string is valid JSON, and a hostile vendor may send it)."""
    text = json.dumps(payload, ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return json.dumps(payload).encode()


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``etag`` (or is ``*``)."""
    if not header:
        return False
    candidates = [part.strip() for part in header.split(",")]
    return "*" in candidates or any(c.removeprefix("W/") == etag for c in candidates)


def render(request: web.Request, answer: Answer, *, etags: bool) -> web.Response:
    """``answer`` as JSON; a GET 200 carries an ``ETag`` (when ``etags``), and a matching
    ``If-None-Match`` gets an empty ``304``."""
    data = dumps(answer.payload)
    headers = {"Content-Type": JSON_TYPE, **answer.headers}
    if etags and request.method == "GET" and answer.status == 200:
        etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
        headers["ETag"] = etag
        if etag_matches(request.headers.get("If-None-Match"), etag):
            del headers["Content-Type"]
            return web.Response(status=304, headers=headers)
    return web.Response(status=answer.status, body=data, headers=headers)


async def wait_closing(
    closing: asyncio.Event, seconds: float | None, *others: asyncio.Event
) -> bool:
    """Wait up to ``seconds`` (``None``: no limit) for ``closing`` or one of ``others``; True
    when the server is closing."""
    waiters = [asyncio.ensure_future(event.wait()) for event in (closing, *others)]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    return closing.is_set()


def cut(request: web.Request, resp: web.StreamResponse | None = None) -> web.StreamResponse:
    """Drop the connection without a (complete) answer; aiohttp then writes nothing more."""
    if request.transport is not None:
        request.transport.close()
    return resp if resp is not None else web.Response(status=503)


def write_raw(request: web.Request, data: bytes) -> web.StreamResponse:
    """Write ``data`` on the connection as it is (whatever aiohttp would refuse to write),
    then close it."""
    if request.transport is not None:
        request.transport.write(data)
    return cut(request)


def raw_reply(
    request: web.Request,
    status: int,
    data: bytes,
    headers: Mapping[str, str],
    raw_headers: Mapping[str, str],
) -> web.StreamResponse:
    """An HTTP answer written by hand: ``headers`` and then ``raw_headers`` as they are (an
    ``ETag`` holding a control character, which aiohttp's writer refuses), then ``data``."""
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    fields = {**headers, **raw_headers, "Content-Length": str(len(data)), "Connection": "close"}
    head = "\r\n".join([f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in fields.items())])
    return write_raw(request, head.encode("utf-8", "surrogatepass") + b"\r\n\r\n" + data)


async def truncated(
    request: web.Request, status: int, data: bytes, headers: Mapping[str, str], *, reset: bool
) -> web.StreamResponse:
    """Declare more bytes than sent, send half of ``data``, then close (or reset) the socket."""
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = len(data) + 1024
    try:
        await resp.prepare(request)
        await resp.write(data[: max(1, len(data) // 2)])
    except ConnectionError:
        return resp
    transport = request.transport
    if transport is not None:
        if reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()
    return resp


async def trickle(
    request: web.Request,
    status: int,
    data: bytes,
    headers: Mapping[str, str],
    *,
    interval: float,
    closing: asyncio.Event,
) -> web.StreamResponse:
    """Announce the full length, then send one byte every ``interval`` seconds."""
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = len(data)
    try:
        await resp.prepare(request)
        for i in range(len(data)):
            await resp.write(data[i : i + 1])
            if i + 1 < len(data) and await wait_closing(closing, interval):
                return cut(request, resp)
    except ConnectionError:
        pass
    return resp


async def oversize(
    request: web.Request,
    size: int,
    headers: Mapping[str, str],
    *,
    announce: bool,
    closing: asyncio.Event,
) -> web.StreamResponse:
    """A 200 of exactly ``size`` bytes of valid JSON, chunked unless ``announce``."""
    head, tail = b'{"status":"success","padding":"', b'"}'
    resp = web.StreamResponse(status=200, headers={"Content-Type": JSON_TYPE, **headers})
    if announce:
        resp.content_length = size
    else:
        resp.enable_chunked_encoding()
    try:
        await resp.prepare(request)
        if size < len(head) + len(tail):
            await resp.write((b" " * size)[:size])
            return resp
        await resp.write(head)
        remaining = size - len(head) - len(tail)
        chunk = b"x" * 65536
        while remaining > 0:
            if closing.is_set():
                return cut(request, resp)
            piece = chunk if remaining >= len(chunk) else chunk[:remaining]
            await resp.write(piece)
            remaining -= len(piece)
        await resp.write(tail)
    except ConnectionError:
        pass
    return resp
