"""``pipestatus status [NAME ...]``: poll once and show a table (or one JSON document),
filtered by name, status, vendor and branch."""

from __future__ import annotations

import argparse
import fnmatch
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TypeAlias

from pipestatus.cli.args import (
    STATUS_WORDS,
    client_options,
    color_option,
    config_option,
    statuses,
    subcommand,
    verbose_option,
    words,
)
from pipestatus.cli.config import Config, Followed, Secret
from pipestatus.cli.progress import Meter, showing
from pipestatus.cli.reading import followed_pipelines, read_all, select
from pipestatus.cli.records import pipeline_record
from pipestatus.cli.render import make_row, status_table
from pipestatus.cli.runtime import exit_status, load, make_client, run
from pipestatus.cli.screen import can_redraw, make_console, print_lines, write_json
from pipestatus.cli.text import iso, word_of
from pipestatus.errors import PipestatusError
from pipestatus.model import Run
from pipestatus.vendors import REGISTRY

__all__ = ["define", "handler", "keep"]

Outcome: TypeAlias = Run | PipestatusError

DESCRIPTION = """\
Read every configured pipeline once (or those named) and print a table: vendor, pipeline,
status, the current stage, run number and duration; on a wide enough terminal also branch,
commit, trigger and age (--wide: always). Off a terminal the table is plain text with the six
first columns, for scripts; --json prints one JSON document with every run, stage and job."""

EXAMPLE = """\
  pipestatus status
  pipestatus status 'backend*' --status failed,timedout --branch 'release/*'
  pipestatus status --vendor {vendor} --json | jq '.pipelines[].status'
  pipestatus status --fail-on failed,timedout || echo 'something is broken'"""


def define(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subcommand(
        sub,
        "status",
        summary="poll once and show a table (or --json)",
        description=DESCRIPTION,
        example=EXAMPLE.format(vendor=next(iter(REGISTRY))),
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help="pipelines to show, by name or glob (all)"
    )
    config_option(parser)
    parser.add_argument(
        "--status",
        dest="only_status",
        type=words(STATUS_WORDS),
        default=frozenset(),
        metavar="WORDS",
        help=f"show only these statuses, comma-separated ({', '.join(STATUS_WORDS)})",
    )
    parser.add_argument(
        "--vendor",
        type=words(REGISTRY),
        default=frozenset(),
        metavar="KEYS",
        help=f"show only these vendors, comma-separated ({', '.join(REGISTRY)})",
    )
    parser.add_argument("--branch", metavar="GLOB", help="show only runs of matching branches")
    parser.add_argument("--json", action="store_true", help="one JSON document")
    parser.add_argument("--wide", action="store_true", help="every column, whatever the width")
    parser.add_argument(
        "--fail-on",
        type=statuses,
        default=frozenset(),
        metavar="WORDS",
        help="exit 3 when a shown pipeline has one of these statuses (e.g. failed,timedout)",
    )
    color_option(parser)
    client_options(parser)
    verbose_option(parser)
    parser.set_defaults(handler=handler)


def keep(args: argparse.Namespace, outcome: Outcome | None) -> bool:
    """Whether a read pipeline passes ``--status`` and ``--branch``."""
    if args.only_status and word_of(outcome) not in args.only_status:
        return False
    if args.branch is not None:
        ref = outcome.ref if isinstance(outcome, Run) else None
        return ref is not None and fnmatch.fnmatchcase(ref, args.branch)
    return True


def handler(args: argparse.Namespace) -> int:
    config, tokens = load(args)
    return run(_status(args, config, tokens))


async def _status(args: argparse.Namespace, config: Config, tokens: Mapping[str, Secret]) -> int:
    meter = Meter()
    progress = make_console(sys.stderr, color=args.color) if can_redraw(sys.stderr) else None
    async with make_client(args, meter.sleep) as client:
        followed = select(
            await followed_pipelines(client, config, tokens), args.names, config.source
        )
        followed = [item for item in followed if not args.vendor or item.vendor in args.vendor]
        async with showing(meter, progress):
            outcomes = await read_all(client, followed, meter)
    now = datetime.now(UTC)
    shown: list[Followed] = [item for item in followed if keep(args, outcomes[item.target])]
    if args.json:
        records = [pipeline_record(item, outcomes[item.target]) for item in shown]
        write_json({"checked_at": iso(now), "pipelines": records}, indent=2)
    else:
        console = make_console(sys.stdout, color=args.color)
        width = console.width if can_redraw(sys.stdout) else None
        rows = [make_row(item, outcomes[item.target], now) for item in shown]
        print_lines(console, status_table(rows, width=width, wide=args.wide))
    return exit_status(config, followed, outcomes, args.fail_on, shown=shown)
