"""The CCTray feed (CCMenu, Nevergreen and BuildNotify read it): each pipeline as a
``<Project>``, as a pure function of the model, and the feed served over HTTP by a background
watch (:func:`serve_feed`)."""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Final, TypeAlias

from pipestatus.cli.config import Config, Followed, setup_problems
from pipestatus.cli.follow import Health, follow
from pipestatus.cli.safe import REPLACEMENT, clean
from pipestatus.cli.screen import out, warn
from pipestatus.cli.text import iso, page_of
from pipestatus.client import Client
from pipestatus.errors import PipestatusError
from pipestatus.model import Change, Run, Target
from pipestatus.status import Status

__all__ = [
    "CCTRAY",
    "CCTRAY_UNREADABLE",
    "cctray_project",
    "render_cctray",
    "serve_feed",
    "xml_text",
]

logger = logging.getLogger(__name__)

Outcome: TypeAlias = Run | PipestatusError

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


def _label(run: Run) -> str:
    if run.number is not None:
        return str(run.number)
    return run.run_id or (run.sha or "")[:12] or "unknown"


def cctray_project(
    followed: Followed, outcome: Outcome | None, last: Run | None, read_at: datetime
) -> dict[str, str]:
    """A ``<Project>``'s attributes. ``last`` is the last finished run seen (a served feed
    keeps it), reported while another run is under way. ``webUrl`` is the run's page, else its
    key job's (v4 gives pages on jobs only), else the page the configuration names, else the
    account's endpoint."""
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
        "webUrl": (page_of(current) if current else None)
        or (page_of(shown) if shown else None)
        or followed.page
        or followed.home,
    }


#: What XML 1.0 cannot hold, even as a character reference, beyond the code points any vendor
#: string is cleaned of: the non-characters U+FFFE and U+FFFF.
_NOT_XML: Final = re.compile("[\ufffe\uffff]")


def xml_text(text: str) -> str:
    """``text`` as an XML 1.0 document can hold it: C0 controls (which XML forbids even as
    ``&#1;``), lone surrogates (which no encoding can write) and the other unsafe code points
    replaced (:func:`pipestatus.cli.safe.clean`), and U+FFFE/U+FFFF too."""
    return _NOT_XML.sub(REPLACEMENT, clean(text))


def render_cctray(projects: Iterable[Mapping[str, str]]) -> str:
    """The feed: ``<Projects><Project .../>...</Projects>`` with an XML declaration. Every
    attribute is made XML-safe here (:func:`xml_text`), whoever made it: the feed parses
    whatever strings a vendor or a configuration holds."""
    root = ET.Element("Projects")
    for attributes in projects:
        ET.SubElement(root, "Project", {k: xml_text(v) for k, v in attributes.items()})
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


async def serve_feed(
    client: Client,
    config: Config,
    followed: Sequence[Followed],
    *,
    host: str,
    port: int,
    interval: float,
    duration: float | None,
    strict: bool = False,
    access_log: bool = False,
) -> list[str]:
    """Serve ``/cctray.xml`` at ``host:port``, kept fresh by a watch, until ``duration`` ends
    (or forever); returns the problems that stopped it (an address it cannot listen on; with
    ``strict``, an account that cannot be used).

    It listens at once: a pipeline not read yet, or whose account is down, refused or hangs,
    is in the feed as unknown and is tried again on the watch's backoff. With ``strict`` it
    listens once every pipeline was read once, and not at all if an account cannot be used."""
    from aiohttp import web  # only a served feed needs the server side

    seen: dict[Target, tuple[Outcome, datetime]] = {}
    last: dict[Target, Run] = {}
    health = Health(config, followed, warn)

    def observe(item: Followed, change: Change) -> None:
        seen[change.target] = (change.current, datetime.now(UTC))
        health.observe(item, change.current)
        if isinstance(change.current, Run) and change.current.status.is_terminal:
            last[change.target] = change.current

    async def feed(request: web.Request) -> web.Response:
        now = datetime.now(UTC)
        projects = []
        for item in followed:
            outcome, read_at = seen.get(item.target, (None, now))
            projects.append(cctray_project(item, outcome, last.get(item.target), read_at))
        return web.Response(text=render_cctray(projects), content_type="application/xml")

    app = web.Application()
    app.router.add_get("/cctray.xml", feed)
    runner = web.AppRunner(app, access_log=logger if access_log else None, handle_signals=False)

    async def listen() -> list[str]:
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            return [f"--serve {host}:{port}: cannot listen: {exc.strerror or exc}"]
        bound = runner.addresses[0][1] if runner.addresses else port
        shown = f"[{host}]" if ":" in host else host
        out(f"serving http://{shown}:{bound}/cctray.xml")
        return []

    async def start(first: dict[Target, Outcome]) -> list[str]:
        return setup_problems(config, followed, first) or await listen()

    try:
        if not strict:
            problems = await listen()
            if problems:
                return problems
        return await follow(
            client,
            followed,
            interval=interval,
            duration=duration,
            on_change=observe,
            first_round=start if strict else None,
        )
    finally:
        await runner.cleanup()
