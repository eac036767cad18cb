"""The client: the adapters' factory, fan-out polling, watching and waiting.

``poll`` plans per adapter (v5 targets become batch calls; the others one request each), runs
everything at once under the transport's concurrency limit, and returns an entry for every
target. ``watch`` yields a :class:`~pipestatus.model.Change` whenever a target's run changes;
``Watcher`` is the same as an object whose targets can be added and removed while it runs.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from types import TracebackType
from typing import Final, Self

from pipestatus.errors import (
    AuthError,
    ForbiddenError,
    NotFoundError,
    PipestatusError,
    WaitTimeout,
)
from pipestatus.http import Auth, Endpoint, Session, TokenProvider, Transport
from pipestatus.model import Change, Run, Target
from pipestatus.status import Status
from pipestatus.vendors import codearts_pipeline, codearts_repo, yunxiao
from pipestatus.vendors._base import Adapter
from pipestatus.watch import Watcher

__all__ = ["Client"]

logger = logging.getLogger(__name__)

Outcome = Run | PipestatusError

_FAILURES: Final = frozenset({Status.FAILED, Status.TIMEDOUT})
#: Errors that will not go away by asking again soon: watched with the longest backoff.
_PERMANENT: Final = (AuthError, ForbiddenError, NotFoundError)


class Client:
    """One aiohttp session and one transport for any number of vendor accounts.

    Use it as an async context manager. ``timeout`` bounds each attempt (connect, redirects,
    whole body); ``retries`` is the number of retries after the first attempt; see
    :class:`pipestatus.http.Transport` for the other options. ``verify_tls=False`` turns TLS
    certificate checks off (only for test hosts); an ``ssl.SSLContext`` sets your own CAs.
    ``sleep`` replaces ``asyncio.sleep`` for backoff waits (tests pass a no-op).
    """

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
    ) -> None:
        self._transport = Transport(
            timeout=timeout,
            retries=retries,
            max_retry_wait=max_retry_wait,
            max_body_bytes=max_body_bytes,
            max_concurrency=max_concurrency,
            max_per_host=max_per_host,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            verify_tls=verify_tls,
            session=session,
            sleep=sleep,
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

    # --- adapters -------------------------------------------------------------------------------

    def codearts_repo(
        self, base_url: str, *, token: str | TokenProvider
    ) -> codearts_repo.CodeArtsRepo:
        """Huawei Cloud CodeArts Repo (API v4) at ``base_url``."""
        endpoint = Endpoint.create(codearts_repo.VENDOR, base_url, Auth("X-Auth-Token", token))
        return codearts_repo.CodeArtsRepo(self._transport, endpoint, conditional=self._conditional)

    def codearts_pipeline(
        self,
        base_url: str,
        *,
        project_id: str,
        token: str | TokenProvider,
        batch_size: int = codearts_pipeline.BATCH_SIZE,
    ) -> codearts_pipeline.CodeArtsPipeline:
        """Huawei Cloud CodeArts Pipeline (API v5) at ``base_url``, for one project."""
        endpoint = Endpoint.create(codearts_pipeline.VENDOR, base_url, Auth("X-Auth-Token", token))
        return codearts_pipeline.CodeArtsPipeline(
            self._transport,
            endpoint,
            project_id=project_id,
            batch_size=batch_size,
            conditional=self._conditional,
        )

    def yunxiao(
        self,
        base_url: str,
        *,
        token: str | TokenProvider,
        organization_id: str | None = None,
        region_edition: bool = False,
    ) -> yunxiao.YunxiaoFlow:
        """Alibaba Cloud Yunxiao Flow at ``base_url`` (see ``YunxiaoFlow`` for the path forms)."""
        endpoint = Endpoint.create(yunxiao.VENDOR, base_url, Auth("x-yunxiao-token", token))
        return yunxiao.YunxiaoFlow(
            self._transport,
            endpoint,
            organization_id=organization_id,
            region_edition=region_edition,
            conditional=self._conditional,
        )

    # --- fan-out ----------------------------------------------------------------------------------

    async def poll(self, targets: Iterable[Target]) -> dict[Target, Run | PipestatusError]:
        """Every target's latest run, or the ``PipestatusError`` that target met.

        v5 targets of one adapter go out in batch calls; the others one request each; all at
        once under ``max_concurrency``. Cancelling ``poll`` cancels all of its requests.
        """
        unique = list(dict.fromkeys(targets))
        groups: dict[Adapter, list[Target]] = {}
        for target in unique:
            source = target.source
            if not isinstance(source, Adapter):
                raise TypeError(f"{target!r} was not made by an adapter of this library")
            groups.setdefault(source, []).append(target)
        async with asyncio.TaskGroup() as tasks:
            running = [
                tasks.create_task(adapter.poll_targets(group)) for adapter, group in groups.items()
            ]
        merged: dict[Target, Outcome] = {}
        for task in running:
            merged.update(task.result())
        return {target: merged[target] for target in unique}

    async def wait(self, target: Target, *, timeout: float, interval: float = 10.0) -> Run:
        """Poll ``target`` until its latest run is terminal and return it (to gate a deploy).

        Passing errors (timeouts, 5xx after retries) are waited out; 401, 403 and 404 raise at
        once. Past ``timeout`` seconds: ``WaitTimeout`` with the last observation in ``.last``.
        """
        if not timeout > 0:
            raise ValueError("timeout must be > 0")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: Outcome | None = None
        source = target.source
        if not isinstance(source, Adapter):
            raise TypeError(f"{target!r} was not made by an adapter of this library")
        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    try:
                        last = await source.fetch(target)
                    except _PERMANENT:
                        raise
                    except PipestatusError as exc:
                        last = exc
                    else:
                        if last.status.is_terminal:
                            return last
                    await self._sleep(max(0.0, min(interval, deadline - loop.time())))
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
    ) -> Watcher:
        """A :class:`Watcher` over ``targets``; use it with ``async with`` and ``async for``."""
        return Watcher(
            targets,
            interval=interval,
            idle_interval=idle_interval,
            errors=errors,
            max_error_interval=max_error_interval,
            seed=seed,
        )

    async def watch(
        self,
        targets: Iterable[Target],
        interval: float = 30.0,
        *,
        idle_interval: float | None = None,
        errors: bool = False,
        max_error_interval: float | None = None,
    ) -> AsyncGenerator[Change, None]:
        """Yield a ``Change`` for each target's first observation, then whenever its run
        changes (another run, or the status or raw status of the run, a stage or a job).

        Errors are logged; ``errors=True`` also yields them. Close it with ``aclose()`` (or
        ``contextlib.aclosing``) to stop every request at once.
        """
        async with self.watcher(
            targets,
            interval=interval,
            idle_interval=idle_interval,
            errors=errors,
            max_error_interval=max_error_interval,
        ) as watcher:
            async for change in watcher:
                yield change


def _brief(outcome: Outcome | None) -> str:
    if outcome is None:
        return "nothing"
    if isinstance(outcome, Run):
        return f"{outcome.status.value} ({outcome.raw_status})"
    return f"{type(outcome).__name__}"
