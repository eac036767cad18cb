"""The ``pipestatus`` command: status, view, wait, watch, a CCTray feed, init, a live demo and
shell completion (``python -m pipestatus`` runs it too).

    pipestatus status [NAME ...] [--status W] [--vendor V] [--branch GLOB] [--json] [--wide]
    pipestatus view NAME [--json]                     one run as a tree of stages and jobs
    pipestatus wait NAME [--timeout S] [--interval S] a deploy gate: exit 0, 3 or 4
    pipestatus watch [--json | --live] [--strict] [--state FILE | --redis URL]
                                                      one line per change, or a live table
    pipestatus cctray [--serve HOST:PORT] [--strict]  a CCTray XML feed
    pipestatus serve [--listen HOST:PORT] [--state FILE]  dashboard, metrics, feed, notifications
    pipestatus events --redis URL --group G           a consumer group's changes, JSON Lines
    pipestatus init [PATH] [--demo] [--force]         write a commented configuration
    pipestatus demo [--speed 10] [--duration S]       a simulated fleet, watched live
    pipestatus completion bash|zsh|fish               a shell completion script

The configuration is ``-c FILE``, else found (:mod:`~pipestatus.cli.discover`). Exit status:
0 every pipeline was read (``wait``: the run succeeded or was skipped); 1 some pipeline could
not be read; 2 a usage or configuration error, which wins over 3: a status named by
``--fail-on`` (``wait``: the run failed, timed out or was canceled), which wins over 1; 4
``wait`` gave up; 130 interrupted by Ctrl-C (SIGINT). SIGTERM ends a watch or a feed with 0.

The package, by job: :mod:`~pipestatus.cli.commands` (one module per subcommand, and the
parser), :mod:`~pipestatus.cli.args` (shared argument types and options),
:mod:`~pipestatus.cli.config`, :mod:`~pipestatus.cli.convert`,
:mod:`~pipestatus.cli.credentials` and :mod:`~pipestatus.cli.discover` (the configuration
file), :mod:`~pipestatus.cli.reading` and
:mod:`~pipestatus.cli.follow` (the door to the library, where :mod:`~pipestatus.cli.safe`
cleans every string; :mod:`~pipestatus.cli.durable` opens ``--state`` and ``--redis``), the
pure renderers :mod:`~pipestatus.cli.text`,
:mod:`~pipestatus.cli.render`, :mod:`~pipestatus.cli.tree`, :mod:`~pipestatus.cli.records` and
:mod:`~pipestatus.cli.cctray` (rich renderables, JSON records, the feed), and the writers
:mod:`~pipestatus.cli.screen`, :mod:`~pipestatus.cli.live` and :mod:`~pipestatus.cli.progress`
(consoles, redrawn views, progress). :func:`main` ties them together. Only this package imports
``rich``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence

from pipestatus.cli.cctray import CCTRAY, cctray_project, render_cctray
from pipestatus.cli.commands import build_parser
from pipestatus.cli.config import ConfigError
from pipestatus.cli.records import pipeline_record
from pipestatus.cli.render import render_table
from pipestatus.cli.runtime import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, setup_logging
from pipestatus.cli.screen import say_problems
from pipestatus.cli.text import current_stage

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
        setup_logging(args.verbose)
        code: int = args.handler(args)
        return code
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
