"""``pipestatus wait NAME``: a deploy gate. Read the pipeline's run until it is terminal and
exit by how it ended: 0 success or skipped, 3 failed, timed out or canceled, 4 gave up waiting
(``--timeout``), 2 a usage or configuration error (no such name, an endpoint that cannot be
reached or a token refused on the first read, a pipeline the vendor does not know).

On a terminal the run's stages and jobs are redrawn in place while it runs; elsewhere one line
is printed whenever what is seen changes, then the run's tree once it ends. Passing errors
(5xx, timeouts after the client's retries) are waited out; a refused token, a forbidden or
unknown pipeline end the wait at once."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final, TypeAlias

from rich.console import Group, RenderableType
from rich.text import Text

from pipestatus.cli.args import (
    client_options,
    color_option,
    config_option,
    positive,
    subcommand,
    verbose_option,
)
from pipestatus.cli.config import Config, Followed, Secret, setup_problems
from pipestatus.cli.live import Redrawn
from pipestatus.cli.progress import Meter
from pipestatus.cli.reading import fetch_run, find, followed_pipelines
from pipestatus.cli.records import pipeline_record
from pipestatus.cli.render import make_row, problem_of
from pipestatus.cli.runtime import (
    EXIT_FAIL_ON,
    EXIT_GAVE_UP,
    EXIT_OK,
    EXIT_USAGE,
    load,
    make_client,
    run,
    while_drawing,
)
from pipestatus.cli.screen import (
    can_redraw,
    make_console,
    out,
    print_lines,
    say_problems,
    write_json,
)
from pipestatus.cli.text import format_duration, word_of
from pipestatus.cli.tree import run_tree
from pipestatus.client import Client
from pipestatus.errors import AuthError, ForbiddenError, NotFoundError, PipestatusError
from pipestatus.model import Run
from pipestatus.status import Status

__all__ = ["Waiting", "define", "handler"]

Outcome: TypeAlias = Run | PipestatusError

#: Errors that will not go away by asking again: the wait ends at once (exit 2).
PERMANENT: Final = (AuthError, ForbiddenError, NotFoundError)
#: How a run may end and still let the deploy go on.
GOOD: Final = frozenset({Status.SUCCESS, Status.SKIPPED})

DESCRIPTION = """\
Wait until NAME's run is finished, and exit by how it ended: 0 success or skipped; 3 failed,
timed out or canceled; 4 gave up waiting (--timeout); 2 a usage or configuration error. On a
terminal its stages and jobs are shown live; elsewhere a line per change, then the run's tree.

