"""Helpers of the service's tests: a fleet of known runs on the simulated server (every vendor
of the registry), its configuration, and the service running in the test's event loop.

The fleet's pipelines are ``{vendor}-{n}``; pipeline n of each vendor shows ``STATUSES[n %
len]``, so a test knows what every row must say. One more pipeline, ``flip``, is driven by the
test (:attr:`Fleet.flip`): set ``fleet.flip.run`` and the server answers the new run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import attrs
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from pipestatus import Client
from pipestatus.cli.config import account_scopes, load_config, resolve_tokens
from pipestatus.cli.reading import followed_pipelines
from pipestatus.cli.serveconf import resolve_service
from pipestatus.serve.metrics import Metrics
from pipestatus.serve.service import run_service
from pipestatus.testing import SimJob, SimRun, SimStage, VendorServer
from pipestatus.vendors import REGISTRY
from pipestatus.watch.records import Store

TOKEN = "tok-serve-7f3a9c1e5b"  # the vendors' token: never in any page, metric or feed
ENV = "PIPESTATUS_SERVE_TEST_TOKEN"
STATUSES = ("success", "failed", "running", "pending", "canceled", "timedout", "skipped")
#: The vendor of the ``flip`` pipeline: the last registered (the first, v4, numbers no run).
FIRST = list(REGISTRY.values())[-1]


def a_run(number: int, status: str, *, ref: str = "main", stage: str = "build") -> SimRun:
    """A run of one stage and job in ``status``, started ``number`` minutes ago (finished a
    minute later when terminal)."""
    started = datetime.now(UTC) - timedelta(minutes=number + 1)
    done = status not in ("running", "pending") and not status.startswith("raw:")
    return SimRun(
        number,
        status,
        [SimStage(stage, [SimJob("compile", status)])],
        ref=ref,
        started_at=None if status == "pending" else started,
        finished_at=started + timedelta(minutes=1, seconds=7 * number) if done else None,
        created_at=started,
    )


@attrs.define
class Flip:
    """A run source the test changes."""

    run: SimRun

    def __call__(self, elapsed: float) -> SimRun:
        return self.run


@attrs.define
class Fleet:
    server: VendorServer
    per_vendor: int
    flip: Flip
    expected: dict[str, str]  # pipeline name -> status word


def _toml(value: object) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value)


def add_fleet(server: VendorServer, per_vendor: int) -> Fleet:
    """``per_vendor`` pipelines of every vendor with known statuses, and the ``flip``."""
    expected: dict[str, str] = {}
    for spec in REGISTRY.values():
        for n in range(1, per_vendor + 1):
            status = STATUSES[n % len(STATUSES)]
            server.add_pipeline(spec.key, spec.demo.ids(n), a_run(n, status), **spec.demo.options)
            expected[f"{spec.key}-{n}"] = status
    flip = Flip(a_run(1, "success"))
    server.add_pipeline(FIRST.key, FIRST.demo.ids(per_vendor + 1), flip, **FIRST.demo.options)
    expected["flip"] = "success"
    return Fleet(server=server, per_vendor=per_vendor, flip=flip, expected=expected)


def fleet_toml(
    fleet: Fleet,
    *,
    names: Mapping[str, str] | None = None,
    tags: Mapping[str, list[str]] | None = None,
    extra: str = "",
) -> str:
    """The configuration of ``fleet`` (``names`` renames pipelines; ``extra`` is appended)."""
    names = names or {}
    tags = tags or {}
    parts = []
    for spec in REGISTRY.values():
        lines = [f"[accounts.{spec.key}]", f'vendor = "{spec.key}"']
        lines += [f"endpoint = {_toml(fleet.server.url)}", f'token_env = "{ENV}"']
        lines += [f"{key} = {_toml(value)}" for key, value in spec.demo.options.items()]
        parts.append("\n".join(lines))
    entries = [
        (spec, n, f"{spec.key}-{n}")
        for spec in REGISTRY.values()
        for n in range(1, fleet.per_vendor + 1)
    ]
    entries.append((FIRST, fleet.per_vendor + 1, "flip"))
    for spec, n, name in entries:
        lines = ["[[pipelines]]", f'account = "{spec.key}"']
        lines.append(f"name = {_toml(names.get(name, name))}")
        if name in tags:
            lines.append(f"tags = {json.dumps(tags[name])}")
        pairs = zip(spec.id_names, spec.demo.ids(n), strict=True)
        lines += [f"{key} = {_toml(value)}" for key, value in pairs]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n" + extra


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@attrs.define
class Served:
    url: str
    metrics: Metrics
    task: asyncio.Task[list[str]]


@contextlib.asynccontextmanager
async def serving(
    path: Path,
    environ: Mapping[str, str] | None = None,
    *,
    interval: float = 0.2,
    heartbeat: float = 0.5,
    grace: float = 30.0,
    notifier_options: dict[str, Any] | None = None,
    retries: int = 0,
    request_timeout: float = 2.0,
    store: Store | None = None,
) -> AsyncIterator[Served]:
    """The service of the configuration at ``path``, in this event loop, on a free port."""
    env = {ENV: TOKEN, **(environ or {})}
    config = load_config(path)
    tokens = resolve_tokens(config, env)
    service = resolve_service(config.serve, config.notify, env, source=config.source)
    metrics = Metrics()
    listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def say(line: str) -> None:
        listening.set_result(line.removeprefix("serving ").rstrip("/"))

    async def no_wait(_: float) -> None:  # backoff waits are not what these tests measure
        await asyncio.sleep(0)

    async with Client(
        timeout=request_timeout, retries=retries, on_attempt=metrics.on_attempt, sleep=no_wait
    ) as client:
        followed = await followed_pipelines(client, config, tokens)
        task = asyncio.create_task(
            run_service(
                client,
                config,
                followed,
                service,
                metrics=metrics,
                host="127.0.0.1",
                port=0,
                interval=interval,
                duration=None,
                grace=grace,
                heartbeat=heartbeat,
                group_by=config.serve.group_by,
                say=say,
                notifier_options=notifier_options,
                scopes=account_scopes(client, config, tokens, followed),
                store=store,
            )
        )
        try:
            async with asyncio.timeout(10):
                await asyncio.wait([task, listening], return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                raise AssertionError(f"the service ended at once: {task.result()}")
            url = listening.result()
            yield Served(url=url, metrics=metrics, task=task)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def until(check: Any, *, within: float = 15.0, step: float = 0.05) -> Any:
    """Call the coroutine function ``check`` until it returns something true (bounded)."""
    async with asyncio.timeout(within):
        while True:
            found = await check()
            if found:
                return found
            await asyncio.sleep(step)


@attrs.define
class Received:
    path: str
    raw_query: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw)


class Receiver:
    """A chat server on 127.0.0.1: records what reaches it; ``/hang`` never answers until
    released; ``/fail`` answers 500; ``/errcode`` answers 200 with a chat error code."""

    def __init__(self) -> None:
        self.got: list[Received] = []
        self.arrived = asyncio.Condition()
        self.release = asyncio.Event()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        async with self.arrived:
            self.got.append(
                Received(
                    path=request.path,
                    raw_query=request.query_string,
                    query=parse_qs(request.query_string, keep_blank_values=True),
                    headers=dict(request.headers),
                    raw=raw,
                )
            )
            self.arrived.notify_all()
        if request.path == "/hang":
            await self.release.wait()
        if request.path == "/fail":
            return web.Response(status=500, text="no")
        if request.path == "/errcode":
            return web.json_response({"errcode": 310000, "errmsg": "sign not match"})
        if request.path.startswith("/feishu"):
            return web.json_response({"code": 0, "msg": "success"})
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def wait_for(self, path: str, count: int = 1) -> list[Received]:
        async with asyncio.timeout(10), self.arrived:
            await self.arrived.wait_for(
                lambda: len([r for r in self.got if r.path == path]) >= count
            )
        return [r for r in self.got if r.path == path]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def close(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()


# --- reading the service -----------------------------------------------------------------


class Rows(HTMLParser):
    """The page's pipeline rows: data-key -> {status, name, and each cell's text}."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: dict[str, dict[str, str]] = {}
        self._row: dict[str, str] | None = None
        self._field: str | None = None
        self.tags: list[str] = []
        self.scripts: list[str] = []
        self.hrefs: list[str] = []
        self.notes: dict[str, list[str]] = {}
        self._note: str | None = None
        self._li = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append(tag)
        if tag == "script":
            self.scripts.append(found.get("src") or "")
        if tag == "a" and found.get("href"):
            self.hrefs.append(found["href"] or "")
        if tag == "tr" and found.get("data-key"):
            self._row = {"status": found["data-status"] or "", "name": found["data-name"] or ""}
            self.rows[found["data-key"] or ""] = self._row
        if tag == "td" and self._row is not None:
            self._field = found.get("data-field")
            self._row[self._field or ""] = ""
        if tag == "div" and found.get("id") in ("accounts-down", "sinks-failing"):
            self._note = found["id"]
            self.notes[self._note or ""] = []
        if tag == "li" and self._note is not None:
            self._li = True
            self.notes[self._note].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._field = None
        if tag == "tr":
            self._row = None
        if tag == "div":
            self._note = None
        if tag == "li":
            self._li = False

    def handle_data(self, data: str) -> None:
        if self._row is not None and self._field is not None:
            self._row[self._field] += data
        if self._li and self._note is not None:
            self.notes[self._note][-1] += data


def page_rows(html: str) -> Rows:
    parser = Rows()
    parser.feed(html)
    return parser


async def get(url: str, **kwargs: Any) -> tuple[int, str, dict[str, str]]:
    """Status, text and headers (a repeated header's values joined with ", ")."""
    async with aiohttp.ClientSession() as session, session.get(url, **kwargs) as response:
        headers = {k: ", ".join(response.headers.getall(k)) for k in response.headers}
        return response.status, await response.text(), headers


async def read_all(url: str, count: int) -> dict[str, dict[str, str]]:
    """The page's rows once none of its ``count`` pipelines is still being read."""

    async def check() -> dict[str, dict[str, str]] | None:
        _, html, _ = await get(url + "/")
        rows = page_rows(html).rows
        ready = len(rows) >= count and all(r["status"] != "reading" for r in rows.values())
        return rows if ready else None

    found: dict[str, dict[str, str]] = await until(check)
    return found


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipestatus.toml"
    path.write_text(text, encoding="utf-8")
    return path


def metric_families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}
