"""``pipestatus cctray``: the CCTray feed (CCMenu, Nevergreen, BuildNotify read it), printed
once or served over HTTP (``--serve HOST:PORT``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from datetime import UTC, datetime

from pipestatus.cli.args import (
    client_options,
    config_option,
    host_port,
    positive,
    subcommand,
    verbose_option,
)
from pipestatus.cli.cctray import cctray_project, render_cctray, serve_feed
from pipestatus.cli.config import Config, Secret
from pipestatus.cli.progress import Meter, showing
from pipestatus.cli.reading import followed_pipelines, read_all
from pipestatus.cli.runtime import EXIT_OK, EXIT_USAGE, exit_status, load, make_client, run
from pipestatus.cli.screen import can_redraw, make_console, say_problems

__all__ = ["define", "handler"]

DESCRIPTION = """\
Print the CCTray feed of every configured pipeline once, or serve it at /cctray.xml, kept
fresh by a background watch. A served feed listens at once and keeps serving when accounts
are down, refuse their token or hang (their pipelines are Unknown until they read); --strict
waits for the first round and exits 2 if an account cannot be used."""

EXAMPLE = """\
  pipestatus cctray > cctray.xml
  pipestatus cctray --serve 127.0.0.1:8080 --interval 60"""


def define(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subcommand(
        sub,
        "cctray",
        summary="a CCTray XML feed, printed or served",
        description=DESCRIPTION,
        example=EXAMPLE,
    )
    config_option(parser)
    parser.add_argument(
        "--serve", type=host_port, metavar="HOST:PORT", help="serve /cctray.xml (port 0: any)"
    )
    parser.add_argument(
        "--interval", type=positive, default=30.0, metavar="S", help="seconds between polls"
    )
    parser.add_argument("--duration", type=positive, metavar="S", help="stop serving after S s")
    parser.add_argument(
        "--strict", action="store_true", help="exit 2 when an account cannot be used at start"
    )
    client_options(parser)
    verbose_option(parser)
    parser.set_defaults(handler=handler)


def handler(args: argparse.Namespace) -> int:
    config, tokens = load(args)
    return run(_cctray(args, config, tokens))


async def _cctray(args: argparse.Namespace, config: Config, tokens: Mapping[str, Secret]) -> int:
    meter = Meter()
    progress = make_console(sys.stderr) if can_redraw(sys.stderr) else None
    async with make_client(args, meter.sleep) as client:
        followed = await followed_pipelines(client, config, tokens)
        if args.serve is None:
            async with showing(meter, progress):
                outcomes = await read_all(client, followed, meter)
            now = datetime.now(UTC)
            sys.stdout.write(
                render_cctray(cctray_project(f, outcomes[f.target], None, now) for f in followed)
            )
            sys.stdout.flush()
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
            strict=args.strict,
            access_log=bool(args.verbose),
        )
    say_problems(problems)
    return EXIT_USAGE if problems else EXIT_OK
