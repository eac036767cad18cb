"""The effects of a hostile server, as data: what gateways, captive portals, proxies and vendor
bugs send. Each is an effect of :mod:`pipestatus.testing.faults` (one thing, applied to an
:class:`~pipestatus.testing.faults.Exchange`), and each is a row of the chaos table
(:data:`pipestatus.testing.chaos.CHAOS`):

* :class:`Amplify`: the first array of a payload replaced by a huge array of wrong items
  (refusing it must cost what decoding it costs);
* :class:`RawHeaders`: the pipeline's answer with header lines aiohttp would refuse to write
  (an ``ETag`` holding a control character, or one of 6 KB that a gateway then refuses to
  receive back: :data:`MAX_HEADER` is the simulator's own gateway limit);
* :class:`HostileStrings`: control characters, escape sequences, line breaks and a lone
  surrogate appended to every string of a payload;
* :class:`NotHTTP`: bytes that are not HTTP at all, then a closed connection;
* :class:`CyclePages`: a paged list that serves its pages A, B, A, B... without a total.

Nothing here names a vendor: the effects work on any payload and any paging by query.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs
from aiohttp import web

from pipestatus.testing import _answers
from pipestatus.testing.faults import Exchange

__all__ = [
    "HOSTILE_TEXT",
    "MAX_HEADER",
    "UNSENDABLE_ETAGS",
    "Amplify",
    "CyclePages",
    "HostileStrings",
    "NotHTTP",
    "RawHeaders",
    "amplified",
    "hostile",
]

#: What a hostile vendor string holds: an OSC window title, a screen clear, a forged line (CR
#: LF), a C1 CSI, a bell, a right-to-left override, a line separator and a lone surrogate.
HOSTILE_TEXT: Final = "\x1b]0;pwned\x07\x1b[2J\r\nFORGED\x9b31m\u202eevil\u2028\ud800"
#: The simulator's gateway refuses a request with a header value longer than this (400), as
#: nginx refuses one over its buffers.
MAX_HEADER: Final = 4096
#: Validators no client can send back: a control character, and one a gateway refuses.
UNSENDABLE_ETAGS: Final = ('"v1\x01"', '"' + "x" * 6000 + '"')


def amplified(payload: Any, count: int, item: Any) -> Any:
    """``payload`` with its first array (the payload itself, else the first array-valued key,
    depth first) replaced by ``count`` copies of ``item``."""
    if isinstance(payload, list):
        return [item] * count
    if isinstance(payload, dict):
        for key, value in payload.items():
            replaced = amplified(value, count, item)
            if replaced is not value:
                return {**payload, key: replaced}
    return payload


def hostile(payload: Any, text: str) -> Any:
    """``payload`` with ``text`` appended to every string value (keys are left alone)."""
    if isinstance(payload, str):
        return payload + text
    if isinstance(payload, list):
        return [hostile(item, text) for item in payload]
    if isinstance(payload, dict):
        return {key: hostile(value, text) for key, value in payload.items()}
    return payload


@attrs.frozen
class Amplify:
    """Replace the first array of a 200 payload with ``count`` copies of ``item`` (a number:
    wrong where objects belong), then go on."""

    count: int = 50_000
    item: Any = 0

    async def apply(self, exchange: Exchange) -> web.StreamResponse | None:
        answer = await exchange.answer()
        if answer.status == 200:
            answer.payload = amplified(answer.payload, self.count, self.item)
        return None


@attrs.frozen
class HostileStrings:
    """Append ``text`` to every string of a 200 payload (names, words, URLs, IDs), then go
    on; a lone surrogate goes out as a JSON ``\\ud800`` escape."""

    text: str = HOSTILE_TEXT

    async def apply(self, exchange: Exchange) -> web.StreamResponse | None:
        answer = await exchange.answer()
        if answer.status == 200:
            answer.payload = hostile(answer.payload, self.text)
        return None


@attrs.frozen
class RawHeaders:
    """Send the pipeline's answer with ``headers`` written as they are, past aiohttp's own
    refusal of control characters, on a connection closed after it."""

    headers: Mapping[str, str]

    async def apply(self, exchange: Exchange) -> web.StreamResponse | None:
        status, data, headers = await exchange.damaged()
        return _answers.raw_reply(exchange.request, status, data, headers, self.headers)


@attrs.frozen
class NotHTTP:
    """Answer with ``data``, which is not HTTP (another protocol's greeting, a proxy's
    garbage), and close the connection."""

    data: bytes = b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02 not HTTP\r\n"

    async def apply(self, exchange: Exchange) -> web.StreamResponse | None:
        return _answers.write_raw(exchange.request, self.data)


@attrs.frozen
class CyclePages:
    """Serve a paged list's pages in a cycle of ``period`` pages (A, B, A, B... for 2): the
    page at ``offset`` is the one at ``offset`` modulo ``period`` pages of the request's
    ``limit``, and the answer carries no ``total`` header. A request without those query
    parameters is left alone."""

    period: int = 2
    offset: str = "offset"
    limit: str = "limit"
    total: str = "X-Total"

    async def apply(self, exchange: Exchange) -> web.StreamResponse | None:
        query = exchange.request.query
        try:
            offset, limit = int(query[self.offset]), int(query[self.limit])
        except (KeyError, ValueError):
            return None
        cycled = offset % (self.period * limit) if limit > 0 else offset
        if cycled != offset:
            url = exchange.request.rel_url.update_query({self.offset: str(cycled)})
            exchange.request = exchange.request.clone(rel_url=url)
        answer = await exchange.answer()
        answer.headers = {
            k: v for k, v in answer.headers.items() if k.lower() != self.total.lower()
        }
        return None
