"""The ``pipestatus`` command: a live demo, status, watch and a CCTray feed.

    pipestatus demo [--speed 10] [--duration S]      a simulated fleet, watched live
    pipestatus init [PATH] [--force]                 write a commented example configuration
    pipestatus status -c FILE [--json] [--fail-on failed,timedout]
    pipestatus watch  -c FILE [--json] [--interval S] [--duration S] [--state FILE | --redis URL]
    pipestatus cctray -c FILE [--serve HOST:PORT]
    pipestatus events --redis URL --group G          a consumer group's changes, JSON Lines

Exit status: 0 every pipeline was read; 1 some pipeline could not be read; 2 a usage or
configuration error (bad file, unknown key, missing environment variable, an account whose
endpoint cannot be reached or whose token is refused), which wins over 3: a status named by
``--fail-on``, which wins over 1; 130 interrupted by Ctrl-C (SIGINT). SIGTERM ends a watch or a
served feed normally (0).

The package, by job: :mod:`~pipestatus.cli.args` (the command line),
:mod:`~pipestatus.cli.config` and :mod:`~pipestatus.cli.convert` (the configuration file),
:mod:`~pipestatus.cli.render` (pure: rows, the table, change lines, JSON records),
:mod:`~pipestatus.cli.cctray` (the feed), :mod:`~pipestatus.cli.live` (the live table),
:mod:`~pipestatus.cli.demo`, :mod:`~pipestatus.cli.follow` (the watch loop),
:mod:`~pipestatus.cli.output` (stdout and stderr) and :mod:`~pipestatus.cli.commands` (the
commands, exit statuses and signals). :func:`main` ties them together.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence

from pipestatus.cli.args import build_parser
from pipestatus.cli.cctray import CCTRAY, cctray_project, render_cctray
from pipestatus.cli.commands import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    cmd_cctray,
    cmd_init,
    cmd_status,
    cmd_watch,
    run,
    setup_logging,
)
from pipestatus.cli.config import ConfigError, load_config, resolve_tokens
from pipestatus.cli.output import say_problems
from pipestatus.cli.render import current_stage, pipeline_record, render_table

__all__ = [
    "CCTRAY",
    "cctray_project",
    "current_stage",
    "main",
    "pipeline_record",
    "render_cctray",
    "render_table",
]


def main(argv: Sequence[str] | None = None) -> int:
    """The ``pipestatus`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "init":
            return cmd_init(args)
        setup_logging(args.verbose)
        if args.command == "demo":
            from pipestatus.cli.demo import cmd_demo  # loads the simulated server

            return run(cmd_demo(args))
        if args.command == "events":
            from pipestatus.cli.events import cmd_events  # reads no configuration

            return run(cmd_events(args))
        config = load_config(args.config)
        tokens = resolve_tokens(config, os.environ)
        command = {"status": cmd_status, "watch": cmd_watch, "cctray": cmd_cctray}
        return run(command[args.command](args, config, tokens))
    except ConfigError as exc:
        say_problems([str(exc)])
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
