"""The ``pipestatus`` command: a live demo, status, watch and a CCTray feed.

    pipestatus demo [--speed 10] [--duration S]      a simulated fleet, watched live
    pipestatus init [PATH] [--force]                 write a commented example configuration
    pipestatus status -c FILE [--json] [--fail-on failed,timedout]
    pipestatus watch  -c FILE [--json] [--interval S] [--duration S]
    pipestatus cctray -c FILE [--serve HOST:PORT]

Exit status: 0 every pipeline was read; 1 some pipeline could not be read; 2 a usage or
configuration error (bad file, unknown key, missing environment variable, an account whose
endpoint cannot be reached or whose token is refused), which wins over 3: a status named by
``--fail-on``, which wins over 1; 130 interrupted by Ctrl-C (SIGINT). SIGTERM ends a watch or a
served feed normally (0). Pure parts (rows, JSON records, the CCTray feed) are plain functions
over the model; the I/O sits in the ``_cmd_*`` coroutines at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TextIO

from pipestatus._version import __version__
from pipestatus.cli.config import (
    EXAMPLE,
    Config,
    ConfigError,
    Followed,
    follow_targets,
    load_config,
    resolve_tokens,
    setup_problems,
)
from pipestatus.client import Client
from pipestatus.errors import PipestatusError
from pipestatus.model import Change, Job, Run, Stage, Target
from pipestatus.status import Status

__all__ = ["CCTRAY", "cctray_project", "main", "pipeline_record", "render_cctray"]

logger = logging.getLogger(__name__)

Outcome = Run | PipestatusError

EXIT_OK: Final = 0
EXIT_UNREADABLE: Final = 1
EXIT_USAGE: Final = 2
EXIT_FAIL_ON: Final = 3
EXIT_INTERRUPTED: Final = 130

#: Each status as CCTray reads it: (activity, lastBuildStatus). For a run under way,
#: lastBuildStatus is that of the last finished run seen, when a served feed has seen one.
CCTRAY: Final[dict[Status, tuple[str, str]]] = {
    Status.PENDING: ("CheckingModifications", "Unknown"),
    Status.RUNNING: ("Building", "Unknown"),
    Status.SUCCESS: ("Sleeping", "Success"),
    Status.FAILED: ("Sleeping", "Failure"),
    Status.TIMEDOUT: ("Sleeping", "Exception"),
    Status.CANCELED: ("Sleeping", "Unknown"),
    Status.SKIPPED: ("Sleeping", "Unknown"),
}
#: A pipeline that could not be read.
CCTRAY_UNREADABLE: Final = ("Sleeping", "Unknown")

_COLORS: Final[dict[str, str]] = {
    "pending": "33",
    "running": "1;36",
    "success": "32",
    "failed": "1;31",
    "timedout": "31",
    "canceled": "35",
    "skipped": "2",
    "error": "1;35",
}
_HEADER: Final = ("VENDOR", "PIPELINE", "STATUS", "STAGE", "RUN", "DURATION")


# --- pure parts: text ----------------------------------------------------------------------------


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, to the second."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def format_duration(value: timedelta | None) -> str:
    if value is None:
        return ""
    seconds = max(0, int(value.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def elapsed(run: Run, now: datetime) -> timedelta | None:
    """The run's duration, or how long it has been going."""
    if run.duration is not None:
        return run.duration
    if run.started_at is not None and not run.status.is_terminal:
        return now - run.started_at
    return None


def current_stage(run: Run) -> str | None:
    """The running stage; once finished, the stage that failed (or the last one that ran);
    before it starts, the next one."""
    names = [(stage, stage.name or stage.id) for stage in run.stages]
    for stage, name in names:
        if stage.status is Status.RUNNING:
            return name
    if run.status.is_terminal:
        bad = (Status.FAILED, Status.TIMEDOUT, Status.CANCELED)
        for stage, name in names:
            if stage.status in bad:
                return name
        ran = [name for stage, name in names if stage.status is not Status.SKIPPED]
        return ran[-1] if ran else None
    return next((name for stage, name in names if not stage.status.is_terminal), None)


