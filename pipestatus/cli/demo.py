"""``pipestatus demo``: the simulated server of :mod:`pipestatus.testing` with its demo fleet,
watched live.

The fleet comes from the vendor registry: for every registered vendor, one account made from
its ``spec.demo.options`` and its ``spec.demo.credentials`` (the server's token, or credentials
the simulated server knows: one Huawei account signs with AK/SK, the other uses IAM tokens), and
the pipelines ``spec.demo.ids(1)`` ... ``spec.demo.ids(n)``, which ``make_fleet`` serves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from pipestatus.cli.commands import EXIT_OK, make_client
from pipestatus.cli.config import Followed
from pipestatus.cli.follow import follow
from pipestatus.cli.live import LiveTable
from pipestatus.cli.output import out, printer
from pipestatus.client import Client
from pipestatus.vendors import REGISTRY

__all__ = ["cmd_demo", "demo_fleet"]


def demo_fleet(client: Client, url: str, token: str, size: int) -> list[Followed]:
    """The demo fleet at ``url``: ``size`` pipelines of every registered vendor, in registry
    order, each account made from its spec's demo options and credentials (no request is
    sent)."""
    fleet = []
    for spec in REGISTRY.values():
        options = spec.options(**spec.demo.options)
        credentials = spec.demo.credentials
        secret = token if credentials is None else credentials(url, token)
        adapter = client._connect(spec, url, spec.make_auth(secret, options), options)
        for n in range(1, size + 1):
            target = adapter.target(*spec.demo.ids(n))
            fleet.append(
                Followed(
                    label="/".join(target.ids),
                    account=spec.key,
                    vendor=spec.key,
                    ids=tuple(zip(spec.id_names, target.ids, strict=True)),
                    target=target,
                    home=url,
                )
            )
    return fleet


async def cmd_demo(args: argparse.Namespace) -> int:
    """Serve the fleet, watch it: a live table on a terminal, else a line (or a JSON Lines
    record) per change."""
    from pipestatus.testing import VendorServer, make_fleet

    async with VendorServer(seed=args.seed) as server, make_client(args) as client:
        make_fleet(server, args.size, seed=args.seed, speed=args.speed)
        followed = demo_fleet(client, server.url, server.token, args.size)
        title = (
            f"pipestatus demo: {len(followed)} simulated pipelines at {server.url}"
            f" (speed {args.speed:g}); Ctrl-C to stop"
        )
        on_terminal = sys.stdout.isatty() and not args.json
        live = LiveTable(followed, title, sys.stdout) if on_terminal else None
        if live is None:
            out(title)
        drawer = asyncio.create_task(live.run()) if live else None
        try:
            await follow(
                client,
                followed,
                interval=args.interval,
                duration=args.duration,
                on_change=live.update if live else printer(followed, args.json),
                idle_interval=2 * args.interval,
            )
        finally:
            if drawer is not None and live is not None:
                drawer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await drawer
                live.close()
    return EXIT_OK
