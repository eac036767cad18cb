"""The commands that read a configuration (``status``, ``watch``, ``cctray``) and ``init``,
the exit statuses, and running a command's coroutine with Ctrl-C and SIGTERM handled.

Exit status: 0 every pipeline was read; 1 some pipeline could not be read; 2 a usage or
configuration error, which wins over 3: a status named by ``--fail-on``, which wins over 1; 130
interrupted by Ctrl-C (SIGINT). SIGTERM ends a watch or a served feed normally (0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeAlias

from pipestatus.cli.cctray import cctray_project, render_cctray, serve_feed
from pipestatus.cli.config import EXAMPLE, Config, Followed, follow_targets, setup_problems
from pipestatus.cli.durable import durable_from_args
from pipestatus.cli.follow import follow
from pipestatus.cli.output import out, printer, say_problems, use_color
from pipestatus.cli.render import iso, pipeline_record, render_table, table_row
from pipestatus.client import Client
from pipestatus.errors import PipestatusError, StoreError
from pipestatus.model import Run, Target
from pipestatus.status import Status

__all__ = [
    "EXIT_FAIL_ON",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNREADABLE",
    "EXIT_USAGE",
    "cmd_cctray",
    "cmd_init",
    "cmd_status",
    "cmd_watch",
    "exit_status",
    "make_client",
    "run",
    "setup_logging",
]

Outcome: TypeAlias = Run | PipestatusError

EXIT_OK: Final = 0
EXIT_UNREADABLE: Final = 1
EXIT_USAGE: Final = 2
EXIT_FAIL_ON: Final = 3
EXIT_INTERRUPTED: Final = 130


def make_client(args: argparse.Namespace) -> Client:
    """The client of a command, with its ``--timeout`` and ``--retries``."""
    return Client(timeout=args.timeout, retries=args.retries)


def exit_status(
    config: Config,
    followed: Sequence[Followed],
    outcomes: Mapping[Target, Outcome],
    fail_on: frozenset[Status] = frozenset(),
) -> int:
    """2 (and a line on stderr) for an account that cannot be used, else 3 for a status in
    ``fail_on``, else 1 for a pipeline that could not be read, else 0."""
    problems = setup_problems(config, followed, outcomes)
    say_problems(problems)
    if problems:
        return EXIT_USAGE
    if fail_on & {o.status for o in outcomes.values() if isinstance(o, Run)}:
        return EXIT_FAIL_ON
    unread = any(isinstance(o, PipestatusError) for o in outcomes.values())
    return EXIT_UNREADABLE if unread else EXIT_OK


async def cmd_status(args: argparse.Namespace, config: Config, tokens: dict[str, str]) -> int:
    """Poll once; print the table (or one JSON document)."""
    async with make_client(args) as client:
        followed = follow_targets(client, config, tokens)
        outcomes = await client.poll(item.target for item in followed)
    now = datetime.now(UTC)
    if args.json:
        records = [pipeline_record(item, outcomes[item.target]) for item in followed]
        out(json.dumps({"checked_at": iso(now), "pipelines": records}, indent=2))
    else:
        rows = [table_row(item, outcomes[item.target], now) for item in followed]
        for line in render_table(rows, color=use_color(sys.stdout)):
            out(line)
    return exit_status(config, followed, outcomes, args.fail_on)


async def cmd_watch(args: argparse.Namespace, config: Config, tokens: dict[str, str]) -> int:
    """Print one line (or JSON Lines record) per change until ``--duration`` ends."""

    async def check(first: dict[Target, Outcome]) -> list[str]:
        return setup_problems(config, followed, first)

    durable = durable_from_args(args)
    async with make_client(args) as client:
        followed = follow_targets(client, config, tokens)
        try:
            problems = await follow(
                client,
                followed,
                interval=args.interval,
                duration=args.duration,
                on_change=printer(followed, args.json),
                first_round=check,
                store=durable.store,
                publish=durable.publish,
            )
        except StoreError as exc:  # a state file or Redis that cannot be used
            problems = [str(exc)]
    say_problems(problems)
    return EXIT_USAGE if problems else EXIT_OK


async def cmd_cctray(args: argparse.Namespace, config: Config, tokens: dict[str, str]) -> int:
    """Print the CCTray feed once, or serve it (``--serve HOST:PORT``)."""
    async with make_client(args) as client:
        followed = follow_targets(client, config, tokens)
        if args.serve is None:
            outcomes = await client.poll(item.target for item in followed)
            now = datetime.now(UTC)
            sys.stdout.write(
                render_cctray(cctray_project(f, outcomes[f.target], None, now) for f in followed)
            )
            return exit_status(config, followed, outcomes)
        host, port = args.serve
        problems = await serve_feed(
            client,
            config,
            followed,
            host=host,
            port=port,
            interval=args.interval,
            duration=args.duration,
            access_log=bool(args.verbose),
        )
    say_problems(problems)
    return EXIT_USAGE if problems else EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    """Write the example configuration (``-``: to standard output), never over a file
    without ``--force``."""
    if args.path == "-":
        sys.stdout.write(EXAMPLE)
        return EXIT_OK
    path = Path(args.path)
    try:
        with open(path, "w" if args.force else "x", encoding="utf-8") as stream:
            stream.write(EXAMPLE)
    except FileExistsError:
        say_problems([f"{path}: exists already (--force overwrites it)"])
        return EXIT_USAGE
    except OSError as exc:
        say_problems([f"{path}: cannot write: {exc.strerror or type(exc).__name__}"])
        return EXIT_USAGE
    out(f"wrote {path}: set its accounts and pipelines, export the tokens' variables, then")
    out(f"  pipestatus status -c {path}")
    return EXIT_OK


def setup_logging(verbose: int) -> None:
    """``-v`` logs to stderr (``-vv`` at DEBUG); otherwise the library's warnings stay off
    the screen (errors reach the output anyway)."""
    if verbose:
        logging.basicConfig(
            level=logging.DEBUG if verbose > 1 else logging.INFO,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    else:
        logging.getLogger("pipestatus").addHandler(logging.NullHandler())
        logging.getLogger("pipestatus").propagate = False


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