def table_row(followed: Followed, outcome: Outcome | None, now: datetime) -> tuple[str, ...]:
    """The six cells of a table row; an error puts its message in a seventh."""
    head = (followed.vendor, followed.label)
    if outcome is None:
        return (*head, "", "", "", "")
    if isinstance(outcome, PipestatusError):
        return (*head, "error", "", "", "", f"{type(outcome).__name__}: {outcome}")
    number = f"#{outcome.number}" if outcome.number is not None else ""
    return (
        *head,
        outcome.status.value,
        current_stage(outcome) or "",
        number,
        format_duration(elapsed(outcome, now)),
    )


def paint(text: str, word: str, *, color: bool) -> str:
    code = _COLORS.get(word)
    return f"\x1b[{code}m{text}\x1b[0m" if color and code else text


def render_table(rows: Sequence[tuple[str, ...]], *, color: bool) -> list[str]:
    """Aligned lines, a header first; the status cell coloured (ANSI) when ``color``."""
    widths = [max(len(row[i]) for row in (_HEADER, *rows)) for i in range(len(_HEADER))]
    lines = []
    for n, row in enumerate((_HEADER, *rows)):
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[: len(_HEADER)])]
        if n:
            cells[2] = paint(cells[2], row[2], color=color)
        lines.append("  ".join([*cells, *row[len(_HEADER) :]]).rstrip())
    return lines


def change_line(followed: Followed, change: Change, now: datetime, width: int = 0) -> str:
    """One plain line for a change: local time, kind, pipeline (padded to ``width``), then
    what it is now."""
    stamp = now.astimezone().strftime("%H:%M:%S")
    status, *rest = table_row(followed, change.current, now)[2:]
    cells = "  ".join([status.ljust(8), *(cell for cell in rest if cell)])
    kind, vendor, label = change.kind.value, followed.vendor, followed.label
    return f"{stamp}  {kind:<13}  {vendor:<17}  {label:<{width}}  {cells}"


# --- pure parts: JSON -----------------------------------------------------------------------------


def pipeline_record(followed: Followed, outcome: Outcome | None) -> dict[str, Any]:
    """One pipeline as JSON: its names and IDs, then the run's fields (null when unknown),
    its stages and jobs, and ``error`` (null, or its type and message)."""
    run = outcome if isinstance(outcome, Run) else None
    error = outcome if isinstance(outcome, PipestatusError) else None
    duration = run.duration if run else None
    return {
        "name": followed.label,
        "account": followed.account,
        "vendor": followed.vendor,
        "ids": dict(followed.ids),
        **(_part(run) if run else dict.fromkeys(_PART)),
        **{key: getattr(run, key, None) for key in _RUN_FIELDS},
        "duration": duration.total_seconds() if duration is not None else None,
        "stages": [
            {
                "id": stage.id,
                "name": stage.name,
                **_part(stage),
                "jobs": [
                    {"id": job.id, "name": job.name, **_part(job), "url": job.url}
                    for job in stage.jobs
                ],
            }
            for stage in (run.stages if run else ())
        ],
        "error": {"type": type(error).__name__, "message": str(error)} if error else None,
    }


_PART: Final = ("status", "raw_status", "started_at", "finished_at")
_RUN_FIELDS: Final = ("run_id", "number", "ref", "sha", "trigger", "url")


def _part(item: Run | Stage | Job) -> dict[str, Any]:
    return {
        "status": item.status.value,
        "raw_status": item.raw_status,
        "started_at": iso(item.started_at),
        "finished_at": iso(item.finished_at),
    }


def change_record(followed: Followed, change: Change, now: datetime) -> dict[str, Any]:
    """One JSON Lines record for a change: time, kind and the previous status, then the
    pipeline's record."""
    previous = change.previous
    before = previous.status.value if isinstance(previous, Run) else None
    if isinstance(previous, PipestatusError):
        before = "error"
    record = {"time": iso(now), "kind": change.kind.value, "previous_status": before}
    record.update(pipeline_record(followed, change.current))
    return record


# --- pure parts: CCTray ---------------------------------------------------------------------------


def _label(run: Run) -> str:
    if run.number is not None:
        return str(run.number)
    return run.run_id or (run.sha or "")[:12] or "unknown"


