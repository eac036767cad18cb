"""Faults as data: a matcher and a tuple of effects, each effect doing one thing.

A :class:`Fault` matches requests by vendor key, pipeline ID and path prefix, for its next
``times`` requests (``None``: until removed). Applying it runs its effects in order on an
:class:`Exchange` (the request on its way to an answer): each effect does one thing and either
returns an answer, which ends the exchange, or ``None``, which hands on to the next effect. A
fault is usually some pre-answer effects (:class:`AddHeaders`, :class:`Delay`, :class:`Hang`)
then one answering or damaging effect; with none, the pipeline's own answer goes out.

* Answering instead of the pipeline (its script does not advance): :class:`Redirect`,
  :class:`StatusAnswer`, :class:`RawBody`, :class:`Oversize`.
* Damaging the pipeline's own answer (its script advances): :class:`MutatePayload` and
  :class:`UnknownStatusWord` edit the payload and hand on; :class:`Malformed`,
  :class:`Truncate` and :class:`Trickle` send it damaged.

:func:`fault_from` builds a fault from :meth:`VendorServer.fault`'s keywords
(:class:`FaultOptions`). A new fault kind is a new effect class here and its keyword in
:class:`FaultOptions` and :func:`fault_from`; to be drawn by chaos, it adds one row to
:data:`pipestatus.testing.chaos.CHAOS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, Protocol, TypedDict, Unpack

import attrs
from aiohttp import web

from pipestatus.testing import _answers
from pipestatus.testing._answers import HTML_BODY, JSON_TYPE, Answer

__all__ = [
    "AddHeaders",
    "Delay",
    "Effect",
    "Exchange",
    "Fault",
    "FaultOptions",
    "Hang",
    "Malformed",
    "MutatePayload",
    "Oversize",
    "RawBody",
    "Redirect",
    "StatusAnswer",
    "Trickle",
    "Truncate",
    "UnknownStatusWord",
    "fault_from",
]


@attrs.define(eq=False)
class Exchange:
    """One request on its way to an answer, as a fault's effects see it."""

    request: web.Request
    fault: Fault
    #: Set when the server closes: every wait ends and the connection is cut.
    closing: asyncio.Event
    #: The pipeline's own answer; called at most once (it advances the pipeline's script).
    _produce: Callable[[], Awaitable[Answer]] = attrs.field(repr=False)
    #: The server's normal writer of an answer (JSON, ``ETag``).
    _render: Callable[[Answer], web.StreamResponse] = attrs.field(repr=False)
    #: Headers added to whatever answer goes out.
    headers: dict[str, str] = attrs.field(factory=dict)
    _answer: Answer | None = attrs.field(default=None, init=False, repr=False)

    async def answer(self) -> Answer:
        """The pipeline's own answer, produced on first use."""
        if self._answer is None:
            self._answer = await self._produce()
        return self._answer

    async def wait(self, seconds: float | None, *others: asyncio.Event) -> bool:
        """Wait ``seconds`` (``None``: no limit) or for one of ``others``; True when closing."""
        return await _answers.wait_closing(self.closing, seconds, *others)

    def cut(self) -> web.StreamResponse:
        """Drop the connection without an answer."""
        return _answers.cut(self.request)

    async def finish(self) -> web.StreamResponse:
        """The pipeline's own answer (as the effects left it) with the fault's headers."""
        answer = await self.answer()
        return self._render(attrs.evolve(answer, headers={**answer.headers, **self.headers}))

    async def damaged(self) -> tuple[int, bytes, dict[str, str]]:
        """The status, JSON bytes and headers of the pipeline's answer, for damaging writers."""
        answer = await self.answer()
        headers = {"Content-Type": JSON_TYPE, **answer.headers, **self.headers}
        return answer.status, _answers.dumps(answer.payload), headers


class Effect(Protocol):
    """One thing a fault does: return an answer to end the exchange, or ``None`` to go on."""

    async def apply(self, exchange: Exchange) -> web.StreamResponse | None: ...


# --- pre-answer effects ------------------------------------------------------------------------


@attrs.frozen
class AddHeaders:
    """Add headers to whatever answer the fault ends in."""

    headers: Mapping[str, str]

    async def apply(self, exchange: Exchange) -> web.StreamResponse | None:
        exchange.headers.update(self.headers)
        return None


@attrs.frozen
class Delay:
    """Hold the request ``seconds`` before going on."""

    seconds: float

    async def apply(self, exchange: Exchange) -> web.StreamResponse | None:
        if self.seconds > 0 and await exchange.wait(self.seconds):
            return exchange.cut()
        return None


