"""``pipestatus init [PATH]``: write a commented example configuration, or (``--demo``) one
for the simulated vendor server."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipestatus.cli.args import count, subcommand
from pipestatus.cli.config import EXAMPLE
from pipestatus.cli.demo import demo_config
from pipestatus.cli.discover import FILE_NAME
from pipestatus.cli.runtime import EXIT_OK, EXIT_USAGE
from pipestatus.cli.screen import out, say_problems

__all__ = ["define", "handler"]

DESCRIPTION = """\
Write a commented configuration to PATH: one account and one pipeline of every vendor, each
key explained, to fill in; or, with --demo, accounts and pipelines of the simulated server's
demo fleet (its head says how to start the server). It never writes over a file without
--force; PATH '-' writes to standard output."""

EXAMPLE_TEXT = """\
  pipestatus init && $EDITOR pipestatus.toml
  pipestatus init --demo demo.toml --url http://127.0.0.1:8080 --size 3"""


def define(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subcommand(
        sub,
        "init",
        summary="write a commented configuration (--demo: for the simulated server)",
        description=DESCRIPTION,
        example=EXAMPLE_TEXT,
    )
    parser.add_argument(
        "path",
        nargs="?",
        default=FILE_NAME,
        metavar="PATH",
        help=f"'-': standard output ({FILE_NAME})",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    parser.add_argument(
        "--demo", action="store_true", help="the demo fleet of the simulated server"
    )
    parser.add_argument(
        "--url",
        default="http://127.0.0.1:8080",
        help="--demo: where the simulated server listens",
    )
    parser.add_argument(
        "--size", type=count(1, 99), default=3, metavar="N", help="--demo: pipelines per vendor"
    )
    parser.set_defaults(handler=handler, verbose=0)


def handler(args: argparse.Namespace) -> int:
    """Write the file (``-``: to standard output), never over a file without ``--force``."""
    text = demo_config(args.url, args.size) if args.demo else EXAMPLE
    if args.path == "-":
        sys.stdout.write(text)
        return EXIT_OK
    path = Path(args.path)
    try:
        with open(path, "w" if args.force else "x", encoding="utf-8") as stream:
            stream.write(text)
    except FileExistsError:
        say_problems([f"{path}: exists already (--force overwrites it)"])
        return EXIT_USAGE
    except OSError as exc:
        say_problems([f"{path}: cannot write: {exc.strerror or type(exc).__name__}"])
        return EXIT_USAGE
    if args.demo:
        out(f"wrote {path}: start the server as its first lines say, then")
    else:
        out(f"wrote {path}: set its accounts and pipelines, export the tokens' variables, then")
    out(f"  pipestatus status -c {path}")
    return EXIT_OK