def cctray_project(
    followed: Followed, outcome: Outcome | None, last: Run | None, read_at: datetime
) -> dict[str, str]:
    """A ``<Project>``'s attributes. ``last`` is the last finished run seen (a served feed
    keeps it), reported while another run is under way."""
    current = outcome if isinstance(outcome, Run) else None
    if current is not None and current.status.is_terminal:
        last = current
    if current is None:
        activity, status = CCTRAY_UNREADABLE
    else:
        activity, status = CCTRAY[current.status]
    shown = last or current
    if last is not None and current is not None:
        status = CCTRAY[last.status][1]
    when = None
    if shown is not None:
        when = shown.finished_at or shown.started_at
    return {
        "name": followed.label,
        "activity": activity,
        "lastBuildStatus": status,
        "lastBuildLabel": _label(shown) if shown is not None else "unknown",
        "lastBuildTime": iso(when or read_at) or "",
        "webUrl": (current.url if current else None)
        or (shown.url if shown else None)
        or followed.home,
    }


def render_cctray(projects: Iterable[Mapping[str, str]]) -> str:
    """The feed: ``<Projects><Project .../>...</Projects>`` with an XML declaration."""
    root = ET.Element("Projects")
    for attributes in projects:
        ET.SubElement(root, "Project", dict(attributes))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


# --- I/O ------------------------------------------------------------------------------------------


def _out(line: str = "") -> None:
    print(line, flush=True)


def _say_problems(lines: Iterable[str]) -> None:
    for line in lines:
        print(f"pipestatus: error: {line}", file=sys.stderr, flush=True)


async def _follow(
    client: Client,
    followed: Sequence[Followed],
    *,
    interval: float,
    duration: float | None,
    on_change: Callable[[Followed, Change], None],
    first_round: Callable[[dict[Target, Outcome]], Awaitable[list[str]]] | None = None,
    idle_interval: float | None = None,
) -> list[str]:
    """Watch until ``duration`` ends (or forever); after each target's first observation,
    ``first_round`` may return problems, which end the watch."""
    by_target = {item.target: item for item in followed}
    first: dict[Target, Outcome] = {}
    watcher = client.watcher(by_target, interval=interval, idle_interval=idle_interval, errors=True)
    async with watcher:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration):
                async for change in watcher:
                    on_change(by_target[change.target], change)
                    if first_round is not None and change.target not in first:
                        first[change.target] = change.current
                        if len(first) == len(by_target):
                            problems = await first_round(first)
                            if problems:
                                return problems
    return []


async def _cmd_status(args: argparse.Namespace, config: Config, tokens: dict[str, str]) -> int:
    async with _client(args) as client:
        followed = follow_targets(client, config, tokens)
        outcomes = await client.poll(item.target for item in followed)
    now = datetime.now(UTC)
    if args.json:
        records = [pipeline_record(item, outcomes[item.target]) for item in followed]
        _out(json.dumps({"checked_at": iso(now), "pipelines": records}, indent=2))
    else:
        rows = [table_row(item, outcomes[item.target], now) for item in followed]
        for line in render_table(rows, color=_color(sys.stdout)):
            _out(line)
    return _exit_status(config, followed, outcomes, args.fail_on)


def _exit_status(
    config: Config,
    followed: Sequence[Followed],
    outcomes: Mapping[Target, Outcome],
    fail_on: frozenset[Status] = frozenset(),
) -> int:
    """2 (and a line on stderr) for an account that cannot be used, else 3 for a status in
    ``fail_on``, else 1 for a pipeline that could not be read, else 0."""
    problems = setup_problems(config, followed, outcomes)
    _say_problems(problems)
    if problems:
        return EXIT_USAGE
    if fail_on & {o.status for o in outcomes.values() if isinstance(o, Run)}:
        return EXIT_FAIL_ON
    unread = any(isinstance(o, PipestatusError) for o in outcomes.values())
    return EXIT_UNREADABLE if unread else EXIT_OK