@attrs.frozen
class Hang:
    """Hold the request until :meth:`Fault.release` (or ``seconds``, when given), then go on;
    closing the server cuts it."""

    seconds: float | None = None

    async def apply(self, exchange: Exchange) -> web.StreamResponse | None:
        if await exchange.wait(self.seconds, exchange.fault.released_event()):
            return exchange.cut()
        return None


# --- answering instead of the pipeline ---------------------------------------------------------


@attrs.frozen
class Redirect:
    """Answer a redirect to ``location``."""

    location: str
    status: int = 302

    async def apply(self, exchange: Exchange) -> web.StreamResponse | None:
        return web.Response(
            status=self.status, headers={"Location": self.location, **exchange.headers}
        )


def _raw_bytes(raw: Any) -> bytes:
    """Bytes verbatim, a string encoded, anything else as JSON."""
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, str):
        return raw.encode()
    return json.dumps(raw).encode()


@attrs.frozen
class StatusAnswer:
    """Answer ``status`` with ``body`` (default: an nginx-like HTML page), and ``Retry-After``
    when ``retry_after`` is given."""

    status: int
    body: Any = None
    retry_after: float | str | None = None

    async def apply(self, exchange: Exchange) -> web.StreamResponse | None:
        headers = dict(exchange.headers)
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        raw = self.body
        if raw is None:
            reason = web.Response(status=self.status).reason
            raw = HTML_BODY.format(status=self.status, reason=reason)
            headers.setdefault("Content-Type", "text/html")
        elif not isinstance(raw, str | bytes):
            headers.setdefault("Content-Type", JSON_TYPE)
        return web.Response(status=self.status, body=_raw_bytes(raw), headers=headers)


@attrs.frozen
class RawBody:
    """Answer 200 with ``body``: bytes or str verbatim, anything else as JSON."""

    body: Any

    async def apply(self, exchange: Exchange) -> web.StreamResponse | None:
        headers = {"Content-Type": JSON_TYPE, **exchange.headers}
        return web.Response(status=200, body=_raw_bytes(self.body), headers=headers)


@attrs.frozen
class Oversize:
    """Answer 200 with a valid-looking JSON stream of ``size`` bytes, generated on the fly;
    chunked, or with its ``Content-Length`` when ``announce``."""

    size: int
    announce: bool = False

    async def apply(self, exchange: Exchange) -> web.StreamResponse | None:
        return await _answers.oversize(
            exchange.request,
            self.size,
            exchange.headers,
            announce=self.announce,
            closing=exchange.closing,
        )


# --- damaging the pipeline's own answer --------------------------------------------------------


@attrs.frozen
class MutatePayload:
    """Pass the payload of a 200 answer through ``mutator``, then go on."""

    mutator: Callable[[Any], Any]

    async def apply(self, exchange: Exchange) -> web.StreamResponse | None:
        answer = await exchange.answer()
        if answer.status == 200:
            answer.payload = self.mutator(answer.payload)
        return None


def _replace_status(payload: Any, word: str) -> Any:
    if isinstance(payload, dict):
        return {**payload, "status": word}
    if isinstance(payload, list):
        return [_replace_status(item, word) if isinstance(item, dict) else item for item in payload]
    return payload


@attrs.frozen
class UnknownStatusWord:
    """Replace the top-level status word(s) of a 200 payload with one nobody documents."""

    word: str = "EXPLODED"

    async def apply(self, exchange: Exchange) -> web.StreamResponse | None:
        answer = await exchange.answer()
        if answer.status == 200:
            answer.payload = _replace_status(answer.payload, self.word)
        return None


