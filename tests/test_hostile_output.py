"""Hostile strings on every output path: the library's errors and log lines hold no control
character a vendor sent, the CCTray feed parses as XML whatever the strings, and the command's
output (table, tree, JSON, feed, served feed) holds no ESC byte it did not write."""

from __future__ import annotations

import asyncio
import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from clihelp import (
    TOKEN,
    account,
    foreign_escapes,
    pipeline,
    run_cli,
    start,
    write,
)

from pipestatus import Client, Job, Run, Stage, Status
from pipestatus._safe import REPLACEMENT
from pipestatus._sansio import Endpoint, Response, api_error_for
from pipestatus.auth import HeaderToken
from pipestatus.cli.cctray import cctray_project, render_cctray
from pipestatus.cli.config import Followed
from pipestatus.errors import PipestatusError
from pipestatus.testing import Fault, SimJob, SimRun, SimStage, VendorServer
from pipestatus.testing.hostile import HOSTILE_TEXT, HostileStrings

#: Every code point XML 1.0 cannot hold (C0 but TAB, LF, CR; lone surrogates; U+FFFE/U+FFFF),
#: and the ones the command never shows (TAB, LF, CR, DEL, C1, bidi controls, separators).
EVERY_HOSTILE = (
    "".join(chr(code) for code in range(0x20))
    + "\x7f\x85\x9b\ud800\udfff\ufffe\uffff\u2028\u202e\u2066"
    + HOSTILE_TEXT
)


def _codes(body: bytes) -> tuple[str | None, str | None]:
    data = json.loads(body)
    return data.get("code"), data.get("message")


def _endpoint() -> Endpoint:
    return Endpoint.create("v", "https://h.example", HeaderToken("X-T", "t"), _codes)


def test_vendor_text_enters_an_error_clean() -> None:
    """A vendor's code and message are cleaned where they enter the error: one line, no ESC,
    no surrogate, whatever the vendor sent (after secrets are hidden, before the cut)."""
    body = json.dumps({"code": EVERY_HOSTILE, "message": f"denied{EVERY_HOSTILE}FORGED"})
    response = Response(status=403, headers={}, body=body.encode(), vendor="v")
    error = api_error_for(response, _endpoint(), lambda text: text)
    text = str(error)
    assert all(ord(char) >= 0x20 and not 0x7F <= ord(char) <= 0x9F for char in text)
    assert "\ud800" not in text
    assert text.encode("utf-8")
    assert "FORGED" in text
    assert error.message is not None
    assert error.message.startswith("denied" + REPLACEMENT)


async def test_a_watch_logs_vendor_text_on_one_clean_line(caplog: pytest.LogCaptureFixture) -> None:
    """A vendor error message with CR LF and escapes reaches the library's log as one line
    without a control character."""
    caplog.set_level(logging.WARNING, logger="pipestatus")
    body = json.dumps(
        {"errorCode": "E1", "errorMessage": f"bad\r\n2025 ERROR forged{HOSTILE_TEXT}"}
    )
    async with VendorServer(token=TOKEN) as server, Client(retries=0) as client:
        server.add_yunxiao_pipeline("9", SimRun(1, "running"))
        server.fault(status=403, body=body.encode())
        target = client.yunxiao(server.url, token=TOKEN).target("9")
        watch = client.watch([target], interval=30, errors=True)
        async with asyncio.timeout(10):
            change = await anext(watch)
        await watch.aclose()
    assert isinstance(change.current, PipestatusError)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("pipestatus")]
    assert any("forged" in line for line in lines), lines
    for line in lines:
        assert "\n" not in line
        assert "\r" not in line
        assert "\x1b" not in line


def _hostile_run() -> Run:
    job = Job(
        id=EVERY_HOSTILE,
        name=EVERY_HOSTILE,
        status=Status.FAILED,
        raw_status=EVERY_HOSTILE,
        url=f"https://h.example/{EVERY_HOSTILE}",
        sha=EVERY_HOSTILE,
    )
    stage = Stage(
        id="s",
        name=EVERY_HOSTILE,
        order=0,
        status=Status.FAILED,
        raw_status=EVERY_HOSTILE,
        jobs=(job,),
    )
    return Run(
        vendor="v",
        pipeline_id=EVERY_HOSTILE,
        run_id=EVERY_HOSTILE,
        number=None,
        status=Status.FAILED,
        raw_status=EVERY_HOSTILE,
        url=f"https://h.example/{EVERY_HOSTILE}",
        sha=EVERY_HOSTILE,
        stages=(stage,),
    )