def _printer(followed: Sequence[Followed], as_json: bool) -> Callable[[Followed, Change], None]:
    """Print each change as a line, or as a JSON Lines record."""
    width = max((len(item.label) for item in followed), default=0)

    def show(item: Followed, change: Change) -> None:
        now = datetime.now(UTC)
        if as_json:
            _out(json.dumps(change_record(item, change, now)))
        else:
            _out(change_line(item, change, now, width))

    return show


async def _cmd_watch(args: argparse.Namespace, config: Config, tokens: dict[str, str]) -> int:
    async def check(first: dict[Target, Outcome]) -> list[str]:
        return setup_problems(config, followed, first)

    async with _client(args) as client:
        followed = follow_targets(client, config, tokens)
        problems = await _follow(
            client,
            followed,
            interval=args.interval,
            duration=args.duration,
            on_change=_printer(followed, args.json),
            first_round=check,
        )
    _say_problems(problems)
    return EXIT_USAGE if problems else EXIT_OK


async def _cmd_cctray(args: argparse.Namespace, config: Config, tokens: dict[str, str]) -> int:
    async with _client(args) as client:
        followed = follow_targets(client, config, tokens)
        if args.serve is None:
            outcomes = await client.poll(item.target for item in followed)
            now = datetime.now(UTC)
            sys.stdout.write(
                render_cctray(cctray_project(f, outcomes[f.target], None, now) for f in followed)
            )
            return _exit_status(config, followed, outcomes)
        return await _serve_cctray(args, config, client, followed)


async def _serve_cctray(
    args: argparse.Namespace, config: Config, client: Client, followed: list[Followed]
) -> int:
    from aiohttp import web  # only a served feed needs the server side

    seen: dict[Target, tuple[Outcome, datetime]] = {}
    last: dict[Target, Run] = {}

    def observe(item: Followed, change: Change) -> None:
        seen[change.target] = (change.current, datetime.now(UTC))
        if isinstance(change.current, Run) and change.current.status.is_terminal:
            last[change.target] = change.current

    async def feed(request: web.Request) -> web.Response:
        now = datetime.now(UTC)
        projects = []
        for item in followed:
            outcome, read_at = seen.get(item.target, (None, now))
            projects.append(cctray_project(item, outcome, last.get(item.target), read_at))
        return web.Response(text=render_cctray(projects), content_type="application/xml")

    host, port = args.serve
    app = web.Application()
    app.router.add_get("/cctray.xml", feed)
    runner = web.AppRunner(app, access_log=logger if args.verbose else None, handle_signals=False)

    async def start(first: dict[Target, Outcome]) -> list[str]:
        problems = setup_problems(config, followed, first)
        if problems:
            return problems
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            return [f"--serve {host}:{port}: cannot listen: {exc.strerror or exc}"]
        bound = runner.addresses[0][1] if runner.addresses else port
        shown = f"[{host}]" if ":" in host else host
        _out(f"serving http://{shown}:{bound}/cctray.xml")
        return []

    try:
        problems = await _follow(
            client,
            followed,
            interval=args.interval,
            duration=args.duration,
            on_change=observe,
            first_round=start,
        )
    finally:
        await runner.cleanup()
    _say_problems(problems)
    return EXIT_USAGE if problems else EXIT_OK


async def _cmd_demo(args: argparse.Namespace) -> int:
    from pipestatus.testing import VendorServer, make_fleet

    async with VendorServer(seed=args.seed) as server, _client(args) as client:
        make_fleet(server, args.size, seed=args.seed, speed=args.speed)
        repo = client.codearts_repo(server.url, token=server.token)
        v5 = client.codearts_pipeline(server.url, project_id="fleet", token=server.token)
        flow = client.yunxiao(server.url, token=server.token, organization_id="fleet-org")
        numbers = range(1, args.size + 1)
        fleet = [
            *((repo.target(2000, i), ("repository_id", "pipeline_id")) for i in numbers),
            *((v5.target(f"fleet-v5-{i:02d}"), ("pipeline_id",)) for i in numbers),
            *((flow.target(str(3000 + i)), ("pipeline_id",)) for i in numbers),
        ]
        followed = [
            Followed(
                label="/".join(target.ids),
                account=target.vendor,
                vendor=target.vendor,
                ids=tuple(zip(keys, target.ids, strict=True)),
                target=target,
                home=server.url,
            )
            for target, keys in fleet
        ]
        title = (
            f"pipestatus demo: {len(followed)} simulated pipelines at {server.url}"
            f" (speed {args.speed:g}); Ctrl-C to stop"
        )
        live = (
            _LiveTable(followed, title, sys.stdout)
            if sys.stdout.isatty() and not args.json
            else None
        )
        if live is None:
            _out(title)
        drawer = asyncio.create_task(live.run()) if live else None
        try:
            await _follow(
                client,
                followed,
                interval=args.interval,
                duration=args.duration,
                on_change=live.update if live else _printer(followed, args.json),
                idle_interval=2 * args.interval,
            )
        finally:
            if drawer is not None and live is not None:
                drawer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await drawer
                live.close()
    return EXIT_OK


