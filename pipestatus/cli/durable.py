"""Durable and shared watching on the command line: ``--state FILE`` (SQLite) and ``--redis
URL`` (Redis for state, events and replicas), for ``watch``; ``serve --state FILE`` calls
:func:`open_durable` with its own arguments."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Final

import attrs

from pipestatus.cli.args import positive
from pipestatus.cli.config import ConfigError
from pipestatus.cli.safe import clean
from pipestatus.watch.records import Publisher, Store

__all__ = [
    "STREAM",
    "Durable",
    "add_store_options",
    "durable_from_args",
    "open_durable",
    "say_outages",
]

#: The stream ``--redis`` publishes to unless ``--stream`` says otherwise.
STREAM: Final = "pipestatus:changes"


@attrs.frozen
class Durable:
    """What a watch remembers in and publishes to (both ``None``: in memory, as before)."""

    store: Store | None = None
    publish: Publisher | None = None


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """``--state FILE`` or ``--redis URL`` (one of them), ``--stream`` and ``--heartbeat``."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--state",
        metavar="FILE",
        help="remember in this SQLite file: a restart neither repeats nor misses a change",
    )
    where.add_argument(
        "--redis",
        metavar="URL",
        help="Redis for state, events and replicas (redis://host:port/db); several watches "
        "on one Redis share the pipelines",
    )
    parser.add_argument(
        "--stream", default=STREAM, help=f"with --redis: the stream to publish to ({STREAM})"
    )
    parser.add_argument(
        "--heartbeat",
        type=positive,
        default=10.0,
        help="with --redis: a dead replica's pipelines are taken over within this many seconds",
    )


def open_durable(
    *,
    state: str | None = None,
    redis: str | None = None,
    stream: str = STREAM,
    heartbeat: float = 10.0,
) -> Durable:
    """The store (and stream) that ``--state FILE`` or ``--redis URL`` names; ``ConfigError``
    for a bad URL or a missing ``redis`` package. Nothing is opened yet: the watch opens it
    (and reports a file or server it cannot use)."""
    if state is not None and redis is not None:
        raise ConfigError("--state and --redis: choose one")
    if state is not None:
        from pipestatus.store import SQLiteStore

        return Durable(store=SQLiteStore(state))
    if redis is not None:
        from pipestatus.store import RedisStore
        from pipestatus.stream import RedisStream

        try:
            return Durable(
                store=RedisStore(redis, heartbeat=heartbeat),
                publish=RedisStream(redis, stream=stream),
            )
        except (ImportError, ValueError, TypeError) as exc:
            raise ConfigError(f"--redis: {exc}") from None
    return Durable()


def durable_from_args(args: argparse.Namespace) -> Durable:
    """:func:`open_durable` for the options :func:`add_store_options` added; without ``-v``,
    store outages are said on standard error (:func:`say_outages`)."""
    if (args.state or args.redis) and not args.verbose:
        say_outages()
    return open_durable(
        state=args.state, redis=args.redis, stream=args.stream, heartbeat=args.heartbeat
    )


class _Say(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        level = "warning" if record.levelno >= logging.WARNING else "note"
        # The message may quote a vendor (a target's repr, an error it sent): cleaned.
        print(f"pipestatus: {level}: {clean(record.getMessage())}", file=sys.stderr, flush=True)


def say_outages() -> None:
    """Say on standard error when a store or stream goes away and comes back (once each way),
    and the watch's other warnings, even without ``-v`` (which logs everything anyway)."""
    for name, level in (
        ("pipestatus.outage", logging.INFO),
        ("pipestatus.watch", logging.WARNING),
        ("pipestatus.stream", logging.WARNING),
    ):
        logger = logging.getLogger(name)
        if not any(isinstance(handler, _Say) for handler in logger.handlers):
            logger.addHandler(_Say(level))
