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
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from servehelp import (
    ENV,
    FIRST,
    TOKEN,
    Fleet,
    a_run,
    add_fleet,
    closed_port,
    fleet_toml,
    get,
    metric_families,
    page_rows,
    read_all,
    serving,
    until,
    write,
)

from pipestatus.testing import VendorServer
from pipestatus.vendors import REGISTRY

PER_VENDOR = 3


@pytest.fixture
async def fleet() -> AsyncIterator[Fleet]:
    async with VendorServer(token=TOKEN) as server:
        yield add_fleet(server, PER_VENDOR)


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
    families = metric_families(text)
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
    families = metric_families(text)

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
    families = metric_families(text)
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
    assert metric_families(text)["pipestatus_targets_overdue"].samples[0].value >= 1


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
