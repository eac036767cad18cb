"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``; the test fails,
never skips, without it), driven over its DevTools protocol with aiohttp's websocket client.
The page lists every pipeline of the simulated fleet with its status, and when the simulated
server changes a run the page shows it without a reload.

``PIPESTATUS_SCREENSHOT=docs/dashboard.png pytest tests/test_serve_browser.py`` also writes
the screenshot the README shows.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from servehelp import TOKEN, Fleet, a_run, add_fleet, fleet_toml, serving, until

from pipestatus.testing import VendorServer

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-port=0",
)
LISTENING = re.compile(rb"DevTools listening on (ws://\S+)")


class Page:
    """One browser tab over the DevTools protocol."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self._ids)
        await self.socket.send_json({"id": number, "method": method, "params": params})
        async with asyncio.timeout(30):
            while True:
                message = await self.socket.receive_json()
                if message.get("id") == number:
                    if "error" in message:
                        raise AssertionError(f"{method}: {message['error']}")
                    result: dict[str, Any] = message.get("result", {})
                    return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")


@contextlib.asynccontextmanager
async def chromium(tmp_path: Path) -> AsyncIterator[Page]:
    """Headless Chromium with one tab, closed at the end."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary is not None, (
        "Debian's chromium package must be installed (apt-get install chromium)"
    )
    profile = tmp_path / "profile"
    proc = await asyncio.create_subprocess_exec(
        binary,
        *FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        async with asyncio.timeout(60):
            while True:
                line = await proc.stderr.readline()
                assert line, "chromium exited before it listened"
                found = LISTENING.search(line)
                if found:
                    break
        drain = asyncio.create_task(proc.stderr.read())  # keep its pipe from filling
        http = "http://" + found.group(1).decode().split("/")[2]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{http}/json/list") as response:
                targets = await response.json()
            tab = next(t for t in targets if t["type"] == "page")
            async with session.ws_connect(tab["webSocketDebuggerUrl"], max_msg_size=0) as socket:
                page = Page(socket)
                await page.call("Page.enable")
                await page.call("Runtime.enable")
                await page.call(
                    "Emulation.setDeviceMetricsOverride",
                    width=1280,
                    height=900,
                    deviceScaleFactor=1,
                    mobile=False,
                )
                yield page
        drain.cancel()
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(10):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()


ROWS = (
    "JSON.stringify(Array.from(document.querySelectorAll('tr[data-key]'))"
    ".map(tr => [tr.dataset.name, tr.dataset.status,"
    " tr.querySelector('td[data-field=\"stage\"]').textContent]))"
)


@pytest.fixture
async def fleet() -> AsyncIterator[Fleet]:
    async with VendorServer(token=TOKEN) as server:
        yield add_fleet(server, 4)


async def test_the_page_shows_the_fleet_and_updates_live(fleet: Fleet, tmp_path: Path) -> None:
    """In Chromium the page lists every pipeline with its status, and shows a run the
    simulated server changed without reloading."""
    config = tmp_path / "pipestatus.toml"
    config.write_text(fleet_toml(fleet, tags={"flip": ["web"]}), encoding="utf-8")
    async with serving(config, interval=0.2, heartbeat=0.5) as served, chromium(tmp_path) as page:

        async def rows() -> list[list[str]]:
            found: list[list[str]] = json.loads(await page.evaluate(ROWS) or "[]")
            return found

        async def all_read() -> list[list[str]] | None:
            found = await rows()
            ready = len(found) == len(fleet.expected) and all(r[1] != "reading" for r in found)
            return found if ready else None

        await page.call("Page.navigate", url=served.url + "/")
        first: list[list[str]] = []

        async def loaded() -> bool:
            nonlocal first
            state = await page.evaluate("document.readyState")
            if state != "complete":
                return False
            first = await all_read() or []
            return bool(first)

        await until(loaded, within=30)
        assert {name: status for name, status, _ in first} == fleet.expected
        await page.evaluate("window.__sameDocument = 'yes'")

        async def live() -> bool:
            return bool(
                await page.evaluate("document.getElementById('freshness').className") == "live"
            )

        await until(live, within=30)
        fleet.flip.run = a_run(2, "failed", stage="deploy")

        async def flipped() -> list[str] | None:
            found = {name: (status, stage) for name, status, stage in await rows()}
            return list(found["flip"]) if found["flip"] == ("failed", "deploy") else None

        assert await until(flipped, within=30) == ["failed", "deploy"]
        assert await page.evaluate("window.__sameDocument") == "yes"  # no reload happened
        first_row = await page.evaluate("document.querySelector('tr[data-key]').dataset.status")
        assert first_row in ("failed", "timedout", "error")  # failing first
        title = await page.evaluate("document.title")
        assert "failing" in title
        shot = await page.call("Page.captureScreenshot", format="png")
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    target = os.environ.get("PIPESTATUS_SCREENSHOT")
    if target:
        Path(target).write_bytes(png)  # noqa: ASYNC240 - once, after the browser is gone
