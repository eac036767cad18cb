"""What every vendor adapter shares: argument checks, path segments, the conditional-request
cache, the default fan-out (one request per target), and the seam through which the client's
typed factories reach the registry (:class:`Connector`)."""

from __future__ import annotations

import abc
import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, TypeVar
from urllib.parse import quote

from pipestatus._sansio import Endpoint, Sender, Validators
from pipestatus._transport import under_way
from pipestatus.errors import PipestatusError, ResponseError
from pipestatus.model import Pipeline, Run, Scope, Target
from pipestatus.status import Status

if TYPE_CHECKING:
    from pipestatus.auth import Auth
    from pipestatus.vendors._spec import VendorSpec

__all__ = [
    "Adapter",
    "KEEP_UNREADABLE",
    "Connector",
    "Unreadable",
    "contained",
    "glob_literal",
    "int_id",
    "json_error",
    "page_repeats",
    "segment",
    "settled",
    "string_id",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")
O = TypeVar("O")  # noqa: E741 - an adapter's options class
A = TypeVar("A", bound="Adapter[Any]")
#: Called with each target's outcome as soon as it is known.
OnResult = Callable[[Target, "Run | PipestatusError"], None]

INT32_MAX: Final = 2_147_483_647
MAX_ID_LENGTH: Final = 256
#: Conditional-request entries kept per adapter (one per pipeline URL), oldest dropped first.
MAX_CACHED: Final = 100_000


def int_id(value: object, name: str) -> str:
    """An integer ID in 1..2147483647, given as an int or a string of digits -> its ``str``."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer in 1..{INT32_MAX}, not a bool")
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 10):
            raise ValueError(f"{name} must be an integer in 1..{INT32_MAX}, got {value!r}")
        value = int(text)
    if not isinstance(value, int):
        raise ValueError(f"{name} must be an integer in 1..{INT32_MAX}, got {type(value).__name__}")
    if not 1 <= value <= INT32_MAX:
        raise ValueError(f"{name} must be in 1..{INT32_MAX}, got {value}")
    return str(value)


def string_id(value: object, name: str) -> str:
    """A non-empty string ID (or a non-negative integer) that is safe as one path segment."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a non-empty string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    if value in (".", ".."):
        raise ValueError(f"{name} must not be {value!r}")
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"{name} must be at most {MAX_ID_LENGTH} characters")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise ValueError(f"{name} must not contain control characters")
    return value


