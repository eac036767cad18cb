"""The subcommands, one module each: every module has ``define(sub)``, which adds its
subcommand (a description, each option's default, an example) with a ``handler(args) -> int``.
A new command is a new module named in :data:`COMMANDS`."""

from __future__ import annotations

import argparse
from types import ModuleType
from typing import Final

from pipestatus._version import __version__
from pipestatus.cli.commands import (
    cctray,
    completion,
    demo,
    events,
    init,
    log,
    runs,
    serve,
    status,
    view,
    wait,
    watch,
)

__all__ = ["COMMANDS", "build_parser"]

#: Every subcommand, in the order the help lists them.
COMMANDS: Final[tuple[ModuleType, ...]] = (
    status,
    view,
    runs,
    log,
    wait,
    watch,
    cctray,
    serve,
    events,
    init,
    demo,
    completion,
)

_EPILOG: Final = """\
configuration: without -c FILE, the first of $PIPESTATUS_CONFIG, ./pipestatus.toml, and
$XDG_CONFIG_HOME/pipestatus/pipestatus.toml (else ~/.config/pipestatus/pipestatus.toml).

exit status: 0 all read (wait: the run succeeded or was skipped); 1 some pipeline unreadable;
2 usage or configuration error (bad file, key, variable, unreachable endpoint, refused token);
3 a --fail-on status (wait: the run failed, timed out or was canceled); 4 wait gave up waiting;
130 interrupted (Ctrl-C)

Run `pipestatus COMMAND --help` for a command's options and an example."""


def build_parser() -> argparse.ArgumentParser:
    """The ``pipestatus`` parser, with every subcommand of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="pipestatus",
        description="The status of CI/CD pipelines, whatever vendor runs them.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pipestatus {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.define(sub)
    return parser