class _LiveTable:
    """The demo's live table: redrawn in place twice a second (autowrap off, cursor hidden)."""

    def __init__(self, followed: Sequence[Followed], title: str, stream: TextIO) -> None:
        self.followed = followed
        self.title = title
        self.stream = stream
        self.state: dict[Target, Outcome] = {}
        self.changes = 0
        self.drawn = 0
        self.color = _color(stream)
        stream.write("\x1b[?25l\x1b[?7l")  # hide the cursor; clip long lines instead of wrapping

    def update(self, item: Followed, change: Change) -> None:
        self.state[change.target] = change.current
        self.changes += 1

    async def run(self) -> None:
        while True:
            self.draw()
            await asyncio.sleep(0.5)

    def draw(self) -> None:
        now = datetime.now(UTC)
        rows = [table_row(f, self.state.get(f.target), now) for f in self.followed]
        height = shutil.get_terminal_size().lines
        lines = render_table(rows, color=self.color)
        if len(lines) + 3 > height:
            hidden = len(lines) + 3 - height
            lines = [*lines[: max(1, len(lines) - hidden - 1)], f"... and {hidden + 1} more"]
        counts: dict[str, int] = {}
        for outcome in self.state.values():
            word = outcome.status.value if isinstance(outcome, Run) else "error"
            counts[word] = counts.get(word, 0) + 1
        summary = "  ".join(
            paint(f"{n} {w}", w, color=self.color) for w, n in sorted(counts.items())
        )
        text = [self.title, *lines, f"{self.changes} changes   {summary}"]
        up = f"\r\x1b[{self.drawn}A" if self.drawn else ""
        self.stream.write(up + "\x1b[J" + "\n".join(text) + "\n")
        self.stream.flush()
        self.drawn = len(text)

    def close(self) -> None:
        self.draw()
        self.stream.write("\x1b[?7h\x1b[?25h")
        self.stream.flush()