def json_error(
    body: bytes, *, codes: tuple[str, ...], messages: tuple[str, ...], nested: str | None = None
) -> tuple[str | None, str | None]:
    """``(code, message)`` from a JSON error body: the first present key of ``codes`` and of
    ``messages`` (strings or integers), looked up under ``nested`` when the body nests them
    there; ``(None, None)`` for HTML, noise or a body without them."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, None
    if nested is not None and isinstance(data, dict) and isinstance(data.get(nested), dict):
        data = data[nested]
    if not isinstance(data, dict):
        return None, None

    def pick(keys: tuple[str, ...]) -> str | None:
        for key in keys:
            value = data.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)
        return None

    return pick(codes), pick(messages)


def page_repeats(seen: set[tuple[Hashable, ...]], keys: Sequence[Hashable]) -> bool:
    """Whether a page of a paged list repeats a page served before (the same keys in the same
    order), which a pager must stop at: a server cycling through its pages (A, B, A, B...,
    with no total to stop at) would be paged to the end of the pager's bound, its items over
    and over. ``seen`` holds the pages so far (the pager keeps it, one per listing); a new page
    is added to it. An empty page never repeats (it ends a list).

    Pure, for every pager to call on every page: the shared paging rule
    (:class:`pipestatus.vendors._paging.Pages`, which v4's job list and every other listing
    follow) does. A list that shifts while paged, where new items push old ones onto the next
    page, repeats items, not pages."""
    if not keys:
        return False
    page = tuple(keys)
    if page in seen:
        return True
    seen.add(page)
    return False


def glob_literal(pattern: str | None) -> str | None:
    """The longest run of plain characters of an ``fnmatch`` glob, as a vendor's name filter
    that can only narrow what the glob matches (``None``: no filter worth sending)."""
    if pattern is None:
        return None
    runs: list[str] = []
    current = ""
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char in "*?":
            runs.append(current)
            current = ""
        elif char == "[":
            end = pattern.find("]", i + 2)
            if end != -1:
                runs.append(current)
                current = ""
                i = end
            else:
                current += char
        else:
            current += char
        i += 1
    runs.append(current)
    best = max(runs, key=len)
    return best or None


#: The unreadable items of one answer kept as errors (the others are only counted).
KEEP_UNREADABLE: Final = 16


class Unreadable:
    """The items of one answer (a page of a list) that could not be read: all counted, the
    first :data:`KEEP_UNREADABLE` kept as errors, and one log line for them all (:meth:`log`),
    however many there were. A parser asks :attr:`keeping` before it builds an error it would
    only count (a page of 300,000 bad items must cost what reading them costs, not 300,000
    described errors and log lines)."""

    __slots__ = ("count", "kept")

    def __init__(self) -> None:
        self.count = 0
        self.kept: list[ResponseError] = []

    @property
    def keeping(self) -> bool:
        """Whether the next error would be kept (else it is only counted)."""
        return len(self.kept) < KEEP_UNREADABLE

    def add(self, error: ResponseError | None = None) -> None:
        """One more item that could not be read (its error, if it was built)."""
        self.count += 1
        if error is not None and self.keeping:
            self.kept.append(error)

    def log(self, to: logging.Logger, what: str, vendor: str) -> None:
        """One WARNING on ``to`` for the answer when some items could not be read."""
        if self.count:
            first = self.kept[0].message if self.kept else "not described"
            to.warning(
                "%s: %d item(s) of %s could not be read; the first: %s",
                vendor,
                self.count,
                what,
                first,
            )


def segment(value: str) -> str:
    """Exactly one percent-encoded path segment: ``/``, ``?``, ``#``, ``%`` and spaces encoded."""
    if value.isascii() and value.isalnum():
        return value  # nothing to encode (the usual ID)
    return quote(value, safe="")


class RunHistory:
    """The reads of a vendor that lists a pipeline's runs (:meth:`runs`, defined by the
    vendor's reads): :meth:`history` is what a watch resumed from a store reads to catch up on
    the finishes it missed (:mod:`pipestatus.watch.history`)."""

    def runs(
        self,
        pipeline_id: str | int,
        since: datetime | None = None,
        status: Status | None = None,
        *,
        until: datetime | None = None,
    ) -> AsyncIterator[Run]:
        raise NotImplementedError  # the vendor's reads define it

    def history(self, target: Target, *, since: datetime | None) -> AsyncIterator[Run]:
        """``target``'s runs, newest first, that started at or after ``since``."""
        return self.runs(target.ids[0], since=since)


class Connector(abc.ABC):
    """What a vendor's typed factory (``client.codearts_repo(...)``) calls: the client turns a
    spec, a base URL, credentials and options into an adapter on its transport."""

    __slots__ = ()

    @abc.abstractmethod
    def _connect(self, spec: VendorSpec[A, O], base_url: str, auth: Auth, options: O) -> A: ...


