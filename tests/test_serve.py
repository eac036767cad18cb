"""`pipestatus serve` over real HTTP: the service runs in the test's event loop against the
simulated vendor server (every vendor of the registry), and each face is read as a client
would: the page, `/events`, `/metrics` (prometheus-client's parser and `promtool`),
`/cctray.xml`, `/api/v1/runs`, `/healthz`, and the token guard."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from servehelp import (
    ENV,
    FIRST,
    TOKEN,
    Fleet,
    Receiver,
    a_run,
    add_fleet,
    closed_port,
    fleet_toml,
    serving,
    until,
)

from pipestatus.testing import VendorServer
from pipestatus.vendors import REGISTRY

PER_VENDOR = 3


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


@pytest.fixture
async def fleet() -> AsyncIterator[Fleet]:
    async with VendorServer(token=TOKEN) as server:
        yield add_fleet(server, PER_VENDOR)


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


async def test_the_page_lists_every_pipeline_with_its_status(fleet: Fleet, tmp_path: Path) -> None:
    """`/` lists every configured pipeline with the status its vendor reports."""
    async with serving(write(tmp_path, fleet_toml(fleet))) as served:
        rows = await read_all(served.url, len(fleet.expected))
        _, html, headers = await get(served.url + "/")
    shown = {row["name"]: row["status"] for row in rows.values()}
    assert shown == fleet.expected
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert page_rows(html).scripts == ["/static/dashboard.js"]  # its own script, no CDN


async def test_failing_pipelines_come_first_within_a_group(fleet: Fleet, tmp_path: Path) -> None:
    """Within each account's group, failing pipelines come before running and fine ones."""
    async with serving(write(tmp_path, fleet_toml(fleet))) as served:
        await read_all(served.url, len(fleet.expected))
        _, html, _ = await get(served.url + "/")
    order = [row for row in page_rows(html).rows.values() if row["name"] != "flip"]
    first_of = {row["name"].rsplit("-", 1)[0]: row for row in reversed(order)}
    assert len(first_of) == len(REGISTRY)
    for row in first_of.values():  # the first row shown of each account
        assert row["status"] in ("failed", "timedout", "error"), row


async def test_tags_group_the_page(fleet: Fleet, tmp_path: Path) -> None:
    """With group_by = "tag" a pipeline shows in the group of each of its tags."""
    text = fleet_toml(fleet, tags={"flip": ["prod", "web"]}, extra='[serve]\ngroup_by = "tag"\n')
    async with serving(write(tmp_path, text)) as served:
        await read_all(served.url, len(fleet.expected))
        _, html, _ = await get(served.url + "/")
    names = [row["name"] for row in page_rows(html).rows.values()]
    assert "flip" in names
    assert html.count('data-name="flip"') == 2  # in "prod" and in "web"
    assert ">prod</h2>" in html
    assert ">web</h2>" in html
    assert ">untagged</h2>" in html


def _families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


