"""``pipestatus view NAME``: one pipeline's run as a tree of stages and jobs, with times and
web pages (or its JSON record)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from datetime import UTC, datetime

from pipestatus.cli.args import (
    client_options,
    color_option,
    config_option,
    subcommand,
    verbose_option,
)
from pipestatus.cli.config import Config, Secret
from pipestatus.cli.progress import Meter, showing
from pipestatus.cli.reading import fetch_run, find, followed_pipelines
from pipestatus.cli.records import pipeline_record
from pipestatus.cli.runtime import exit_status, load, make_client, run
from pipestatus.cli.screen import can_redraw, make_console, print_lines, write_json
from pipestatus.cli.tree import run_tree

__all__ = ["define", "handler"]

DESCRIPTION = """\
Read one pipeline's latest run and print it as a tree: the run (status, number, branch,
commit, trigger, when it started and how long it took, its page), then each stage and each of
its jobs with its status, start time (UTC), duration and page. NAME is the pipeline's name in
the configuration, or account/id when it has none."""

EXAMPLE = """\
  pipestatus view backend
  pipestatus view backend --json | jq '.stages[].jobs[] | select(.status == "failed")'"""


def define(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subcommand(
        sub,
        "view",
        summary="one run as a tree of stages and jobs",
        description=DESCRIPTION,
        example=EXAMPLE,
    )
    parser.add_argument("name", metavar="NAME", help="the pipeline's name")
    config_option(parser)
    parser.add_argument("--json", action="store_true", help="the pipeline's JSON record")
    color_option(parser)
    client_options(parser)
    verbose_option(parser)
    parser.set_defaults(handler=handler)


def handler(args: argparse.Namespace) -> int:
    config, tokens = load(args)
    return run(_view(args, config, tokens))


async def _view(args: argparse.Namespace, config: Config, tokens: Mapping[str, Secret]) -> int:
    meter = Meter()
    progress = make_console(sys.stderr, color=args.color) if can_redraw(sys.stderr) else None
    async with make_client(args, meter.sleep) as client:
        item = find(await followed_pipelines(client, config, tokens), args.name, config.source)
        async with showing(meter, progress):
            meter.start(item.account, item.home, 1)
            outcome = await fetch_run(client, item)
            meter.finish(item.account, 1)
    if args.json:
        write_json(pipeline_record(item, outcome), indent=2)
    else:
        console = make_console(sys.stdout, color=args.color)
        print_lines(console, run_tree(item, outcome, datetime.now(UTC)))
    return exit_status(config, [item], {item.target: outcome})