class Adapter(Generic[O]):
    """One vendor account: an endpoint (base URL and credentials) on the client's transport,
    with the account's ``options`` (the vendor spec's options class).

    Equal only to itself, so targets of one adapter are equal when their IDs are.
    """

    vendor: ClassVar[str]
    #: Adapters whose targets are fetched together (one request for many) set this.
    batches: ClassVar[bool] = False
    #: How many targets one request carries (a batching adapter's batch size).
    batch_size: int = 1
    #: Adapters that list an account's pipelines (``pipelines()``, ``scope()``) set this.
    discovers: ClassVar[bool] = False
    #: ...and this when the listing carries each pipeline's latest run: a scope's poll is then
    #: the listing itself, and its pipelines are not polled one by one.
    lists_latest: ClassVar[bool] = False
    #: Adapters whose status poll carries no jobs set this: a watch asks :meth:`detail` for a
    #: run that has just ended, so the change names the failed job.
    details_on_end: ClassVar[bool] = False

    def __init__(
        self, transport: Sender, endpoint: Endpoint, options: O, *, conditional: bool
    ) -> None:
        self._transport = transport
        self._endpoint = endpoint
        self._conditional = conditional
        self.options = options
        self._cache: dict[str, tuple[Validators, Run]] = {}

    @property
    def origin(self) -> str:
        return self._endpoint.origin

    @property
    def transport(self) -> Sender:
        """What this adapter's requests go through (the client's transport): a watch paces
        itself to its ``max_concurrency``."""
        return self._transport

    @property
    def base_url(self) -> str:
        return self._endpoint.base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._endpoint.base_url!r})"

    def _target(self, *ids: str) -> Target:
        return Target(source=self, ids=ids)

    def _own(self, target: Target) -> None:
        if target.source is not self:
            raise ValueError(f"{target!r} was made by another adapter")

    def _check_open(self) -> None:
        """A poll of a closed client is a usage error, raised once (not one error per target)."""
        if self._transport.closed:
            raise RuntimeError("the Client is not open: use `async with Client() as client:`")

    def _scope(self, name: object) -> Scope:
        if not self.discovers:
            raise TypeError(f"{self.vendor} cannot list its pipelines: name them with target()")
        if name is not None and not (isinstance(name, str) and name.strip()):
            raise ValueError("a scope's name must be a non-empty glob, or None for every pipeline")
        return Scope(source=self, name=name)

    async def survey(self, scope: Scope) -> list[tuple[Pipeline, Run | PipestatusError | None]]:
        """The pipelines of ``scope`` (one of this adapter's), each with its latest run as the
        listing gave it (only where :attr:`lists_latest`: else ``None``), or the error met
        reading that run."""
        raise TypeError(f"{self.vendor} cannot list its pipelines")

    async def poll_scoped(
        self,
        scopes: Sequence[Scope],
        targets: Sequence[Target],
        *,
        on_result: OnResult | None = None,
    ) -> dict[Target, Run | PipestatusError]:
        """Every pipeline of ``scopes`` and every one of ``targets``, each polled once (a
        pipeline both in a scope and named alone, or in two scopes, is one entry). Where the
        listing carries latest runs (:attr:`lists_latest`) it is the poll of its pipelines; the
        others are polled as targets. A scope whose listing failed maps to its error."""
        self._check_open()
        results: dict[Target, Run | PipestatusError] = {}

        def heard(target: Target, outcome: Run | PipestatusError) -> None:
            results[target] = outcome
            if on_result is not None:
                on_result(target, outcome)

        with under_way():  # a client closed meanwhile fails the rest as TransportErrors
            surveys = await asyncio.gather(
                *(contained(self.survey(scope), vendor=self.vendor) for scope in scopes)
            )
        members: dict[Target, None] = {}
        for scope, found in zip(scopes, surveys, strict=True):
            if isinstance(found, PipestatusError):
                heard(scope, found)
                continue
            for pipeline, latest in found:
                target = pipeline.target
                if target in members:
                    continue
                members[target] = None
                if self.lists_latest:
                    heard(target, latest if latest is not None else self._never_ran(pipeline.id))
        rest = [t for t in dict.fromkeys([*targets, *members]) if t not in results]
        if rest:
            results.update(await self.poll_targets(rest, on_result=on_result))
        return results

    def _never_ran(self, pipeline_id: str) -> PipestatusError:
        """What a listed pipeline without a run polls as: 404, as the batch status says."""
        from pipestatus.errors import NotFoundError

        return NotFoundError(
            status=404, vendor=self.vendor, message=f"pipeline {pipeline_id} has no run yet"
        )

    async def detail(self, run: Run) -> Run:
        """``run`` with everything the vendor's run detail adds (jobs), for a watch that saw it
        end; adapters whose status already has it return it as it is."""
        return run

    def _run_path(self, target: Target) -> str:
        """The path of the latest run of ``target`` (one of this adapter's, IDs checked when it
        was made), for adapters that fetch one target per request."""
        raise NotImplementedError

    #: Decodes the answer at ``_run_path`` into a ``Run`` (a staticmethod on subclasses).
    _parse: Callable[[object], Run]

    async def fetch(self, target: Target) -> Run:
        """The latest run of one target of this adapter."""
        self._own(target)
        return await self._get_run(self._run_path(target), self._parse)

    async def poll_targets(
        self, targets: Sequence[Target], *, on_result: OnResult | None = None
    ) -> dict[Target, Run | PipestatusError]:
        """Every target's run or error; one request per target, all at once (the transport
        bounds the concurrency). ``on_result`` hears each outcome as soon as it is known."""
        self._check_open()
        unique = list(dict.fromkeys(targets))
        for target in unique:
            self._own(target)
        # Each target's path once, up front: the workers only send, decode and record.
        plans = iter([(target, self._run_path(target)) for target in unique])
        parse, vendor, get_run = self._parse, self.vendor, self._get_run
        results: dict[Target, Run | PipestatusError] = {}

        async def worker() -> None:
            # A few workers share one iterator, so 10,000 targets cost max_concurrency tasks,
            # not 10,000 (the transport's limit would hold the rest waiting anyway).
            for target, path in plans:
                outcome: Run | PipestatusError
                try:
                    outcome = await get_run(path, parse)
                except PipestatusError as exc:
                    outcome = settled(exc)
                except Exception as exc:  # noqa: BLE001 - a bug of ours, logged: see unexpected
                    outcome = unexpected(exc, vendor)
                results[target] = outcome
                if on_result is not None:
                    on_result(target, outcome)

        workers = min(len(unique), self._transport.max_concurrency)
        with under_way():  # a client closed meanwhile fails the rest as TransportErrors
            await asyncio.gather(*(worker() for _ in range(workers)))
        return {target: results[target] for target in unique}

    async def _get_run(self, path: str, parse: Callable[[object], Run]) -> Run:
        """GET a run, conditionally when the last answer for this path carried validators."""
        conditional = self._conditional
        cached = self._cache.get(path) if conditional else None
        if cached is None:
            response = await self._transport.request(self._endpoint, "GET", path)
        else:
            try:
                response = await self._transport.request(
                    self._endpoint, "GET", path, validators=cached[0]
                )
            except PipestatusError:
                # A conditional request that failed may have failed for its validators (a
                # gateway refusing them, say): the next request goes without.
                self._cache.pop(path, None)
                raise
        if response.status == 304:
            if cached is None:
                raise ResponseError(
                    "304 Not Modified to an unconditional request", vendor=self.vendor
                )
            return cached[1]
        run = decode(response.json(), parse, vendor=self.vendor)
        if conditional:
            cache = self._cache
            cache.pop(path, None)
            validators = response.validators
            if validators:
                if len(cache) >= MAX_CACHED:
                    del cache[next(iter(cache))]
                cache[path] = (validators, run)
        return run


