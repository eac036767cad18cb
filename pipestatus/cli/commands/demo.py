"""``pipestatus demo``: the simulated server of :mod:`pipestatus.testing` with its demo fleet
(:func:`pipestatus.cli.demo.demo_fleet`), watched live."""

from __future__ import annotations

import argparse
import sys

from pipestatus.cli.args import (
    client_options,
    color_option,
    count,
    positive,
    subcommand,
    verbose_option,
)
from pipestatus.cli.commands.watch import printer
from pipestatus.cli.demo import demo_fleet
from pipestatus.cli.follow import follow
from pipestatus.cli.live import LiveTable
from pipestatus.cli.runtime import EXIT_OK, make_client, run, while_drawing
from pipestatus.cli.screen import can_redraw, make_console, out

__all__ = ["define", "handler"]

DESCRIPTION = """\
Start the simulated vendor server with a fleet of pipelines of every vendor (queueing,
running stage by stage, succeeding, failing, being canceled, timing out, starting again) and
watch it: a live table on a terminal, else a line (--json: a JSON Lines record) per change."""

EXAMPLE = """\
  pipestatus demo
  pipestatus demo --speed 30 --size 20
  pipestatus demo --json --duration 10 | jq -c '{name, kind, status}'"""


def define(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subcommand(
        sub,
        "demo",
        summary="watch a simulated fleet live",
        description=DESCRIPTION,
        example=EXAMPLE,
    )
    parser.add_argument("--speed", type=positive, default=10.0, help="simulated time multiplier")
    parser.add_argument("--duration", type=positive, metavar="S", help="stop after S seconds")
    parser.add_argument(
        "--interval", type=positive, default=1.0, metavar="S", help="seconds between polls"
    )
    parser.add_argument(
        "--size", type=count(1, 99), default=10, metavar="N", help="pipelines per vendor"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fleet's runs")
    parser.add_argument("--json", action="store_true", help="JSON Lines instead of the table")
    parser.add_argument("--wide", action="store_true", help="every column of the table")
    color_option(parser)
    client_options(parser)
    verbose_option(parser)
    parser.set_defaults(handler=handler)


def handler(args: argparse.Namespace) -> int:
    return run(_demo(args))


async def _demo(args: argparse.Namespace) -> int:
    """Serve the fleet, watch it: a live table on a terminal, else a line (or a JSON Lines
    record) per change; the title goes to stderr with --json, so stdout is JSON only."""
    from pipestatus.testing import VendorServer, make_fleet  # loads the simulated server

    async with VendorServer(seed=args.seed) as server, make_client(args) as client:
        make_fleet(server, args.size, seed=args.seed, speed=args.speed)
        followed = demo_fleet(client, server.url, server.token, args.size)
        title = (
            f"pipestatus demo: {len(followed)} simulated pipelines at {server.url}"
            f" (speed {args.speed:g}); Ctrl-C to stop"
        )
        live = None
        if can_redraw(sys.stdout) and not args.json:
            console = make_console(sys.stdout, color=args.color)
            live = LiveTable(console, followed, title, wide=args.wide)
        elif args.json:
            print(title, file=sys.stderr, flush=True)
        else:
            out(title)
        await while_drawing(
            live.run if live is not None else None,
            follow(
                client,
                followed,
                interval=args.interval,
                duration=args.duration,
                on_change=live.update if live is not None else printer(followed, args.json),
                idle_interval=2 * args.interval,
            ),
        )
    return EXIT_OK
