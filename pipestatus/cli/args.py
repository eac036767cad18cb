"""The command line: the argument types (each refuses a bad value with a usage error) and the
parser of every subcommand."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from pipestatus._version import __version__
from pipestatus.status import Status

__all__ = ["build_parser", "count", "host_port", "positive", "statuses"]


def positive(text: str) -> float:
    """A positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def count(low: int, high: int = 1000) -> Callable[[str], int]:
    """An integer in ``low..high``."""

    def parse(text: str) -> int:
        if not (text.strip().isdigit() and low <= int(text) <= high):
            raise argparse.ArgumentTypeError(f"expected an integer in {low}..{high}: {text!r}")
        return int(text)

    return parse


def statuses(text: str) -> frozenset[Status]:
    """Comma-separated status words (``failed,timedout``)."""
    words = [word.strip().lower() for word in text.split(",") if word.strip()]
    known = [status.value for status in Status]
    for word in words:
        if word not in known:
            raise argparse.ArgumentTypeError(f"{word!r} is not one of {', '.join(known)}")
    return frozenset(Status(word) for word in words)


def host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080``; ``:8080`` or ``8080`` listens on 127.0.0.1)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT with a port in 0..65535: {text!r}")
    return host, int(port)


def build_parser() -> argparse.ArgumentParser:
    """The ``pipestatus`` parser: ``demo``, ``init``, ``status``, ``watch``, ``cctray`` and
    ``events``."""
    from pipestatus.cli.durable import add_store_options
    from pipestatus.cli.events import add_events_parser

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--timeout", type=positive, default=10.0, help="seconds per request")
    common.add_argument("--retries", type=count(0), default=3, help="retries after a failure")
    common.add_argument("-v", "--verbose", action="count", default=0, help="log to stderr")
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("-c", "--config", default="pipestatus.toml", help="the TOML file")
    parser = argparse.ArgumentParser(
        prog="pipestatus",
        description="The status of CI/CD pipelines, whatever vendor runs them.",
        epilog="exit status: 0 all read; 1 some pipeline unreadable; 2 usage or configuration "
        "error (bad file, key, variable, unreachable endpoint, refused token); 3 a --fail-on "
        "status; 130 interrupted (Ctrl-C)",
    )
    parser.add_argument("--version", action="version", version=f"pipestatus {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo", parents=[common], help="watch a simulated fleet live")
    demo.add_argument("--speed", type=positive, default=10.0, help="simulated time multiplier")
    demo.add_argument("--duration", type=positive, help="stop after this many seconds")
    demo.add_argument("--interval", type=positive, default=1.0, help="seconds between polls")
    demo.add_argument("--size", type=count(1, 99), default=10, help="pipelines per vendor")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--json", action="store_true", help="JSON Lines instead of the table")
    init = sub.add_parser("init", help="write a commented example configuration")
    init.add_argument("path", nargs="?", default="pipestatus.toml", help="'-': standard output")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    status = sub.add_parser("status", parents=[common, config], help="poll once and report")
    status.add_argument("--json", action="store_true", help="one JSON document")
    status.add_argument(
        "--fail-on", type=statuses, default=frozenset(), help="e.g. failed,timedout: exit 3"
    )
    watch = sub.add_parser("watch", parents=[common, config], help="one line per change")
    watch.add_argument("--json", action="store_true", help="JSON Lines")
    watch.add_argument("--interval", type=positive, default=30.0, help="seconds between polls")
    watch.add_argument("--duration", type=positive, help="stop after this many seconds")
    add_store_options(watch)
    cctray = sub.add_parser("cctray", parents=[common, config], help="a CCTray XML feed")
    cctray.add_argument("--serve", type=host_port, metavar="HOST:PORT", help="serve /cctray.xml")
    cctray.add_argument("--interval", type=positive, default=30.0, help="seconds between polls")
    cctray.add_argument("--duration", type=positive, help="stop serving after this many seconds")
    add_events_parser(sub, common)
    return parser