def _color(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def _client(args: argparse.Namespace) -> Client:
    return Client(timeout=args.timeout, retries=args.retries)


def _cmd_init(args: argparse.Namespace) -> int:
    if args.path == "-":
        sys.stdout.write(EXAMPLE)
        return EXIT_OK
    path = Path(args.path)
    try:
        with open(path, "w" if args.force else "x", encoding="utf-8") as stream:
            stream.write(EXAMPLE)
    except FileExistsError:
        _say_problems([f"{path}: exists already (--force overwrites it)"])
        return EXIT_USAGE
    except OSError as exc:
        _say_problems([f"{path}: cannot write: {exc.strerror or type(exc).__name__}"])
        return EXIT_USAGE
    _out(f"wrote {path}: set its accounts and pipelines, export the tokens' variables, then")
    _out(f"  pipestatus status -c {path}")
    return EXIT_OK


# --- arguments ------------------------------------------------------------------------------------


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def _count(low: int, high: int = 1000) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not (text.strip().isdigit() and low <= int(text) <= high):
            raise argparse.ArgumentTypeError(f"expected an integer in {low}..{high}: {text!r}")
        return int(text)

    return parse


def _statuses(text: str) -> frozenset[Status]:
    words = [word.strip().lower() for word in text.split(",") if word.strip()]
    known = [status.value for status in Status]
    for word in words:
        if word not in known:
            raise argparse.ArgumentTypeError(f"{word!r} is not one of {', '.join(known)}")
    return frozenset(Status(word) for word in words)


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT with a port in 0..65535: {text!r}")
    return host, int(port)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--timeout", type=_positive, default=10.0, help="seconds per request")
    common.add_argument("--retries", type=_count(0), default=3, help="retries after a failure")
    common.add_argument("-v", "--verbose", action="count", default=0, help="log to stderr")
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("-c", "--config", default="pipestatus.toml", help="the TOML file")
    parser = argparse.ArgumentParser(
        prog="pipestatus",
        description="The status of CI/CD pipelines, whatever vendor runs them.",
        epilog="exit status: 0 all read; 1 some pipeline unreadable; 2 usage or configuration "
        "error (bad file, key, variable, unreachable endpoint, refused token); 3 a --fail-on "
        "status; 130 interrupted (Ctrl-C)",
    )
    parser.add_argument("--version", action="version", version=f"pipestatus {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo", parents=[common], help="watch a simulated fleet live")
    demo.add_argument("--speed", type=_positive, default=10.0, help="simulated time multiplier")
    demo.add_argument("--duration", type=_positive, help="stop after this many seconds")
    demo.add_argument("--interval", type=_positive, default=1.0, help="seconds between polls")
    demo.add_argument("--size", type=_count(1, 99), default=10, help="pipelines per vendor")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--json", action="store_true", help="JSON Lines instead of the table")
    init = sub.add_parser("init", help="write a commented example configuration")
    init.add_argument("path", nargs="?", default="pipestatus.toml", help="'-': standard output")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    status = sub.add_parser("status", parents=[common, config], help="poll once and report")
    status.add_argument("--json", action="store_true", help="one JSON document")
    status.add_argument(
        "--fail-on", type=_statuses, default=frozenset(), help="e.g. failed,timedout: exit 3"
    )
    watch = sub.add_parser("watch", parents=[common, config], help="one line per change")
    watch.add_argument("--json", action="store_true", help="JSON Lines")
    watch.add_argument("--interval", type=_positive, default=30.0, help="seconds between polls")
    watch.add_argument("--duration", type=_positive, help="stop after this many seconds")
    cctray = sub.add_parser("cctray", parents=[common, config], help="a CCTray XML feed")
    cctray.add_argument("--serve", type=_host_port, metavar="HOST:PORT", help="serve /cctray.xml")
    cctray.add_argument("--interval", type=_positive, default=30.0, help="seconds between polls")
    cctray.add_argument("--duration", type=_positive, help="stop serving after this many seconds")
    return parser


def _setup_logging(verbose: int) -> None:
    if verbose:
        logging.basicConfig(
            level=logging.DEBUG if verbose > 1 else logging.INFO,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    else:  # errors reach the output; keep the library's warnings off the screen
        logging.getLogger("pipestatus").addHandler(logging.NullHandler())
        logging.getLogger("pipestatus").propagate = False


def _run(work: Coroutine[Any, Any, int]) -> int:
    """Run ``work``; SIGINT ends it with 130, SIGTERM with 0, cleanly either way."""

    async def guarded() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        caught: list[int] = []

        def stop(signum: int) -> None:
            if not caught:
                caught.append(signum)
                task.cancel()

        installed = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, stop, signum)
                installed.append(signum)
        try:
            return await work
        except asyncio.CancelledError:
            if not caught:
                raise
            task.uncancel()
            return EXIT_INTERRUPTED if caught[0] == signal.SIGINT else EXIT_OK
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)

    return asyncio.run(guarded())


def main(argv: Sequence[str] | None = None) -> int:
    """The ``pipestatus`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "init":
            return _cmd_init(args)
        _setup_logging(args.verbose)
        if args.command == "demo":
            return _run(_cmd_demo(args))
        config = load_config(args.config)
        tokens = resolve_tokens(config, os.environ)
        command = {"status": _cmd_status, "watch": _cmd_watch, "cctray": _cmd_cctray}
        return _run(command[args.command](args, config, tokens))
    except ConfigError as exc:
        _say_problems([str(exc)])
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
