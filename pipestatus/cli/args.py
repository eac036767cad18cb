"""What the commands share on the command line: the argument types (each refuses a bad value
with a usage error), the option groups several commands take, and the help formatter that
shows each option's default and keeps a command's example as written.

Each command defines its own subcommand (``pipestatus.cli.commands.<name>.define``); the
parser is assembled in :func:`pipestatus.cli.commands.build_parser`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import Final

from pipestatus.cli.discover import HELP as CONFIG_HELP
from pipestatus.cli.screen import COLOR_CHOICES
from pipestatus.cli.text import ERROR
from pipestatus.status import Status

__all__ = [
    "STATUS_WORDS",
    "Help",
    "Statuses",
    "Words",
    "client_options",
    "color_option",
    "config_option",
    "count",
    "host_port",
    "positive",
    "statuses",
    "subcommand",
    "verbose_option",
    "words",
]


class Help(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written; ``(default: X)`` after each option that has a
    default worth saying."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" in text
            or default in (None, False, argparse.SUPPRESS)
            or default == frozenset()
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


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


class Words:
    """Comma-separated words, each one of ``choices`` (``failed,timedout``); an argument type
    whose ``choices`` shell completion offers."""

    def __init__(self, known: Iterable[str]) -> None:
        self.choices = tuple(known)

    def __call__(self, text: str) -> frozenset[str]:
        given = [word.strip().lower() for word in text.split(",") if word.strip()]
        for word in given:
            if word not in self.choices:
                raise argparse.ArgumentTypeError(
                    f"{word!r} is not one of {', '.join(self.choices)}"
                )
        return frozenset(given)


def words(known: Iterable[str]) -> Words:
    """The argument type of comma-separated words, each one of ``known``."""
    return Words(known)


class Statuses(Words):
    """Comma-separated status words (``failed,timedout``), as ``Status`` members."""

    def __call__(self, text: str) -> frozenset[Status]:
        return frozenset(Status(word) for word in super().__call__(text))


#: The argument type of ``--fail-on``.
statuses: Final = Statuses(status.value for status in Status)


#: What ``--status`` filters on: the seven statuses, and ``error`` for unreadable pipelines.
STATUS_WORDS = (*(status.value for status in Status), ERROR)


def host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080``; ``:8080`` or ``8080`` listens on 127.0.0.1)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT with a port in 0..65535: {text!r}")
    return host, int(port)


# --- option groups --------------------------------------------------------------------------


def subcommand(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    *,
    summary: str,
    description: str,
    example: str,
) -> argparse.ArgumentParser:
    """A subcommand with its one-line summary, its description and an example."""
    return sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog=f"example:\n{example}",
        formatter_class=Help,
    )


def config_option(parser: argparse.ArgumentParser) -> None:
    """``-c FILE`` (found without it; see :mod:`pipestatus.cli.discover`)."""
    parser.add_argument("-c", "--config", metavar="FILE", help=CONFIG_HELP)


def client_options(parser: argparse.ArgumentParser, *, timeout_alias: bool = True) -> None:
    """``--request-timeout`` (also ``--timeout``, as in 0.1, where the command has no other
    timeout) and ``--retries``."""
    flags = ["--request-timeout", "--timeout"] if timeout_alias else ["--request-timeout"]
    parser.add_argument(
        *flags,
        dest="request_timeout",
        type=positive,
        default=10.0,
        metavar="S",
        help="seconds per request attempt",
    )
    parser.add_argument(
        "--retries", type=count(0), default=3, metavar="N", help="retries after a failed attempt"
    )


def color_option(parser: argparse.ArgumentParser) -> None:
    """``--color auto|always|never``."""
    parser.add_argument(
        "--color",
        choices=COLOR_CHOICES,
        default="auto",
        help="colour: auto is a terminal's, unless NO_COLOR is set or TERM=dumb",
    )


def verbose_option(parser: argparse.ArgumentParser) -> None:
    """``-v`` (``-vv``)."""
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log to stderr (-vv: debug)"
    )
