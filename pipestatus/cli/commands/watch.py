"""``pipestatus watch``: follow the configured pipelines, one line (or JSON Lines record) per
change, or ``--live``: a table redrawn in place, failing first."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from rich.cells import cell_len

from pipestatus.cli.args import (
    client_options,
    color_option,
    config_option,
    positive,
    subcommand,
    verbose_option,
)
from pipestatus.cli.config import Config, Followed, Secret, account_scopes, setup_problems
from pipestatus.cli.durable import Durable, add_store_options, durable_from_args
from pipestatus.cli.follow import Health, follow
from pipestatus.cli.live import LiveTable
from pipestatus.cli.reading import followed_pipelines
from pipestatus.cli.records import change_record
from pipestatus.cli.render import change_line
from pipestatus.cli.runtime import EXIT_OK, EXIT_USAGE, load, make_client, run, while_drawing
from pipestatus.cli.screen import can_redraw, make_console, out, say_problems, warn, write_json
from pipestatus.errors import PipestatusError, StoreError
from pipestatus.model import Change, Run, Target

__all__ = ["define", "handler", "printer"]

DESCRIPTION = """\
Follow every configured pipeline and print a line whenever one changes (its first sight, a
run started, finished, broke, was fixed, moved to another stage, could not be read). --json
prints JSON Lines instead; --live redraws one table in place on a terminal, failing pipelines
first (off a terminal it prints lines).

Accounts that are down, refuse their token or hang do not stop it: their pipelines show as
unreadable and are tried again on the watch's backoff; a line on stderr (under the live table,
with --live) says when an account becomes unusable and when it reads again. --strict stops
at the first round instead (exit 2).

--state FILE remembers in a SQLite file: started again, it announces what changed while it was
down (a build that broke meanwhile as broke, never as first) and nothing it announced before.
--redis URL keeps that state in Redis, publishes each change to a stream (read them with
`pipestatus events`), and shares the pipelines among every watch on the same Redis."""

EXAMPLE = """\
  pipestatus watch --live
  pipestatus watch --json --interval 60 | jq -c 'select(.kind == "broke")'
  pipestatus watch --state ~/.local/state/pipestatus.db
  pipestatus watch --redis redis://127.0.0.1:6379/0"""


def define(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subcommand(
        sub,
        "watch",
        summary="one line per change, or a live table (--live)",
        description=DESCRIPTION,
        example=EXAMPLE,
    )
    config_option(parser)
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="JSON Lines, one record per change")
    shape.add_argument("--live", action="store_true", help="a table redrawn in place")
    parser.add_argument("--wide", action="store_true", help="--live: every column")
    parser.add_argument(
        "--interval", type=positive, default=30.0, metavar="S", help="seconds between polls"
    )
    parser.add_argument("--duration", type=positive, metavar="S", help="stop after S seconds")
    parser.add_argument(
        "--strict", action="store_true", help="exit 2 when an account cannot be used at start"
    )
    add_store_options(parser)
    color_option(parser)
    client_options(parser)
    verbose_option(parser)
    parser.set_defaults(handler=handler)


def printer(followed: Sequence[Followed], as_json: bool) -> Callable[[Followed, Change], None]:
    """Print each change as a line (columns as wide as the names shown, in display cells), or
    as a JSON Lines record."""
    width = max((cell_len(item.label) for item in followed), default=0)
    vendor_width = max((cell_len(item.vendor) for item in followed), default=0)

    def show(item: Followed, change: Change) -> None:
        now = datetime.now(UTC)
        if as_json:
            write_json(change_record(item, change, now))
        else:
            out(change_line(item, change, now, width, vendor_width))

    return show


def handler(args: argparse.Namespace) -> int:
    config, tokens = load(args)
    durable = durable_from_args(args)
    return run(_watch(args, config, tokens, durable))


async def _watch(
    args: argparse.Namespace, config: Config, tokens: Mapping[str, Secret], durable: Durable
) -> int:
    async def check(first: dict[Target, Run | PipestatusError]) -> list[str]:
        return setup_problems(config, followed, first)

    async with make_client(args) as client:
        followed = await followed_pipelines(client, config, tokens)
        live = None
        if args.live and can_redraw(sys.stdout):
            console = make_console(sys.stdout, color=args.color)
            title = f"pipestatus watch: {len(followed)} pipelines of {config.source}; Ctrl-C stops"
            live = LiveTable(console, followed, title, wide=args.wide)
        show = live.update if live is not None else printer(followed, args.json)
        health = Health(config, followed, live.note if live is not None else warn)

        def on_change(item: Followed, change: Change) -> None:
            health.observe(item, change.current)
            show(item, change)

        try:
            problems = await while_drawing(
                live.run if live is not None else None,
                follow(
                    client,
                    followed,
                    interval=args.interval,
                    duration=args.duration,
                    on_change=on_change,
                    first_round=check if args.strict else None,
                    scopes=account_scopes(client, config, tokens, followed),
                    store=durable.store,
                    publish=durable.publish,
                ),
            )
        except StoreError as exc:  # a state file or Redis that cannot be used
            problems = [str(exc)]
    say_problems(problems)
    return EXIT_USAGE if problems else EXIT_OK
