"""The service as one coroutine: the board, the notifier, the web application, and one watch
(the command's :func:`pipestatus.cli.follow.follow`, with errors) that feeds them all.

It listens at once, before the first poll: a pipeline not read yet is ``reading``; one whose
account is down, refuses its token or hangs shows as unreadable (on the page, in ``/metrics``)
once the watch's timeouts say so, and is tried again on the watch's backoff. Should the watch
itself stop on a bug, the service goes on answering, ``/healthz`` with 503, so that whatever
supervises it restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

from pipestatus.cli.config import Config, Followed
from pipestatus.cli.follow import follow
from pipestatus.cli.serveconf import Service
from pipestatus.client import Client
from pipestatus.errors import StoreError
from pipestatus.model import Change, Scope
from pipestatus.serve.app import Faces, make_app
from pipestatus.serve.board import Board
from pipestatus.serve.metrics import Metrics
from pipestatus.serve.notify import Notifier
from pipestatus.watch.records import Store

__all__ = ["run_service"]

logger = logging.getLogger("pipestatus.serve")


async def run_service(
    client: Client,
    config: Config,
    followed: Sequence[Followed],
    service: Service,
    *,
    metrics: Metrics,
    host: str,
    port: int,
    interval: float,
    duration: float | None,
    grace: float,
    heartbeat: float = 15.0,
    group_by: str = "account",
    say: Callable[[str], None] = print,
    notifier_options: dict[str, Any] | None = None,
    scopes: Mapping[Scope, Followed] | None = None,
    store: Store | None = None,
) -> list[str]:
    """Serve until ``duration`` ends (or forever); returns the problems that stopped it (an
    address it cannot listen on). ``say`` hears the address it serves at. ``scopes`` (accounts
    with ``pipelines = "GLOB"``) are listed again as the watch runs: their new pipelines join
    the board and the ones that leave are dropped from it. ``store``: the watch's state store
    (``serve --state FILE``); one it cannot use (a corrupt file, one in use elsewhere) is a
    problem returned, as at startup."""
    board = Board(config, followed, grace=grace)
    notifier = None
    if service.sinks:
        notifier = Notifier(config.notify.rules, service.sinks, **(notifier_options or {}))
    metrics.add_board(board, notifier.states if notifier is not None else tuple)
    faces = Faces(
        board=board,
        metrics=metrics,
        notifier=notifier,
        token=service.token,
        group_by=group_by,
        heartbeat=heartbeat,
    )
    runner = web.AppRunner(
        make_app(faces), access_log=None, handle_signals=False, shutdown_timeout=1.0
    )
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            return [f"--listen {host}:{port}: cannot listen: {exc.strerror or exc}"]
        bound = runner.addresses[0][1] if runner.addresses else port
        shown = f"[{host}]" if ":" in host else host
        say(f"serving http://{shown}:{bound}/")
        return await _watch(
            client, followed, board, notifier, interval, duration, scopes, store=store
        )
    finally:
        await runner.cleanup()


async def _watch(
    client: Client,
    followed: Sequence[Followed],
    board: Board,
    notifier: Notifier | None,
    interval: float,
    duration: float | None,
    scopes: Mapping[Scope, Followed] | None = None,
    store: Store | None = None,
) -> list[str]:
    def on_change(item: Followed, change: Change) -> None:
        board.observe(item, change)
        if notifier is not None:
            notifier.submit(item, change)

    loop = asyncio.get_running_loop()
    ends = None if duration is None else loop.time() + duration
    sender = asyncio.create_task(notifier.run()) if notifier is not None else None
    try:
        try:
            return await follow(
                client,
                followed,
                interval=interval,
                duration=duration,
                on_change=on_change,
                on_start=board.attach,
                scopes=scopes,
                store=store,
                on_resume=board.observe,  # the remembered rows, until they change
            )
        except StoreError as exc:  # the state file cannot be used: a usage error
            return [str(exc)]
        except Exception:  # a bug stopped the watch: /healthz says so from now on
            logger.exception("the watch stopped")
        board.running = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(ends):
                await asyncio.Event().wait()
        return []
    finally:
        board.running = False
        if sender is not None:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