E = TypeVar("E", bound=BaseException)


def settled(error: E) -> E:
    """``error`` as it becomes a result (of a poll, a watch, a batch): without its traceback,
    whose frames keep their locals (the answer's body, the payload, the request), and without
    its cause and context. A returned error is kept as long as its caller likes (a watch keeps
    one per target), so it keeps nothing but its own attributes."""
    error.__traceback__ = None
    error.__cause__ = None
    error.__context__ = None
    return error


def unexpected(exc: Exception, vendor: str) -> PipestatusError:
    """A failure that is a bug of ours, logged with its traceback and reported as this
    target's own ``PipestatusError``, so one target never costs the others their results."""
    logger.error("%s: unexpected failure", vendor, exc_info=exc)
    return PipestatusError(f"{vendor}: unexpected failure ({type(exc).__name__})")


async def contained(call: Awaitable[T], *, vendor: str) -> T | PipestatusError:
    """Await ``call``; its failure, whatever it is, becomes this target's own result.

    A ``PipestatusError`` is the expected failure, returned :func:`settled`. Anything else is a
    bug of ours: it is logged with its traceback and reported as a ``PipestatusError``, so one
    target never costs the others their results (cancellation still propagates).
    """
    try:
        return await call
    except PipestatusError as exc:
        return settled(exc)
    except Exception as exc:  # noqa: BLE001 - see the docstring: logged, never blind
        return unexpected(exc, vendor)


def decode(payload: Any, parse: Callable[[Any], T], *, vendor: str) -> T:
    """Run a pure normalizer; whatever it raises reaches the caller as a ``ResponseError``."""
    try:
        return parse(payload)
    except ResponseError:
        raise
    except Exception as exc:
        logger.exception("%s: normalizer failed", vendor)
        kind = type(exc).__name__
    # Raised after the except block: no context (whose frames hold the payload).
    raise ResponseError(f"payload could not be normalized ({kind})", vendor=vendor) from None
