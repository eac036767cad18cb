"""``pipestatus log NAME [JOB]``: the tail of a job's log in a pipeline's latest run (or one
named with ``--run``), its control characters made harmless before it reaches the terminal."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from pipestatus.cli.args import client_options, config_option, count, subcommand, verbose_option
from pipestatus.cli.config import Config, Followed, Secret
from pipestatus.cli.reading import UsageError, fetch_run, find, followed_pipelines
from pipestatus.cli.runtime import EXIT_OK, EXIT_UNREADABLE, load, make_client, run
from pipestatus.cli.safe import clean, clean_lines, clean_run
from pipestatus.cli.screen import say_problems
from pipestatus.client import Client
from pipestatus.errors import PipestatusError
from pipestatus.model import Job, Run
from pipestatus.status import Status
from pipestatus.vendors._base import Adapter

__all__ = ["define", "handler", "pick_job", "safe_log"]

DESCRIPTION = """\
Print the last bytes of a job's log: the job named JOB (its name or ID) of the pipeline's
latest run, or with no JOB the first job that failed (else the last job that ran). The log is
the vendor's text: control characters (escape sequences, carriage returns) are shown as U+FFFD,
line breaks kept. Only vendors with job logs have them (not CodeArts Repo v4)."""

EXAMPLE = """\
  pipestatus log backend
  pipestatus log backend unit-tests --bytes 4096
  pipestatus log backend deploy --run 41"""

#: Failed, then timed out: the first job in one of these is the one a reader wants.
_BROKEN = (Status.FAILED, Status.TIMEDOUT)


def define(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subcommand(
        sub, "log", summary="the tail of a job's log", description=DESCRIPTION, example=EXAMPLE
    )
    parser.add_argument("name", metavar="NAME", help="the pipeline's name")
    parser.add_argument("job", metavar="JOB", nargs="?", help="the job's name or ID")
    config_option(parser)
    parser.add_argument("--run", metavar="RUN", help="the run's ID (default: the latest run)")
    parser.add_argument(
        "--bytes",
        type=count(1, 16 * 1024 * 1024),
        default=65536,
        metavar="N",
        help="the last N bytes of the log",
    )
    client_options(parser)
    verbose_option(parser)
    parser.set_defaults(handler=handler)


def handler(args: argparse.Namespace) -> int:
    config, tokens = load(args)
    return run(_log(args, config, tokens))


def pick_job(run: Run, wanted: str | None) -> Job | None:
    """The job named or identified by ``wanted``; with none, the first failed or timed-out job,
    else the last job that started, else the last job."""
    jobs = run.jobs
    if wanted is not None:
        return next((job for job in jobs if wanted in (job.id, job.name)), None)
    broken = [job for job in jobs if job.status in _BROKEN]
    if broken:
        return broken[0]
    started = [job for job in jobs if job.started_at is not None] or list(jobs)
    return started[-1] if started else None


def safe_log(text: str) -> str:
    """A vendor's log text safe for a terminal: line breaks kept (CRLF as LF), every other
    control character replaced."""
    return clean_lines(text.replace("\r\n", "\n"))


async def _read_run(client: Client, item: Followed, source: Any, run_id: str | None) -> Run:
    if run_id is None:
        outcome = await fetch_run(client, item)
        if isinstance(outcome, PipestatusError):
            raise outcome
        return outcome
    return clean_run(await source.run(item.target.ids[0], run_id))


async def _log(args: argparse.Namespace, config: Config, tokens: Mapping[str, Secret]) -> int:
    async with make_client(args) as client:
        item = find(await followed_pipelines(client, config, tokens), args.name, config.source)
        source = item.target.source
        if not (isinstance(source, Adapter) and source.discovers):
            raise UsageError(f"{config.source}: {item.label}: its vendor serves no job logs")
        reader: Any = source
        try:
            found = await _read_run(client, item, reader, args.run)
            job = pick_job(found, None if args.job is None else clean(args.job))
            if job is None:
                names = ", ".join(job.name or job.id for job in found.jobs) or "none"
                raise UsageError(f"{item.label}: no job {args.job!r} in its run (jobs: {names})")
            text = await reader.log(item.target.ids[0], found.run_id, job.id, max_bytes=args.bytes)
        except PipestatusError as exc:
            say_problems([f"{item.label}: {clean(str(exc))}"])
            return EXIT_UNREADABLE
    header = f"# {item.label} #{found.number or found.run_id} {job.name or job.id} ({job.status})"
    print(clean(header), file=sys.stderr)
    sys.stdout.write(safe_log(text))
    if text and not text.endswith("\n"):
        sys.stdout.write("\n")
    sys.stdout.flush()
    return EXIT_OK
