"""What every command shares at run time: the exit statuses, the client of a command, its
configuration (found by :mod:`pipestatus.cli.discover`), logging, running a coroutine with
Ctrl-C and SIGTERM handled, and a view drawn while a coroutine works.

Exit status: 0 every pipeline was read; 1 some pipeline could not be read; 2 a usage or
configuration error, which wins over 3: a status named by ``--fail-on`` (for ``wait``: the run
failed, timed out or was canceled), which wins over 1; 4 ``wait`` gave up waiting; 130
interrupted by Ctrl-C (SIGINT). SIGTERM ends a watch or a served feed normally (0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeAlias, TypeVar

from pipestatus.cli.config import (
    Config,
    Followed,
    Secret,
    load_config,
    resolve_tokens,
    setup_problems,
)
from pipestatus.cli.discover import find_config
from pipestatus.cli.screen import CleanFormatter, say_problems
from pipestatus.client import Client
from pipestatus.errors import PipestatusError
from pipestatus.model import Run, Target
from pipestatus.status import Status

__all__ = [
    "EXIT_FAIL_ON",
    "EXIT_GAVE_UP",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNREADABLE",
    "EXIT_USAGE",
    "exit_status",
    "load",
    "make_client",
    "run",
    "setup_logging",
    "while_drawing",
]

Outcome: TypeAlias = Run | PipestatusError
T = TypeVar("T")

EXIT_OK: Final = 0
EXIT_UNREADABLE: Final = 1
EXIT_USAGE: Final = 2
EXIT_FAIL_ON: Final = 3
EXIT_GAVE_UP: Final = 4
EXIT_INTERRUPTED: Final = 130


def make_client(
    args: argparse.Namespace, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> Client:
    """The client of a command, with its ``--request-timeout`` and ``--retries``; ``sleep``
    is its backoff wait (a :class:`~pipestatus.cli.progress.Meter` counts retries with it)."""
    return Client(timeout=args.request_timeout, retries=args.retries, sleep=sleep)


def load(args: argparse.Namespace) -> tuple[Config, dict[str, Secret]]:
    """The command's configuration (``-c``, else found, see :mod:`pipestatus.cli.discover`)
    and the tokens of the accounts it uses, from the environment."""
    path = find_config(args.config, os.environ, Path.cwd(), Path.home())
    config = load_config(path)
    return config, resolve_tokens(config, os.environ)


def exit_status(
    config: Config,
    followed: Sequence[Followed],
    outcomes: Mapping[Target, Outcome],
    fail_on: frozenset[Status] = frozenset(),
    *,
    shown: Sequence[Followed] | None = None,
) -> int:
    """2 (and a line on stderr) for an account that cannot be used, else 3 for a status in
    ``fail_on``, else 1 for a pipeline that could not be read, else 0. The last two look at
    the ``shown`` pipelines only (default: all of ``followed``)."""
    problems = setup_problems(config, followed, outcomes)
    say_problems(problems)
    if problems:
        return EXIT_USAGE
    seen = [outcomes[item.target] for item in (followed if shown is None else shown)]
    if fail_on & {o.status for o in seen if isinstance(o, Run)}:
        return EXIT_FAIL_ON
    unread = any(isinstance(o, PipestatusError) for o in seen)
    return EXIT_UNREADABLE if unread else EXIT_OK


def setup_logging(verbose: int) -> None:
    """``-v`` logs to stderr (``-vv`` at DEBUG), every line cleaned of control characters;
    otherwise the library's warnings stay off the screen (errors reach the output anyway)."""
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(CleanFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.basicConfig(
            level=logging.DEBUG if verbose > 1 else logging.INFO, handlers=[handler]
        )
    else:
        logging.getLogger("pipestatus").addHandler(logging.NullHandler())
        logging.getLogger("pipestatus").propagate = False


async def while_drawing(
    draw: Callable[[], Coroutine[Any, Any, None]] | None, work: Awaitable[T]
) -> T:
    """Await ``work`` while ``draw()`` (a view's redraw loop, or ``None``) runs beside it;
    the view is stopped, and has drawn its last frame, before this returns."""
    if draw is None:
        return await work
    drawer = asyncio.create_task(draw())
    try:
        return await work
    finally:
        drawer.cancel()
        await asyncio.wait([drawer])
        if not drawer.cancelled():
            drawer.result()  # the view failed: a bug of ours, not to be lost


def run(work: Coroutine[Any, Any, int]) -> int:
    """Run ``work``; SIGINT ends it with 130, SIGTERM with 0, cleanly either way."""

    async def guarded() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        caught: list[int] = []

        def stop(signum: int) -> None:
            if not caught:
                caught.append(signum)
                task.cancel()

        installed = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, stop, signum)
                installed.append(signum)
        try:
            return await work
        except asyncio.CancelledError:
            if not caught:
                raise
            task.uncancel()
            return EXIT_INTERRUPTED if caught[0] == signal.SIGINT else EXIT_OK
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)

    return asyncio.run(guarded())
