"""``pipestatus runs NAME``: one pipeline's run history, newest first (or JSON Lines)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.table import Table
from rich.text import Text

from pipestatus.cli.args import (
    client_options,
    color_option,
    config_option,
    count,
    positive,
    subcommand,
    verbose_option,
)
from pipestatus.cli.config import Config, Secret
from pipestatus.cli.reading import UsageError, find, followed_pipelines
from pipestatus.cli.records import pipeline_record
from pipestatus.cli.runtime import EXIT_OK, EXIT_UNREADABLE, load, make_client, run
from pipestatus.cli.safe import clean_run
from pipestatus.cli.screen import make_console, print_lines, say_problems, write_json
from pipestatus.cli.text import format_duration, iso, short_sha
from pipestatus.errors import PipestatusError
from pipestatus.model import Run
from pipestatus.status import Status
from pipestatus.vendors._base import Adapter

__all__ = ["define", "handler", "history_table"]

DESCRIPTION = """\
List one pipeline's runs, newest first: number, status, when it started (UTC), how long it
took, branch, commit and trigger. NAME is the pipeline's name in the configuration (or
account/id). Only vendors with a run history have it (not CodeArts Repo v4)."""

EXAMPLE = """\
  pipestatus runs backend --limit 10
  pipestatus runs backend --status failed --since 48 --json | jq .number"""


def define(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subcommand(
        sub, "runs", summary="a pipeline's run history", description=DESCRIPTION, example=EXAMPLE
    )
    parser.add_argument("name", metavar="NAME", help="the pipeline's name")
    config_option(parser)
    parser.add_argument(
        "--limit", type=count(1, 10_000), default=20, metavar="N", help="at most N runs"
    )
    parser.add_argument(
        "--since", type=positive, metavar="HOURS", help="only runs started in the last HOURS"
    )
    parser.add_argument(
        "--status",
        choices=[status.value for status in Status],
        help="only runs of this status",
    )
    parser.add_argument("--json", action="store_true", help="one JSON record per run")
    color_option(parser)
    client_options(parser)
    verbose_option(parser)
    parser.set_defaults(handler=handler)


def handler(args: argparse.Namespace) -> int:
    config, tokens = load(args)
    return run(_runs(args, config, tokens))


async def _runs(args: argparse.Namespace, config: Config, tokens: Mapping[str, Secret]) -> int:
    since = None if args.since is None else datetime.now(UTC) - timedelta(hours=args.since)
    status = None if args.status is None else Status(args.status)
    async with make_client(args) as client:
        item = find(await followed_pipelines(client, config, tokens), args.name, config.source)
        source = item.target.source
        if not (isinstance(source, Adapter) and source.discovers):
            raise UsageError(f"{config.source}: {item.label}: its vendor keeps no run history")
        history: Any = source
        runs: list[Run] = []
        try:
            async for found in history.runs(item.target.ids[0], since=since, status=status):
                runs.append(clean_run(found))
                if len(runs) >= args.limit:
                    break
        except PipestatusError as exc:
            say_problems([f"{item.label}: {exc}"])
            return EXIT_UNREADABLE
    if args.json:
        for found in runs:
            write_json(pipeline_record(item, found))
    else:
        console = make_console(sys.stdout, color=args.color)
        print_lines(console, history_table(runs))
    return EXIT_OK


def history_table(runs: list[Run]) -> Table:
    """The runs as a table (every string already cleaned)."""
    table = Table(box=None, pad_edge=False)
    for column in ("#", "status", "started", "took", "branch", "commit", "trigger"):
        table.add_column(column)
    for found in runs:
        table.add_row(
            Text("" if found.number is None else str(found.number)),
            Text(found.status.value),
            Text(iso(found.started_at) or ""),
            Text(format_duration(found.duration) if found.duration else ""),
            Text(found.ref or ""),
            Text(short_sha(found.sha)),
            Text(found.trigger or ""),
        )
    return table