def test_the_feed_parses_as_xml_with_every_hostile_string() -> None:
    """A feed built from a run and a configuration whose every string holds every code point
    XML forbids (as a caller that did not clean them would pass them) parses as XML 1.0, and
    encodes as UTF-8."""
    client = Client()
    target = client.yunxiao("https://h.example", token="t").target("9")
    followed = Followed(
        label=f"name{EVERY_HOSTILE}",
        account="a",
        vendor="yunxiao",
        ids=(("pipeline_id", "9"),),
        target=target,
        home=f"https://h.example/{EVERY_HOSTILE}",
        page=None,
    )
    now = datetime.now(UTC)
    projects = [
        cctray_project(followed, _hostile_run(), None, now),
        cctray_project(followed, None, _hostile_run(), now),
        dict.fromkeys(("name", "activity", "lastBuildStatus", "webUrl"), EVERY_HOSTILE),
    ]
    feed = render_cctray(projects).encode("utf-8")
    root = ET.fromstring(feed)  # noqa: S314 - our own output
    names = [project.get("name") for project in root.iter("Project")]
    assert len(names) == 3
    assert all(name and name.startswith(("name", REPLACEMENT)) for name in names)


# --- the command -------------------------------------------------------------------------------


@pytest.fixture
async def hostile(tmp_path: Path) -> AsyncIterator[tuple[VendorServer, Path]]:
    """A server whose every vendor string, in every answer, holds control characters, escape
    sequences, line breaks and a lone surrogate (sent as a JSON ``\\ud800`` escape)."""
    async with VendorServer(token=TOKEN) as server:
        run = SimRun(1, "failed", [SimStage("build", [SimJob("make", "failed")])], ref="main")
        server.add_yunxiao_pipeline("9", run)
        server.add_repo_pipeline(2000, 1, run)
        server.add_fault(Fault(effects=(HostileStrings(),)))
        path = write(
            tmp_path / "pipestatus.toml",
            account("flow", "yunxiao", server.url),
            account("repo", "codearts_repo", server.url),
            pipeline("flow", "backend", pipeline_id="9"),
            pipeline("repo", "api", repository_id=2000, pipeline_id=1),
        )
        yield server, path


@pytest.mark.parametrize(
    "args",
    [("status", "--wide"), ("status", "--json"), ("view", "backend"), ("cctray",)],
    ids=["status", "status-json", "view", "cctray"],
)
async def test_the_command_shows_hostile_strings_replaced(
    hostile: tuple[VendorServer, Path], args: tuple[str, ...]
) -> None:
    """Through the table, the JSON, the tree and the feed, hostile vendor strings (a lone
    surrogate too) come out replaced: no traceback, no foreign ESC, valid UTF-8, and the JSON
    and the feed parse."""
    _, path = hostile
    done = await run_cli(args[0], "-c", str(path), *args[1:], "-v")
    assert done.code in (0, 1, 3), done.err
    for stream in (done.raw, done.err.encode()):
        assert not foreign_escapes(stream), (args, stream[:300])
        assert b"\x1b" not in stream  # NO_COLOR: the command writes none at all
        stream.decode("utf-8")
    if args == ("status", "--json"):
        json.loads(done.raw)
    if args == ("cctray",):
        assert len(list(ET.fromstring(done.raw).iter("Project"))) == 2  # noqa: S314


async def test_the_served_feed_answers_200_with_hostile_strings(
    hostile: tuple[VendorServer, Path],
) -> None:
    """``cctray --serve`` answers 200 with a feed that parses, whatever the vendors send."""
    _, path = hostile
    proc = await start("cctray", "-c", str(path), "--serve", "127.0.0.1:0", "--interval", "1")
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(15):
            line = (await proc.stdout.readline()).decode()
        url = line.split()[1]
        async with aiohttp.ClientSession() as session:
            for _ in range(100):  # bounded: until both pipelines were read once
                async with session.get(url) as response:
                    assert response.status == 200
                    root = ET.fromstring(await response.read())  # noqa: S314 - our own output
                # Every status word is hostile too, so unknown: read means pending, shown as
                # CheckingModifications (a pipeline not read yet is Sleeping).
                if all(p.get("activity") != "Sleeping" for p in root.iter("Project")):
                    break
                await asyncio.sleep(0.1)
        assert {p.get("activity") for p in root.iter("Project")} == {"CheckingModifications"}
        shown = [value for p in root.iter("Project") for value in p.attrib.values()]
        assert any(REPLACEMENT in value for value in shown)  # the hostile strings got there
    finally:
        if proc.returncode is None:
            proc.terminate()
        async with asyncio.timeout(10):
            _, err = await proc.communicate()
    assert b"Traceback" not in err
