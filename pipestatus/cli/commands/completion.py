"""``pipestatus completion bash|zsh|fish``: the shell's completion script, written from the
command's own definition (:mod:`pipestatus.cli.completion`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipestatus.cli.args import config_option, subcommand
from pipestatus.cli.completion import SHELLS, script
from pipestatus.cli.config import load_config
from pipestatus.cli.discover import find_config
from pipestatus.cli.runtime import EXIT_OK, EXIT_USAGE
from pipestatus.cli.safe import clean

__all__ = ["define", "handler"]

DESCRIPTION = """\
Print the completion script of a shell: subcommands, options and their values, files for -c,
and the names of the configured pipelines for view, wait and status."""

EXAMPLE = """\
  source <(pipestatus completion bash)                      # bash, in ~/.bashrc
  pipestatus completion zsh > "${fpath[1]}/_pipestatus"      # zsh
  pipestatus completion fish > ~/.config/fish/completions/pipestatus.fish"""


def define(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subcommand(
        sub,
        "completion",
        summary="print a shell completion script (bash, zsh, fish)",
        description=DESCRIPTION,
        example=EXAMPLE,
    )
    parser.add_argument("shell", nargs="?", choices=tuple(SHELLS), help="the shell")
    parser.add_argument(
        "--names", action="store_true", help="print the configured pipelines' names instead"
    )
    config_option(parser)
    parser.set_defaults(handler=handler, verbose=0)


def handler(args: argparse.Namespace) -> int:
    if args.names:
        path = find_config(args.config, os.environ, Path.cwd(), Path.home())
        for pipeline in load_config(path).pipelines:
            print(clean(pipeline.label))
        return EXIT_OK
    if args.shell is None:
        print(f"pipestatus completion: name a shell ({', '.join(SHELLS)})", file=sys.stderr)
        return EXIT_USAGE
    from pipestatus.cli.commands import build_parser  # the parser being completed

    sys.stdout.write(script(args.shell, build_parser()))
    return EXIT_OK
