"""``pipestatus events --redis URL --group G``: a consumer group's changes as JSON Lines.

Each change that watches publish (``pipestatus watch --redis URL``) is printed once per group:
one JSON object a line on standard output, acknowledged once printed; what a consumer of the
group left unacknowledged (it died mid-batch) is claimed after ``--claim-idle`` seconds. It
reads until SIGTERM (exit 0) or Ctrl-C (130); Redis going away is said once on standard error,
and reading goes on when it is back.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
from typing import Any

from pipestatus.cli.args import count, positive, subcommand, verbose_option
from pipestatus.cli.config import ConfigError
from pipestatus.cli.durable import STREAM, say_outages
from pipestatus.cli.runtime import EXIT_OK, EXIT_USAGE, run
from pipestatus.cli.safe import clean, clean_change
from pipestatus.cli.screen import say_problems, write_json
from pipestatus.errors import StoreError, StoreUnavailableError

__all__ = ["cmd_events", "define", "event_record", "handler"]


DESCRIPTION = """\
Print the changes that watches publish to Redis (`pipestatus watch --redis URL`), one JSON
object a line, each once per consumer group: a record is acknowledged once printed, and what
another consumer of the group left unacknowledged (it died mid-batch) is taken over after
--claim-idle seconds. Reads until SIGTERM (exit 0) or Ctrl-C (130); Redis going away is said
once on stderr, and reading goes on when it is back. Reads no configuration file."""

EXAMPLE = """\
  pipestatus events --redis redis://127.0.0.1:6379/0 --group bots
  pipestatus events --redis redis://127.0.0.1:6379/0 --group audit --from-start | jq .kind"""


def define(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    events = subcommand(
        sub,
        "events",
        summary="a consumer group's changes from Redis, as JSON Lines",
        description=DESCRIPTION,
        example=EXAMPLE,
    )
    events.add_argument("--redis", metavar="URL", required=True, help="redis://host:port/db")
    events.add_argument("--group", required=True, help="the consumer group (created if new)")
    events.add_argument(
        "--consumer", help="this reader's name in the group (default: host and process ID)"
    )
    events.add_argument("--stream", default=STREAM, help="the stream to read")
    events.add_argument(
        "--from-start",
        action="store_true",
        help="a new group starts with everything the stream holds (default: what comes next)",
    )
    events.add_argument(
        "--claim-idle",
        type=positive,
        default=30.0,
        metavar="S",
        help="take over what another consumer left unacknowledged S seconds",
    )
    events.add_argument("--count", type=count(1, 10_000), default=100, help="entries per read")
    verbose_option(events)
    events.set_defaults(handler=handler)


def handler(args: argparse.Namespace) -> int:
    return run(cmd_events(args))


def event_record(event: Any) -> dict[str, Any]:
    """One JSON Lines record: the change's ID, the stream entry, when it was seen, its kind,
    the target (vendor, base URL, scope, IDs), and the previous and current observations."""
    from pipestatus.watch.codec import encode_outcome, loads

    vendor, base_url, scope, ids = loads(event.key)
    change = clean_change(event.change)  # what a vendor sent is cleaned, as on every output
    vendor, base_url, ids = clean(vendor), clean(base_url), [clean(i) for i in ids]
    scope = {clean(k): clean(v) for k, v in scope.items()}
    return {
        "id": event.id,
        "stream_id": event.stream_id,
        "at": event.at.isoformat(),
        "kind": change.kind.value,
        "target": {"vendor": vendor, "base_url": base_url, "scope": scope, "ids": ids},
        "previous": encode_outcome(change.previous) if change.previous is not None else None,
        "current": encode_outcome(change.current),
    }


async def cmd_events(args: argparse.Namespace) -> int:
    """Print the group's changes, acknowledging each once it is printed."""
    try:
        from pipestatus.stream import RedisStream

        stream = RedisStream(args.redis, stream=args.stream)
    except (ImportError, ValueError, TypeError) as exc:
        raise ConfigError(f"--redis: {exc}") from None
    if not args.verbose:
        say_outages()
    consumer = args.consumer or f"{socket.gethostname()}:{os.getpid()}"
    reading = stream.consume(
        args.group,
        consumer,
        start="0" if args.from_start else "$",
        count=args.count,
        claim_idle=args.claim_idle,
    )
    try:
        async with contextlib.aclosing(reading):
            async for event in reading:
                write_json(event_record(event))
                with contextlib.suppress(StoreUnavailableError):
                    await event.ack()  # if Redis went away, the event comes again (same ID)
    except StoreError as exc:  # the stream's key holds someone else's data
        say_problems([str(exc)])
        return EXIT_USAGE
    finally:
        await stream.aclose()
    return EXIT_OK
