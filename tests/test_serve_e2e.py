"""`pipestatus serve` end to end, beside test_serve.py (split for size): a broken run announced
to a chat sink and a failing sink shown on every face, and hostile strings escaped on every
face. The service runs in the test's event loop against the simulated vendor server."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from servehelp import (
    FIRST,
    TOKEN,
    Fleet,
    Receiver,
    a_run,
    add_fleet,
    fleet_toml,
    get,
    metric_families,
    page_rows,
    read_all,
    serving,
    until,
    write,
)

from pipestatus.store import SQLiteStore
from pipestatus.testing import VendorServer

PER_VENDOR = 3


@pytest.fixture
async def fleet() -> AsyncIterator[Fleet]:
    async with VendorServer(token=TOKEN) as server:
        yield add_fleet(server, PER_VENDOR)


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
    families = metric_families(text)
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


async def test_with_state_a_break_while_down_is_announced_after_the_restart(
    fleet: Fleet, tmp_path: Path
) -> None:
    """`serve --state FILE`: the service is stopped, the flip pipeline breaks meanwhile, and the
    service started again on the same file sends "broke" for it (without a store its first
    sight would be "first", which no rule sends), and nothing it sent before again."""
    receiver = Receiver()
    await receiver.start()
    extra = f"""
[notify.sinks.hook]
kind = "webhook"
url = "{receiver.url}/hook"

[[notify.rules]]
sinks = ["hook"]
pipelines = ["flip"]
kinds = ["broke", "fixed", "first"]
"""
    state = tmp_path / "state.db"
    config = write(tmp_path, fleet_toml(fleet, extra=extra))
    try:
        async with serving(config, store=SQLiteStore(state)) as served:
            (first,) = await receiver.wait_for("/hook")
            await read_all(served.url, len(fleet.expected))
        fleet.flip.run = a_run(2, "failed")  # while the service is down
        async with serving(config, store=SQLiteStore(state)) as served:
            await until(lambda: _status_of(served.url, "flip", "failed"))
            (_, broke) = await receiver.wait_for("/hook", count=2)
            await read_all(served.url, len(fleet.expected))
    finally:
        await receiver.close()
    assert first.body["kind"] == "first"
    assert broke.body["kind"] == "broke"
    assert [r.body["kind"] for r in receiver.got if r.path == "/hook"] == ["first", "broke"]


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
    families = metric_families(metrics)
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