async def test_metrics_parse_and_pass_promtool(fleet: Fleet, tmp_path: Path) -> None:
    """/metrics parses with prometheus-client's parser, passes `promtool check metrics`, and
    has one status series per status, 1 for each pipeline's current one."""
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool (Debian's prometheus package) must be installed"
    async with serving(write(tmp_path, fleet_toml(fleet))) as served:
        await read_all(served.url, len(fleet.expected))
        status, text, headers = await get(served.url + "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = _families(text)
    current = {
        sample.labels["pipeline"]: sample.labels["status"]
        for sample in families["pipestatus_pipeline_status"].samples
        if sample.value == 1
    }
    assert current == fleet.expected
    per_pipeline = list(families["pipestatus_pipeline_status"].samples)
    assert len(per_pipeline) == len(fleet.expected) * 8  # seven statuses and error
    assert {s.labels["outcome"] for s in families["pipestatus_requests"].samples} == {"success"}
    assert families["pipestatus_request_duration_seconds"].type == "histogram"
    assert families["pipestatus_targets"].samples[0].value == len(fleet.expected)
    numbers = {
        s.labels["pipeline"]: s.value for s in families["pipestatus_pipeline_run_number"].samples
    }
    assert numbers["flip"] == 1
    checked = subprocess.run(  # noqa: ASYNC221, S603 - promtool on the text just scraped
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert TOKEN not in text


async def test_retries_and_429s_are_counted(fleet: Fleet, tmp_path: Path) -> None:
    """A 429 answered once shows as a rate-limited attempt, a retry and a success."""
    pipeline_id = FIRST.demo.ids(fleet.per_vendor + 1)[-1]
    fleet.server.fault(vendor=FIRST.key, pipeline=pipeline_id, status=429, times=1)
    async with serving(write(tmp_path, fleet_toml(fleet)), retries=2) as served:
        await read_all(served.url, len(fleet.expected))
        _, text, _ = await get(served.url + "/metrics")
    families = _families(text)

    def value(name: str, **labels: str) -> float:
        return sum(
            s.value
            for s in families[name].samples
            if s.name.endswith("_total") and all(s.labels.get(k) == v for k, v in labels.items())
        )

    assert value("pipestatus_rate_limited", vendor=FIRST.key) == 1
    assert value("pipestatus_retries", vendor=FIRST.key) >= 1
    assert value("pipestatus_requests", vendor=FIRST.key, outcome="rate_limited") == 1


async def test_a_down_account_is_marked_and_the_rest_served(fleet: Fleet, tmp_path: Path) -> None:
    """An account nobody answers for: its pipeline is an error on the page, its account is
    named as down, and /metrics says up 0; every other pipeline is served."""
    spec = FIRST
    down = "\n".join(
        [
            "[accounts.down]",
            f'vendor = "{spec.key}"',
            f'endpoint = "http://127.0.0.1:{closed_port()}"',
            f'token_env = "{ENV}"',
            *(f"{k} = {json.dumps(v)}" for k, v in spec.demo.options.items()),
            "",
            "[[pipelines]]",
            'account = "down"',
            'name = "lost"',
            *(
                f"{k} = {json.dumps(v)}"
                for k, v in zip(spec.id_names, spec.demo.ids(1), strict=True)
            ),
        ]
    )
    async with serving(write(tmp_path, fleet_toml(fleet, extra=down + "\n"))) as served:
        rows = await read_all(served.url, len(fleet.expected) + 1)
        _, html, _ = await get(served.url + "/")
        _, text, _ = await get(served.url + "/metrics")
        health_status, health, _ = await get(served.url + "/healthz")
    shown = {row["name"]: row["status"] for row in rows.values()}
    assert shown == {**fleet.expected, "lost": "error"}
    assert any(line.startswith("down:") for line in page_rows(html).notes["accounts-down"])
    families = _families(text)
    up = {s.labels["account"]: s.value for s in families["pipestatus_account_up"].samples}
    assert up["down"] == 0
    assert up[FIRST.key] == 1
    pipeline_up = {
        s.labels["pipeline"]: s.value for s in families["pipestatus_pipeline_up"].samples
    }
    assert pipeline_up["lost"] == 0
    assert pipeline_up["flip"] == 1
    assert health_status == 200
    assert json.loads(health)["accounts_down"] == ["down"]


async def test_a_hanging_poll_is_stale_on_the_page_and_in_metrics(
    fleet: Fleet, tmp_path: Path
) -> None:
    """A pipeline whose poll hangs past the grace is listed as stale in the heartbeat, in the
    API and in pipestatus_targets_overdue, and the others stay fresh."""
    pipeline_id = FIRST.demo.ids(fleet.per_vendor + 1)[-1]
    config = write(tmp_path, fleet_toml(fleet))
    async with serving(config, grace=0.3, request_timeout=60.0, interval=0.2) as served:
        await read_all(served.url, len(fleet.expected))
        hang = fleet.server.fault(vendor=FIRST.key, pipeline=pipeline_id, hang=True)
        try:

            async def overdue() -> list[dict[str, Any]]:
                _, body, _ = await get(served.url + "/api/v1/runs")
                return [p for p in json.loads(body)["pipelines"] if p["stale"]]

            stale = await until(overdue)
            _, text, _ = await get(served.url + "/metrics")
        finally:
            hang.release()
            hang.remove()
    assert [p["name"] for p in stale] == ["flip"]
    assert _families(text)["pipestatus_targets_overdue"].samples[0].value >= 1


async def test_events_carry_a_change_without_a_reload(fleet: Fleet, tmp_path: Path) -> None:
    """/events sends every row when a page connects, then the row of a run that changed."""
    async with serving(write(tmp_path, fleet_toml(fleet))) as served:
        await read_all(served.url, len(fleet.expected))
        async with aiohttp.ClientSession() as session, session.get(served.url + "/events") as r:
            assert r.headers["Content-Type"].startswith("text/event-stream")
            seen: dict[str, dict[str, Any]] = {}
            ticks = 0

            async def next_event() -> tuple[str, dict[str, Any]]:
                kind = ""
                while True:
                    line = (await r.content.readline()).decode("ascii").rstrip("\n")
                    if line.startswith("event: "):
                        kind = line.removeprefix("event: ")
                    elif line.startswith("data: "):
                        return kind, json.loads(line.removeprefix("data: "))

            async with asyncio.timeout(20):
                while len(seen) < len(fleet.expected):
                    kind, data = await next_event()
                    if kind == "row":
                        seen[data["name"]] = data
                assert seen["flip"]["status"] == "success"
                fleet.flip.run = a_run(2, "failed", stage="deploy")
                while True:
                    kind, data = await next_event()
                    ticks += kind == "tick"
                    if kind == "row" and data["name"] == "flip" and data["status"] == "failed":
                        break
    assert data["run"] == "#2"
    assert data["stage"] == "deploy"


async def test_cctray_feed_filters_by_account_and_name(fleet: Fleet, tmp_path: Path) -> None:
    """/cctray.xml lists every pipeline; ?account= and ?name= (a glob) narrow it."""
    async with serving(write(tmp_path, fleet_toml(fleet))) as served:
        await read_all(served.url, len(fleet.expected))
        _, everything, _ = await get(served.url + "/cctray.xml")
        _, one_account, _ = await get(served.url + "/cctray.xml", params={"account": FIRST.key})
        _, by_name, _ = await get(served.url + "/cctray.xml", params={"name": "fl*"})

    def names(xml: str) -> list[str]:
        return [p.attrib["name"] for p in ET.fromstring(xml.split("\n", 1)[1])]  # noqa: S314 - our feed

    assert sorted(names(everything)) == sorted(fleet.expected)
    assert sorted(names(one_account)) == sorted(
        [n for n in fleet.expected if n.startswith(FIRST.key)] + ["flip"]
    )
    assert names(by_name) == ["flip"]


async def test_api_holds_every_latest_run(fleet: Fleet, tmp_path: Path) -> None:
    """/api/v1/runs is JSON with every pipeline's latest run, as `status --json` records."""
    async with serving(write(tmp_path, fleet_toml(fleet))) as served:
        await read_all(served.url, len(fleet.expected))
        status, body, headers = await get(served.url + "/api/v1/runs")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    document = json.loads(body)
    assert {p["name"]: p["status"] for p in document["pipelines"]} == fleet.expected
    flip = next(p for p in document["pipelines"] if p["name"] == "flip")
    assert flip["number"] == 1
    assert flip["stages"][0]["name"] == "build"


async def test_healthz_is_200_while_the_watch_runs(fleet: Fleet, tmp_path: Path) -> None:
    """/healthz answers 200 and "ok" while the watch runs."""
    async with serving(write(tmp_path, fleet_toml(fleet))) as served:
        await read_all(served.url, len(fleet.expected))
        status, body, _ = await get(served.url + "/healthz")
    assert status == 200
    assert json.loads(body)["status"] == "ok"


SERVE_TOKEN = "serve-bearer-0b8d2c"
PATHS = (
    "/",
    "/events",
    "/metrics",
    "/cctray.xml",
    "/api/v1/runs",
    "/healthz",
    "/static/dashboard.js",
)


async def test_every_path_wants_the_token(fleet: Fleet, tmp_path: Path) -> None:
    """With [serve] token_env, every path answers 401 without the token or with a wrong one,
    and serves it with Bearer or with Basic (the token as the password)."""
    text = fleet_toml(fleet, extra='[serve]\ntoken_env = "SERVE_TOKEN"\n')
    environ = {"SERVE_TOKEN": SERVE_TOKEN}
    basic = base64.b64encode(f"me:{SERVE_TOKEN}".encode()).decode()
    async with serving(write(tmp_path, text), environ) as served:
        for path in PATHS:
            status, _, headers = await get(served.url + path)
            assert status == 401, path
            assert "Basic" in headers["WWW-Authenticate"]
            wrong = {"Authorization": "Bearer nope"}
            assert (await get(served.url + path, headers=wrong))[0] == 401, path
        bodies = []
        for path in PATHS:
            if path == "/events":
                continue
            for header in (f"Bearer {SERVE_TOKEN}", f"Basic {basic}"):
                status, body, _ = await get(served.url + path, headers={"Authorization": header})
                assert status == 200, (path, header)
                bodies.append(body)
    for body in bodies:
        assert SERVE_TOKEN not in body
        assert TOKEN not in body


async def test_a_broken_run_is_announced_once_and_a_failing_sink_shown(
    fleet: Fleet, tmp_path: Path
) -> None:
    """When the flip pipeline breaks, the webhook sink gets one "broke" message; a sink that
    keeps failing is named on the page, on /healthz and in /metrics, and the watch goes on."""
    receiver = Receiver()
    await receiver.start()
    try:
        extra = f"""
[notify.sinks.hook]
kind = "webhook"
url = "{receiver.url}/hook"

[notify.sinks.broken]
kind = "slack"
url_env = "BROKEN_HOOK"
retries = 0

[[notify.rules]]
sinks = ["hook", "broken"]
pipelines = ["flip"]
"""
        environ = {"BROKEN_HOOK": f"{receiver.url}/fail"}
        config = write(tmp_path, fleet_toml(fleet, extra=extra))
        async with serving(config, environ) as served:
            await read_all(served.url, len(fleet.expected))
            fleet.flip.run = a_run(2, "failed")
            (got,) = await receiver.wait_for("/hook")
            await receiver.wait_for("/fail")

            async def failing_shown() -> str | None:
                _, html, _ = await get(served.url + "/")
                return html if page_rows(html).notes.get("sinks-failing") else None

            html = await until(failing_shown)
            _, text, _ = await get(served.url + "/metrics")
            _, health, _ = await get(served.url + "/healthz")
            fleet.flip.run = a_run(3, "success")
            rows = await until(lambda: _status_of(served.url, "flip", "success"), within=15)
    finally:
        await receiver.close()
    assert got.body["kind"] == "broke"
    assert got.body["name"] == "flip"
    assert len([r for r in receiver.got if r.path == "/hook"]) >= 1
    assert page_rows(html).notes["sinks-failing"] == ["broken (slack): HTTP 500"]
    assert json.loads(health)["sinks_failing"] == ["broken (slack): HTTP 500"]
    families = _families(text)
    sink_up = {
        s.labels["sink"]: s.value for s in families["pipestatus_notification_sink_up"].samples
    }
    assert sink_up == {"hook": 1.0, "broken": 0.0}
    counts = {
        (s.labels["sink"], s.labels["outcome"]): s.value
        for s in families["pipestatus_notifications"].samples
    }
    assert counts[("hook", "sent")] == 1
    assert counts[("broken", "failed")] == 1
    assert rows
    assert receiver.url not in html  # a sink's address is never shown


async def _status_of(url: str, name: str, status: str) -> bool:
    _, body, _ = await get(url + "/api/v1/runs")
    return any(p["name"] == name and p["status"] == status for p in json.loads(body)["pipelines"])


#: Hostile text: markup, quotes, an ESC sequence, CR LF, a C1 control, a bidi override and a
#: lone surrogate (only a vendor's JSON can carry that one; TOML cannot).
MARKUP = '<script>alert("x")</script><img src=x onerror=alert(1)>\'&'
HOSTILE = MARKUP + "\x1b]0;pwned\x07\x1b[2J\r\nFORGED\x9b31m\u202eevil"


async def test_hostile_strings_are_escaped_on_every_face(fleet: Fleet, tmp_path: Path) -> None:
    """Markup, quotes, control characters and lone surrogates from the vendor (a branch, a
    stage, a status word) and from the file (a name) are text on the page, in the events, in
    a valid CCTray XML feed, in valid JSON and in metrics promtool accepts."""
    # The simulator's payloads are UTF-8 text, which cannot hold a lone surrogate: the run
    # carries the rest, an error body (JSON escapes, as a vendor may send) all of it.
    fleet.flip.run = a_run(7, "raw:" + MARKUP, ref=HOSTILE, stage=HOSTILE)
    escaped = json.dumps(HOSTILE + "\ud800")  # ASCII, with \u001b, \u009b and \ud800 escapes
    keys = ("errorCode", "errorMessage", "error_code", "error_msg", "code", "message")
    body = ("{" + ", ".join(f'"{key}": {escaped}' for key in keys) + "}").encode()
    fleet.server.fault(vendor=FIRST.key, pipeline=FIRST.demo.ids(1)[-1], status=403, body=body)
    fleet.expected[f"{FIRST.key}-1"] = "error"
    name = "flip " + HOSTILE
    config = write(tmp_path, fleet_toml(fleet, names={"flip": name}))
    async with serving(config) as served:
        rows = await read_all(served.url, len(fleet.expected))
        _, html, _ = await get(served.url + "/")
        async with aiohttp.ClientSession() as session:
            async with session.get(served.url + "/api/v1/runs") as response:
                api = await response.read()
            async with session.get(served.url + "/cctray.xml") as response:
                feed = await response.read()
            async with session.get(served.url + "/metrics") as response:
                metrics = await response.text()
            async with session.get(served.url + "/events") as response:
                stream = b""
                async with asyncio.timeout(10):
                    while b'"raw_status"' not in stream or b"#7" not in stream:
                        stream += await response.content.readany()
    for text in (html, api.decode("utf-8"), feed.decode("utf-8"), stream.decode("ascii")):
        assert "<script>" not in text
        assert "<img" not in text
        assert "\x1b" not in text
        assert "\r" not in text
    flip = next(row for row in rows.values() if row["name"].startswith("flip"))
    assert flip["name"].startswith('flip <script>alert("x")</script>')  # shown as text
    assert flip["branch"].startswith(MARKUP)
    assert "\x1b" not in flip["branch"]
    assert flip["status"] == "pending"  # an unknown word: kept raw, read as pending
    document = json.loads(api)  # valid JSON, valid UTF-8
    record = next(p for p in document["pipelines"] if p["name"].startswith("flip"))
    assert record["raw_status"] == MARKUP
    broken = next(p for p in document["pipelines"] if p["name"] == f"{FIRST.key}-1")
    assert "pwned" in broken["error"]["message"]
    assert "\ud800" not in broken["error"]["message"]
    assert "\x1b" not in broken["error"]["message"]
    root = ET.fromstring(feed)  # noqa: S314 - our own feed; valid XML despite the controls
    assert any(p.attrib["name"].startswith("flip <script>") for p in root)
    events = [
        json.loads(line.removeprefix(b"data: "))
        for line in stream.split(b"\n")
        if line.startswith(b'data: {"key"')
    ]
    assert any(e["stage"].startswith(MARKUP) for e in events)
    families = _families(metrics)
    assert any(
        s.labels["pipeline"].startswith("flip <script>")
        for s in families["pipestatus_pipeline_up"].samples
    )
    promtool = shutil.which("promtool")
    assert promtool is not None
    checked = subprocess.run(  # noqa: ASYNC221, S603 - promtool on the text just scraped
        [promtool, "check", "metrics"], input=metrics, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
