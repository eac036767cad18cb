"""The standalone server: ``python -m pipestatus.testing`` (see :func:`main`).

It serves until SIGTERM or SIGINT; the first line of standard output is its URL. ``--fleet``
adds the demo fleet (:func:`pipestatus.testing.make_fleet`); each dialect adds one option of
its own that serves N static pipelines (``--repo N`` and the others: the dialect's
``standalone_option`` and ``static`` IDs), whose runs cycle through success, failure, running
and cancellation by index. The token is ``--token`` (default ``bench-token``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

from pipestatus.testing._server import VendorServer
from pipestatus.testing._sim import SimJob, SimRun, SimStage
from pipestatus.testing.dialects import DIALECTS
from pipestatus.testing.fleet import make_fleet

__all__ = ["main", "parser"]


def _dest(key: str) -> str:
    return f"static_{key}"


def parser() -> argparse.ArgumentParser:
    """The standalone server's arguments."""
    made = argparse.ArgumentParser(
        prog="python -m pipestatus.testing", description="Simulated CI vendor server."
    )
    made.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    made.add_argument("--token", default="bench-token", help="token every request must carry")
    made.add_argument("--seed", type=int, default=0, help="seed of the fleet's runs")
    made.add_argument("--fleet", action="store_true", help="add the time-driven demo fleet")
    made.add_argument("--fleet-size", type=int, default=10, help="fleet pipelines per vendor")
    made.add_argument("--speed", type=float, default=1.0, help="fleet time multiplier")
    for key, dialect in DIALECTS.items():
        flag, text = dialect.standalone_option
        made.add_argument(flag, type=int, default=0, metavar="N", dest=_dest(key), help=text)
    return made


def static_run(index: int) -> SimRun:
    """The run of the index-th static pipeline."""
    status = ("success", "failed", "running", "success", "canceled")[index % 5]
    test_status = {"running": "running", "failed": "failed", "canceled": "canceled"}.get(
        status, "success"
    )
    return SimRun(
        number=index,
        status=status,
        stages=[
            SimStage("build", [SimJob("compile", "success"), SimJob("lint", "success")]),
            SimStage("test", [SimJob("unit", test_status)]),
        ],
    )


async def _serve_forever(args: argparse.Namespace) -> None:
    async with VendorServer(token=args.token, seed=args.seed, port=args.port) as server:
        if args.fleet:
            make_fleet(server, args.fleet_size, seed=args.seed, speed=args.speed)
        for key, dialect in DIALECTS.items():
            for n in range(1, getattr(args, _dest(key)) + 1):
                ids, options = dialect.static(n)
                server.add_pipeline(key, ids, static_run(n), **options)
        sys.stdout.write(server.url + "\n")
        sys.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Run a :class:`VendorServer` until killed; the first stdout line is its URL."""
    args = parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args))
    return 0
