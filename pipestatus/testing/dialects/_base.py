"""What a dialect is: one vendor's API as the simulated server speaks it.

A :class:`Dialect` (one instance per server) owns its vendor's pipelines and everything about
its wire: its routes and their handlers, the payloads it renders from the vendor-neutral model,
its error bodies, its own status-word tables (canonical word -> vendor word; deliberately not
the library's tables, so the simulator can disagree with them), its auth check, and how a
request names its pipelines (for fault matching). It reaches the server only through a
:class:`Context`: the token, the clock and the made-up ID allocator.

:class:`Host` is the server as the dialects' ``VendorServer`` mixins see it (the typed
``add_*_pipeline`` methods call its generic :meth:`Host.add_pipeline`). The time formats shared
by the dialects (China Standard Time, epoch milliseconds) live here too.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Final, TypeAlias

import attrs
from aiohttp import web

from pipestatus.testing._answers import Answer
from pipestatus.testing._sim import RunSource, Served

__all__ = [
    "CST",
    "Quirks",
    "page_of",
    "Context",
    "Dialect",
    "Handler",
    "Host",
    "Route",
    "epoch_ms",
    "ids_of",
    "iso_cst",
    "naive_cst",
    "options_of",
]

#: China Standard Time, the zone of both vendors' local times.
CST: Final = timezone(timedelta(hours=8), "CST")

#: A route's handler: the request and its body -> the answer.
Handler: TypeAlias = Callable[[web.Request, bytes], Awaitable[Answer]]


@attrs.frozen
class Route:
    """One route of a dialect."""

    method: str
    path: str
    handler: Handler = attrs.field(repr=False)


@attrs.frozen
class Context:
    """What a dialect may use of its server."""

    #: The token every request must carry.
    token: str = attrs.field(repr=False)
    #: Seconds since the server started (the clock of time-driven run sources).
    elapsed: Callable[[], float] = attrs.field(repr=False)
    #: A made-up numeric ID, the same for the same key on one server.
    make_id: Callable[..., int] = attrs.field(repr=False)
    #: What dialects of one cloud share on this server (the Huawei gateway and IAM), by name.
    shared: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class Quirks:
    """How a dialect's paged lists misbehave (``VendorServer.paging``); the default: not at all.

    ``repeat_page``: from this page (0-based) on, every page is the one before it again (a
    server that ignores the offset). ``total_delta``: added to the total it claims (a total
    that lies). ``empty_page``: this page comes back empty (a hole in the middle).
    ``stuck_log``: a step log's offsets never move, and it always says there is more.
    """

    repeat_page: int | None = None
    total_delta: int = 0
    empty_page: int | None = None
    stuck_log: bool = False


def page_of(count: int, offset: int, limit: int, quirks: Quirks) -> tuple[range, int]:
    """The positions a page at ``offset`` of ``limit`` items serves out of ``count`` items,
    and the total it claims, with the quirks applied."""
    limit = max(1, limit)
    index = offset // limit
    if quirks.repeat_page is not None and index >= quirks.repeat_page:
        offset = max(0, (quirks.repeat_page - 1) * limit)
    positions = range(max(0, offset), min(count, max(0, offset) + limit))
    if quirks.empty_page is not None and index == quirks.empty_page:
        positions = range(0)
    return positions, count + quirks.total_delta


class Dialect(abc.ABC):
    """One vendor's API on one server; see the module docstring."""

    #: How its paged lists misbehave (set through ``VendorServer.paging``).
    quirks: Quirks = Quirks()

    #: The registry key of the vendor (``pipestatus.vendors.REGISTRY``).
    key: ClassVar[str]
    #: Error bodies by status.
    error_bodies: ClassVar[Mapping[int, Mapping[str, str]]]
    #: The standalone server's option that adds N static pipelines (``--NAME N``) and its help.
    standalone_option: ClassVar[tuple[str, str]]

    def __init__(self, context: Context) -> None:
        self.context = context

    def error(self, status: int) -> Answer:
        """The dialect's error answer for ``status``."""
        return Answer(status, dict(self.error_bodies[status]))

    @abc.abstractmethod
    def routes(self) -> Sequence[Route]:
        """The routes this dialect serves."""

    def services(self) -> Sequence[Route]:
        """Routes of the cloud the vendor belongs to rather than of its own API (Huawei's
        IAM), shared by the dialects of that cloud: equal routes are served once per server."""
        return ()

    @abc.abstractmethod
    def authorized(self, request: web.Request) -> bool:
        """Whether the request carries the token the way this vendor wants it."""

    @abc.abstractmethod
    def pipelines_of(self, request: web.Request, body: bytes) -> list[str]:
        """The pipeline IDs a request is about, for faults that match a pipeline."""

    @abc.abstractmethod
    def add(self, ids: Sequence[str | int], run: RunSource, **options: Any) -> None:
        """Serve a pipeline with these IDs (in the order of the vendor spec's ``ids``) under
        these account options (the vendor spec's option names) and dialect extras."""

    @abc.abstractmethod
    def pipelines(self) -> list[Served]:
        """The pipelines served, in the order they were added."""

    def remove(self, ids: Sequence[str | int], **options: Any) -> None:
        """Stop serving the pipeline with these IDs (deleted at the vendor)."""
        raise TypeError(f"{self.key} pipelines cannot be removed")

    @classmethod
    @abc.abstractmethod
    def static(cls, n: int) -> tuple[tuple[str, ...], dict[str, Any]]:
        """The IDs and options of the standalone server's n-th (1-based) static pipeline."""


class Host(abc.ABC):
    """The server as the dialects' ``VendorServer`` mixins see it."""

    __slots__ = ()

    @abc.abstractmethod
    def add_pipeline(
        self, vendor: str, ids: Sequence[str | int], run: RunSource, **options: Any
    ) -> None:
        """Serve a pipeline of ``vendor``; see ``VendorServer.add_pipeline``."""


def iso_cst(value: datetime | None) -> str | None:
    """``2025-05-17T11:02:25.000+08:00``, or None."""
    if value is None:
        return None
    local = value.astimezone(CST)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}+08:00"


def naive_cst(value: datetime | None) -> str | None:
    """``2023-03-04 16:48:09`` in China Standard Time, or None."""
    return None if value is None else value.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")


def epoch_ms(value: datetime | None) -> int | None:
    """Milliseconds since the epoch, or None."""
    return None if value is None else int(value.timestamp() * 1000)


def options_of(dialect: Dialect, options: Mapping[str, Any], **defaults: Any) -> dict[str, Any]:
    """``options`` over ``defaults``; a name ``defaults`` lacks is a ``TypeError``."""
    unknown = options.keys() - defaults.keys()
    if unknown:
        raise TypeError(f"{dialect.key} pipelines take no options {sorted(unknown)}")
    return {**defaults, **options}


def ids_of(dialect: Dialect, ids: Sequence[str | int], *names: str) -> tuple[str, ...]:
    """``ids`` as strings, checked to be as many as ``names``."""
    if isinstance(ids, str) or len(ids) != len(names):
        raise ValueError(f"{dialect.key} pipelines are named by ({', '.join(names)}), not {ids!r}")
    return tuple(str(value) for value in ids)
