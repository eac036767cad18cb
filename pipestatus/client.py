"""The client: the adapters' factory, fan-out polling, watching and waiting.

``poll`` plans per adapter (v5 targets become batch calls; the others one request each), runs
everything at once under the transport's concurrency limit, and returns an entry for every
target. ``watch`` yields a :class:`~pipestatus.model.Change` whenever a target's run changes;
``Watcher`` is the same as an object whose targets can be added and removed while it runs.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar

from pipestatus._sansio import Endpoint
from pipestatus._transport import Attempt, Transport
from pipestatus.errors import (
    AuthError,
    ForbiddenError,
    NotFoundError,
    PipestatusError,
    RateLimitedError,
    WaitTimeout,
)
from pipestatus.http import AiohttpDriver, Session
from pipestatus.model import Change, Run, Scope, Target
from pipestatus.vendors import Factories
from pipestatus.vendors._base import Adapter, settled
from pipestatus.watch import Watcher

if TYPE_CHECKING:
    from pipestatus.auth import Auth
    from pipestatus.vendors._spec import VendorSpec
    from pipestatus.watch.records import Publisher, Store

__all__ = ["Client"]

logger = logging.getLogger(__name__)

Outcome = Run | PipestatusError
A = TypeVar("A", bound=Adapter[Any])
O = TypeVar("O")  # noqa: E741 - an adapter's options class

#: Errors that will not go away by asking again soon: ``wait`` raises them at once.
_PERMANENT: Final = (AuthError, ForbiddenError, NotFoundError)


class Client(Factories):
    """One aiohttp session and one transport for any number of vendor accounts.

    Use it as an async context manager. ``timeout`` bounds each attempt (connect, redirects,
    whole body); ``retries`` is the number of retries after the first attempt; see
    :mod:`pipestatus._transport` for the other options. ``verify_tls=False`` turns TLS
    certificate checks off (only for test hosts); an ``ssl.SSLContext`` sets your own CAs.
    ``sleep`` replaces ``asyncio.sleep`` for backoff waits (tests pass a no-op).
    ``on_attempt`` hears every attempt (vendor, status or error class, number, seconds; see
    :class:`pipestatus._transport.Attempt`): a service counts requests and retries with it.

    The adapters come from the vendors' typed factories (``client.<vendor key>(...)``), one
    per vendor module, gathered in :class:`pipestatus.vendors.Factories`.
    """

    __slots__ = ("_conditional", "_sleep", "_transport")

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        max_concurrency: int = 64,
        retries: int = 3,
        max_per_host: int | None = None,
        max_retry_wait: float = 60.0,
        max_body_bytes: int = 16 * 1024 * 1024,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        verify_tls: bool | ssl.SSLContext = True,
        conditional: bool = True,
        session: Session | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_attempt: Callable[[Attempt], None] | None = None,
    ) -> None:
        driver = AiohttpDriver(
            timeout=timeout,
            max_concurrency=max_concurrency,
            max_per_host=max_per_host,
            verify_tls=verify_tls,
            session=session,
        )
        self._transport = Transport(
            driver,
            timeout=timeout,
            retries=retries,
            max_retry_wait=max_retry_wait,
            max_body_bytes=max_body_bytes,
            max_concurrency=max_concurrency,
            max_per_host=max_per_host,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            sleep=sleep,
            on_attempt=on_attempt,
        )
        self._conditional = conditional
        self._sleep = sleep

    async def __aenter__(self) -> Self:
        await self._transport.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session (unless the caller handed it in)."""
        await self._transport.close()

    def __repr__(self) -> str:
        t = self._transport
        return (
            f"Client(timeout={t.timeout:g}, max_concurrency={t.max_concurrency}, "
            f"retries={t.retries}, closed={t.closed})"
        )

    def _connect(self, spec: VendorSpec[A, O], base_url: str, auth: Auth, options: O) -> A:
        endpoint = Endpoint.create(spec.key, base_url, auth, spec.decode_error, spec.retry_hint)
        return spec.adapter(self._transport, endpoint, options, conditional=self._conditional)

    # --- fan-out ----------------------------------------------------------------------------------

    async def poll(self, targets: Iterable[Target]) -> dict[Target, Run | PipestatusError]:
        """Every target's latest run, or the ``PipestatusError`` that target met.

        v5 targets of one adapter go out in batch calls; the others one request each; all at
        once under ``max_concurrency``. A ``Scope`` (``adapter.scope(...)``) stands for every
        pipeline it lists: each is keyed by its own ``Target`` (equal to
        ``adapter.target(id)``), and a pipeline both in a scope and named alone is polled once;
        a v5 scope's poll is the pipeline list itself. A scope whose listing failed is keyed
        itself, with its error. Cancelling ``poll`` cancels all of its requests. On a client
        that is not open: ``RuntimeError``, as a direct call raises.
        """
        if self._transport.closed:
            raise RuntimeError("the Client is not open: use `async with Client() as client:`")
        unique = list(dict.fromkeys(targets))
        groups: dict[Adapter[Any], tuple[list[Scope], list[Target]]] = {}
        for target in unique:
            source = target.source
            if not isinstance(source, Adapter):
                raise TypeError(f"{target!r} was not made by an adapter of this library")
            scopes, plain = groups.setdefault(source, ([], []))
            if isinstance(target, Scope):
                scopes.append(target)
            else:
                plain.append(target)
        async with asyncio.TaskGroup() as tasks:
            running = [
                tasks.create_task(
                    adapter.poll_scoped(scopes, plain) if scopes else adapter.poll_targets(plain)
                )
                for adapter, (scopes, plain) in groups.items()
            ]
        merged: dict[Target, Outcome] = {}
        for task in running:
            merged.update(task.result())
        ordered = {target: merged.pop(target) for target in unique if target in merged}
        ordered.update(merged)  # the scopes' pipelines, in listing order
        return ordered

    async def wait(self, target: Target, *, timeout: float, interval: float = 10.0) -> Run:
        """Poll ``target`` until its latest run is terminal and return it (to gate a deploy).

        Polls every ``interval`` seconds (positive and finite, as a watch's). Passing errors
        (timeouts, 5xx after retries) are waited out, a 429's ``retry_after`` whole (if longer
        than ``interval``; never past the deadline); 401, 403 and 404 raise at once. Past
        ``timeout`` seconds: ``WaitTimeout`` with the last observation in ``.last``.
        """
        if not timeout > 0:
            raise ValueError("timeout must be > 0")
        if not (interval > 0 and math.isfinite(interval)):
            raise ValueError("interval must be a positive number of seconds")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: Outcome | None = None
        source = target.source
        if not isinstance(source, Adapter):
            raise TypeError(f"{target!r} was not made by an adapter of this library")
        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    pause = interval
                    try:
                        last = await source.fetch(target)
                    except _PERMANENT:
                        raise
                    except PipestatusError as exc:
                        last = settled(exc)  # kept as WaitTimeout.last: keeps nothing else
                        if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
                            pause = max(interval, exc.retry_after)  # the server said when
                    else:
                        if last.status.is_terminal:
                            return last
                    await self._sleep(max(0.0, min(pause, deadline - loop.time())))
        except TimeoutError:
            raise WaitTimeout(
                f"{target!r} did not finish within {timeout:g} s (last: {_brief(last)})",
                last=last,
            ) from None

    def watcher(
        self,
        targets: Iterable[Target] = (),
        *,
        interval: float = 30.0,
        idle_interval: float | None = None,
        errors: bool = False,
        max_error_interval: float | None = None,
        seed: int | None = None,
        store: Store | None = None,
        publish: Publisher | None = None,
    ) -> Watcher:
        """A :class:`Watcher` over ``targets``; use it with ``async with`` and ``async for``.
        ``store`` and ``publish``: see :meth:`watch`."""
        return Watcher(
            targets,
            interval=interval,
            idle_interval=idle_interval,
            errors=errors,
            max_error_interval=max_error_interval,
            seed=seed,
            store=store,
            publish=publish,
        )

    async def watch(
        self,
        targets: Iterable[Target],
        interval: float = 30.0,
        *,
        idle_interval: float | None = None,
        errors: bool = False,
        max_error_interval: float | None = None,
        store: Store | None = None,
        publish: Publisher | None = None,
    ) -> AsyncGenerator[Change, None]:
        """Yield a ``Change`` for each target's first observation, then whenever its run
        changes (another run, or the status or raw status of the run, a stage or a job).

        Errors are logged; ``errors=True`` also yields them. Close it with ``aclose()`` (or
        ``contextlib.aclosing``) to stop every request at once.

        ``store`` (``pipestatus.store.SQLiteStore(path)``, ``RedisStore(url)``) makes the
        watch durable: started again on the same store, it announces what changed meanwhile
        (never ``first`` again), and each change is written before it is yielded, so a crash
        repeats at most the change in hand. ``publish`` (``pipestatus.stream.RedisStream``)
        appends each change to a Redis stream in the same transaction; several watches on one
        Redis share the targets between them.
        """
        async with self.watcher(
            targets,
            interval=interval,
            idle_interval=idle_interval,
            errors=errors,
            max_error_interval=max_error_interval,
            store=store,
            publish=publish,
        ) as watcher:
            async for change in watcher:
                yield change


def _brief(outcome: Outcome | None) -> str:
    if outcome is None:
        return "nothing"
    if isinstance(outcome, Run):
        return f"{outcome.status.value} ({outcome.raw_status})"
    return f"{type(outcome).__name__}"