Passing errors (5xx, timeouts after the client's retries) are waited out; a refused token, a
forbidden or unknown pipeline end the wait at once (exit 2), as does an endpoint that cannot be
reached on the first read."""

EXAMPLE = """\
  pipestatus wait backend --timeout 1800 && ./deploy.sh
  pipestatus wait -c ci.toml release --interval 30 --json > release-run.json"""


def define(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subcommand(
        sub,
        "wait",
        summary="wait for a run to finish: a deploy gate (exit 0, 3 or 4)",
        description=DESCRIPTION,
        example=EXAMPLE,
    )
    parser.add_argument("name", metavar="NAME", help="the pipeline's name")
    config_option(parser)
    parser.add_argument(
        "--timeout",
        type=positive,
        default=3600.0,
        metavar="S",
        help="give up (exit 4) after this many seconds",
    )
    parser.add_argument(
        "--interval", type=positive, default=10.0, metavar="S", help="seconds between reads"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the run's JSON record at the end"
    )
    color_option(parser)
    client_options(parser, timeout_alias=False)
    verbose_option(parser)
    parser.set_defaults(handler=handler)


class Waiting:
    """What a wait has seen of ``item``: the last observation, when it began, and what it
    ended with (pure apart from the clock it is handed)."""

    def __init__(self, item: Followed, started: datetime, timeout: float, meter: Meter) -> None:
        self.item = item
        self.started = started
        self.timeout = timeout
        self.meter = meter
        self.last: Outcome | None = None
        self.last_run: Run | None = None
        self.reads = 0

    def observe(self, outcome: Outcome) -> bool:
        """Take a read; whether it differs from the one before (a line is due)."""
        before = self.line_key(self.last)
        self.last = outcome
        self.reads += 1
        if isinstance(outcome, Run):
            self.last_run = outcome
        return self.line_key(outcome) != before

    @staticmethod
    def line_key(outcome: Outcome | None) -> tuple[object, ...]:
        if isinstance(outcome, Run):
            stages = tuple((s.id, s.status) for s in outcome.stages)
            return (outcome.run_id, outcome.number, outcome.status, stages)
        return (word_of(outcome), problem_of(outcome))

    def line(self, now: datetime) -> str:
        """One plain line for what is seen now."""
        row = make_row(self.item, self.last, now)
        cells = [now.astimezone().strftime("%H:%M:%S"), self.item.label, row.word]
        cells += [row.cells[key] for key in ("stage", "run", "duration", "problem")]
        return "  ".join(cell for cell in cells if cell)

    def frame(self, now: datetime) -> RenderableType:
        """The live frame: the run's tree (the last run seen, while a read fails), then how
        long it has been waited for and what the last read met."""
        shown = self.last if isinstance(self.last, Run) or self.last_run is None else self.last_run
        waited = now - self.started
        left = max(0.0, self.timeout - waited.total_seconds())
        note = Text(f"waiting {format_duration(waited)}", style="dim")
        note.append(f" (gives up in {format_duration(timedelta(seconds=left))})")
        if self.meter.retries:
            note.append(f"; {self.meter.retries} retries")
        if isinstance(self.last, PipestatusError):
            note.append("; last read: ")
            note.append(problem_of(self.last), style="magenta")
        return Group(run_tree(self.item, shown, now), note)


def handler(args: argparse.Namespace) -> int:
    config, tokens = load(args)
    return run(_wait(args, config, tokens))


async def _wait(args: argparse.Namespace, config: Config, tokens: Mapping[str, Secret]) -> int:
    meter = Meter()
    async with make_client(args, meter.sleep) as client:
        item = find(await followed_pipelines(client, config, tokens), args.name, config.source)
        state = Waiting(item, datetime.now(UTC), args.timeout, meter)
        console = make_console(sys.stdout, color=args.color)
        live = Redrawn(console, state.frame) if can_redraw(sys.stdout) and not args.json else None
        lines = live is None and not args.json
        code, problems = await while_drawing(
            live.run if live else None, _loop(client, config, item, args, state, lines=lines)
        )
    now = datetime.now(UTC)
    if args.json:
        write_json(pipeline_record(item, state.last), indent=2)
    elif lines and state.last is not None:
        print_lines(console, run_tree(item, state.last, now))
    say_problems(problems)
    return code


async def _loop(
    client: Client,
    config: Config,
    item: Followed,
    args: argparse.Namespace,
    state: Waiting,
    *,
    lines: bool,
) -> tuple[int, list[str]]:
    """Read until the run ends, a read fails for good, or ``--timeout`` passes: the exit
    status and the problems to report."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout_at(loop.time() + args.timeout):
            while True:
                outcome = await fetch_run(client, item, detail=False)  # the status is enough
                if state.observe(outcome) and lines:
                    out(state.line(datetime.now(UTC)))
                if state.reads == 1:
                    problems = setup_problems(config, [item], {item.target: outcome})
                    if problems:
                        return EXIT_USAGE, problems
                if isinstance(outcome, PERMANENT):
                    return EXIT_USAGE, [f"{item.label}: {problem_of(outcome)}"]
                if isinstance(outcome, Run) and outcome.status.is_terminal:
                    return (EXIT_OK if outcome.status in GOOD else EXIT_FAIL_ON), []
                await asyncio.sleep(args.interval)
    except TimeoutError:
        seen = f"last seen {word_of(state.last)}" if state.last is not None else "nothing read"
        return EXIT_GAVE_UP, [f"{item.label}: gave up waiting after {args.timeout:g} s ({seen})"]