@attrs.frozen
class Malformed:
    """Send half of the answer's JSON followed by garbage."""

    async def apply(self, exchange: Exchange) -> web.StreamResponse | None:
        status, data, headers = await exchange.damaged()
        data = data[: max(1, len(data) // 2)] + b'",,}{"status": '
        return web.Response(status=status, body=data, headers=headers)


@attrs.frozen
class Truncate:
    """Declare more bytes than sent and close mid-body (a TCP reset when ``reset``)."""

    reset: bool = False

    async def apply(self, exchange: Exchange) -> web.StreamResponse | None:
        status, data, headers = await exchange.damaged()
        return await _answers.truncated(exchange.request, status, data, headers, reset=self.reset)


@attrs.frozen
class Trickle:
    """Send the answer one byte every ``interval`` seconds."""

    interval: float

    async def apply(self, exchange: Exchange) -> web.StreamResponse | None:
        status, data, headers = await exchange.damaged()
        return await _answers.trickle(
            exchange.request,
            status,
            data,
            headers,
            interval=self.interval,
            closing=exchange.closing,
        )


# --- the fault ---------------------------------------------------------------------------------


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


@attrs.define(eq=False)
class Fault:
    """A fault applied to matching requests; returned by :meth:`VendorServer.fault`.

    ``hits`` counts the requests it was applied to; :meth:`remove` withdraws it and
    :meth:`release` lets requests it holds with :class:`Hang` go on.
    """

    vendor: str | None = None
    pipeline: str | None = attrs.field(default=None, converter=_optional_str)
    path_prefix: str | None = None
    times: int | None = None
    effects: tuple[Effect, ...] = ()
    name: str = "fault"
    hits: int = 0
    _released: asyncio.Event | None = attrs.field(default=None, init=False, repr=False)
    _owner: list[Fault] | None = attrs.field(default=None, init=False, repr=False)

    def matches(self, vendor: str | None, pipelines: Collection[str], path: str) -> bool:
        """Whether the fault applies to a request of ``vendor`` for ``pipelines`` at ``path``."""
        if self.times is not None and self.hits >= self.times:
            return False
        if self.vendor is not None and self.vendor != vendor:
            return False
        if self.pipeline is not None and self.pipeline not in pipelines:
            return False
        return self.path_prefix is None or path.startswith(self.path_prefix)

    def attach(self, owner: list[Fault]) -> None:
        """Join ``owner`` (a server's faults), which :meth:`remove` leaves."""
        self._owner = owner
        owner.append(self)

    def hit(self) -> None:
        """Count one request; a fault whose ``times`` are used up removes itself."""
        self.hits += 1
        if self.times is not None and self.hits >= self.times:
            self.remove()

    def remove(self) -> None:
        """Withdraw this fault (requests already held by it stay held until released)."""
        if self._owner is not None:
            with contextlib.suppress(ValueError):
                self._owner.remove(self)

    def release(self) -> None:
        """Let requests hung by this fault continue to their normal answer."""
        self.released_event().set()

    def released_event(self) -> asyncio.Event:
        """The event :meth:`release` sets."""
        if self._released is None:
            self._released = asyncio.Event()
        return self._released

    async def apply(self, exchange: Exchange) -> web.StreamResponse:
        """Run the effects in order; the first answer wins, else the pipeline's own."""
        for effect in self.effects:
            response = await effect.apply(exchange)
            if response is not None:
                return response
        return await exchange.finish()


class FaultOptions(TypedDict, total=False):
    """The keywords of :meth:`VendorServer.fault`; see it for their meaning."""

    vendor: str | None
    pipeline: str | int | None
    path_prefix: str | None
    times: int | None
    status: int | None
    body: Any
    headers: Mapping[str, str] | None
    retry_after: float | str | None
    delay: float
    hang: bool
    trickle: float | None
    malformed: bool
    truncate: bool
    reset: bool
    oversize_bytes: int | None
    announce: bool
    redirect_to: str | None
    redirect_status: int
    payload_mutator: Callable[[Any], Any] | None


def fault_from(**options: Unpack[FaultOptions]) -> Fault:
    """The fault :meth:`VendorServer.fault` describes: headers, delay and hang first, then the
    first of redirect, status, body and oversize answers, else the payload mutator and the
    first of malformed, truncate/reset and trickle damage."""
    unknown = options.keys() - FaultOptions.__optional_keys__
    if unknown:
        raise TypeError(f"fault() got unexpected keyword arguments: {sorted(unknown)}")
    o: dict[str, Any] = dict(options)
    effects: list[Effect] = []
    if o.get("headers"):
        effects.append(AddHeaders(dict(o["headers"])))
    if o.get("delay", 0.0) > 0:
        effects.append(Delay(o["delay"]))
    if o.get("hang"):
        effects.append(Hang())
    if o.get("redirect_to") is not None:
        effects.append(Redirect(o["redirect_to"], o.get("redirect_status", 302)))
    elif o.get("status") is not None:
        effects.append(StatusAnswer(o["status"], o.get("body"), o.get("retry_after")))
    elif o.get("body") is not None:
        effects.append(RawBody(o["body"]))
    elif o.get("oversize_bytes") is not None:
        effects.append(Oversize(o["oversize_bytes"], o.get("announce", False)))
    else:
        if o.get("payload_mutator") is not None:
            effects.append(MutatePayload(o["payload_mutator"]))
        if o.get("malformed"):
            effects.append(Malformed())
        elif o.get("truncate") or o.get("reset"):
            effects.append(Truncate(reset=bool(o.get("reset"))))
        elif o.get("trickle") is not None:
            effects.append(Trickle(o["trickle"]))
    return Fault(
        vendor=o.get("vendor"),
        pipeline=o.get("pipeline"),
        path_prefix=o.get("path_prefix"),
        times=o.get("times"),
        effects=tuple(effects),
    )
