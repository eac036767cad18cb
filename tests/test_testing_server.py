"""The simulated vendor server of ``pipestatus.testing``, driven over loopback with aiohttp."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

import pipestatus.testing
from pipestatus.testing import (
    ERROR_BODIES,
    SimJob,
    SimRun,
    SimStage,
    VendorServer,
    make_fleet,
)

ROOT = Path(pipestatus.__file__).resolve().parents[1]  # for the subprocess
TOKEN = "secret-token"
V4 = {"X-Auth-Token": TOKEN}
YX = {"x-yunxiao-token": TOKEN}
VENDORS = ("codearts_repo", "codearts_pipeline", "yunxiao")
REPO_PATH = "/v4/repositories/2111976239/pipelines/6"
V5_PATH = "/v5/proj/api/pipelines/status"
YX_PATH = "/oapi/v1/flow/organizations/pipelines/123/runs/latestPipelineRun"


def a_run(status: str = "success", number: int = 3) -> SimRun:
    """A two-stage run whose jobs agree with ``status``."""
    last = {"pending": "pending", "running": "running"}.get(status, status)
    return SimRun(
        number=number,
        status=status,
        stages=[
            SimStage("build", [SimJob("compile", "success" if last != "pending" else "pending")]),
            SimStage("test", [SimJob("unit", last), SimJob("lint", "skipped")]),
        ],
    )


@pytest.fixture
async def server() -> AsyncIterator[VendorServer]:
    async with VendorServer(token=TOKEN) as srv:
        srv.add_repo_pipeline(2111976239, 6, a_run())
        srv.add_v5_pipeline("proj", "p1", a_run("failed", 2))
        srv.add_v5_pipeline("proj", "never-ran", None)
        srv.add_yunxiao_pipeline("123", a_run("running", 7), organization_id="org1")
        yield srv


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as sess:
        yield sess


async def get_json(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> tuple[int, Any, CIMultiDict[str]]:
    """GET ``url``: status, decoded JSON (or the text when it is not JSON) and headers."""
    async with session.get(url, headers=headers, allow_redirects=False) as resp:
        text = await resp.text()
        try:
            body = json.loads(text)
        except ValueError:
            body = text
        return resp.status, body, CIMultiDict(resp.headers)


# -- shapes ----------------------------------------------------------------------------------


async def test_v4_latest_jobs_shape(server: VendorServer, session: aiohttp.ClientSession) -> None:
    """latest-jobs answers the documented object with +08:00 ISO times and v4 status words."""
    status, body, _ = await get_json(session, f"{server.url}{REPO_PATH}/latest-jobs", V4)
    assert status == 200
    assert body["id"] == 6
    assert body["status"] == "success"
    assert [s["name"] for s in body["stages"]] == ["build", "test"]
    assert [s["sort_id"] for s in body["stages"]] == [1, 2]
    assert set(body["stages"][0]) == {"id", "name", "status", "sort_id", "jobs"}
    job = body["stages"][0]["jobs"][0]
    assert set(job) == {
        "id", "sha", "ref", "status", "name", "target_url", "created_at",
        "started_at", "finished_at", "updated_at", "third_build_id",
    }  # fmt: skip
    assert job["started_at"].endswith("+08:00")
    assert job["started_at"][19] == "."
    assert len(job["sha"]) == 40
    skipped = body["stages"][1]["jobs"][1]
    assert skipped["status"] == "skipped"
    assert skipped["started_at"] is None


async def test_v4_jobs_pages_with_x_total(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """The jobs list pages 253 jobs (3 plus 250 extra) by offset/limit and reports X-Total."""
    server.add_repo_pipeline(1, 2, a_run(), extra_jobs=250)
    url = f"{server.url}/v4/repositories/1/pipelines/2/jobs"
    status, first, headers = await get_json(session, url, V4)
    assert status == 200
    assert len(first) == 20
    assert headers["X-Total"] == "253"
    assert set(first[0]) >= {"stage_id", "stage", "third_build_id"}
    seen: list[dict[str, Any]] = []
    for offset in range(0, 300, 100):
        _, page, _ = await get_json(session, f"{url}?offset={offset}&limit=100", V4)
        seen.extend(page)
    assert len(seen) == 253
    assert len({job["id"] for job in seen}) == 253
    assert [job["stage"] for job in seen[:4]] == ["build", "test", "test", "extra"]


@pytest.mark.parametrize("limit", ["0", "101", "x"])
async def test_v4_jobs_rejects_bad_limit(
    server: VendorServer, session: aiohttp.ClientSession, limit: str
) -> None:
    """A limit outside 1..100 is a 400 with a Huawei error body."""
    url = f"{server.url}{REPO_PATH}/jobs?limit={limit}"
    status, body, _ = await get_json(session, url, V4)
    assert status == 400
    assert body == ERROR_BODIES["codearts_repo"][400]


async def test_v4_unknown_pipeline_is_404(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """An unknown repository or pipeline is the documented CH.00402000 404."""
    for path in ("/v4/repositories/9/pipelines/6/latest-jobs", f"{REPO_PATH[:-1]}7/jobs"):
        status, body, _ = await get_json(session, server.url + path, V4)
        assert status == 404
        assert body["error_code"] == "CH.00402000"


async def test_v5_batch_omits_unknown_and_runless(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """The v5 batch answers only known pipelines with a run, in the documented item shape."""
    ids = ["p1", "unknown", "never-ran"]
    async with session.post(f"{server.url}{V5_PATH}", json=ids, headers=V4) as resp:
        assert resp.status == 200
        assert "ETag" not in resp.headers
        items = await resp.json()
    assert [item["pipeline_id"] for item in items] == ["p1"]
    item = items[0]
    assert item["status"] == "FAILED"
    assert item["run_number"] == 2
    assert item["artifact_params"] is None
    assert isinstance(item["start_time"], int)
    assert isinstance(item["end_time"], int)
    assert set(item["build_params"]) >= {"commit_id", "target_branch", "codehub_id", "git_url"}
    stage = item["stage_status_list"][0]
    assert set(stage) == {"name", "sequence", "status", "start_time", "end_time"}
    assert len(stage["start_time"]) == 19
    assert stage["start_time"][10] == " "
    assert [s["status"] for s in item["stage_status_list"]] == ["COMPLETED", "FAILED"]


async def test_v5_running_and_pending_words(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """v5 reads a running run as RUNNING with a null end_time and a waiting stage as INIT."""
    run = SimRun(
        5,
        "running",
        [SimStage("a", [SimJob("x", "running")]), SimStage("b", [SimJob("y", "pending")])],
    )
    server.add_v5_pipeline("proj", "p2", run)
    async with session.post(f"{server.url}{V5_PATH}", json=["p2"], headers=V4) as resp:
        (item,) = await resp.json()
    assert item["status"] == "RUNNING"
    assert item["end_time"] is None
    assert [s["status"] for s in item["stage_status_list"]] == ["RUNNING", "INIT"]


@pytest.mark.parametrize(
    ("path", "data", "status"),
    [
        (V5_PATH, b'{"not": "a list"}', 400),
        (V5_PATH, b"[1, 2]", 400),
        (V5_PATH, b"not json", 400),
        ("/v5/other/api/pipelines/status", b'["p1"]', 404),
    ],
    ids=["object", "ints", "garbage", "unknown-project"],
)
async def test_v5_errors(
    server: VendorServer, session: aiohttp.ClientSession, path: str, data: bytes, status: int
) -> None:
    """A v5 body that is not a list of strings is a 400; an unknown project a 404."""
    async with session.post(server.url + path, data=data, headers=V4) as resp:
        assert resp.status == status
        assert await resp.json() == ERROR_BODIES["codearts_pipeline"][status]


async def test_yunxiao_three_paths_serve_the_same_run(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """The three Yunxiao paths serve the documented payload; another organization gets 403."""
    bodies = []
    for path in (
        YX_PATH,
        "/oapi/v1/flow/organizations/org1/pipelines/123/runs/latestPipelineRun",
        "/oapi/v1/flow/pipelines/123/runs/latestPipelineRun",
    ):
        status, body, _ = await get_json(session, server.url + path, YX)
        assert status == 200
        bodies.append(body)
    assert bodies[0] == bodies[1] == bodies[2]
    body = bodies[0]
    assert body["pipelineId"] == 123
    assert body["pipelineRunId"] == 7
    assert body["status"] == "RUNNING"
    assert body["sources"][0]["data"]["branch"] == "main"
    stage = body["stages"][1]
    assert stage["index"] == "Group0-Stage1"
    job = stage["stageInfo"]["jobs"][0]
    assert isinstance(job["id"], int)
    assert job["params"] == "{}"
    assert json.loads(job["result"])["successful"] is True
    assert [j["status"] for j in stage["stageInfo"]["jobs"]] == ["RUNNING", "SKIPPED"]
    url = f"{server.url}/oapi/v1/flow/organizations/org2/pipelines/123/runs/latestPipelineRun"
    status, body, _ = await get_json(session, url, YX)
    assert status == 403
    assert body == ERROR_BODIES["yunxiao"][403]
    status, body, _ = await get_json(session, f"{server.url}{YX_PATH.replace('123', '4')}", YX)
    assert status == 404
    assert body == ERROR_BODIES["yunxiao"][404]


@pytest.mark.parametrize(
    ("vendor", "method", "path", "header"),
    [
        ("codearts_repo", "GET", f"{REPO_PATH}/latest-jobs", "X-Auth-Token"),
        ("codearts_pipeline", "POST", V5_PATH, "X-Auth-Token"),
        ("yunxiao", "GET", YX_PATH, "x-yunxiao-token"),
    ],
)
async def test_wrong_or_missing_token_is_401(
    server: VendorServer,
    session: aiohttp.ClientSession,
    vendor: str,
    method: str,
    path: str,
    header: str,
) -> None:
    """Each vendor answers a missing or wrong token with 401 and its own error body."""
    for headers in ({}, {header: "wrong"}):
        async with session.request(method, server.url + path, json=["p1"], headers=headers) as r:
            assert r.status == 401
            assert await r.json() == ERROR_BODIES[vendor][401]


async def test_raw_status_words_pass_through(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """A "raw:WORD" status reaches every vendor verbatim."""
    run = SimRun(1, "raw:PAUSED", [SimStage("s", [SimJob("j", "raw:SUSPEND")])])
    server.add_repo_pipeline(1, 1, run)
    server.add_yunxiao_pipeline("9", run)
    _, body, _ = await get_json(
        session, f"{server.url}/v4/repositories/1/pipelines/1/latest-jobs", V4
    )
    assert body["status"] == "PAUSED"
    assert body["stages"][0]["jobs"][0]["status"] == "SUSPEND"
    url = f"{server.url}/oapi/v1/flow/pipelines/9/runs/latestPipelineRun"
    _, body, _ = await get_json(session, url, YX)
    assert body["status"] == "PAUSED"


# -- run sources -----------------------------------------------------------------------------


async def test_script_advances_per_request_and_repeats_last(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """A script serves one run per request, then repeats its last run forever."""
    script = [a_run("pending"), a_run("running"), a_run("running"), a_run("success")]
    server.add_repo_pipeline(1, 3, script)
    server.add_v5_pipeline("proj", "scripted", script)
    url = f"{server.url}/v4/repositories/1/pipelines/3/latest-jobs"
    seen = [(await get_json(session, url, V4))[1]["status"] for _ in range(6)]
    assert seen == ["pending", "running", "running", "success", "success", "success"]
    words = []
    for _ in range(5):
        async with session.post(f"{server.url}{V5_PATH}", json=["scripted"], headers=V4) as r:
            words.append((await r.json())[0]["status"])
    assert words == ["QUEUED", "RUNNING", "RUNNING", "COMPLETED", "COMPLETED"]


async def test_jobs_paging_does_not_advance_a_script(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """A jobs page with offset > 0 serves the same run as the page before it."""
    server.add_repo_pipeline(1, 4, [a_run("running"), a_run("success")], extra_jobs=30)
    url = f"{server.url}/v4/repositories/1/pipelines/4/jobs?limit=1"
    _, first, _ = await get_json(session, url, V4)
    _, second, _ = await get_json(session, f"{url}&offset=1", V4)
    _, again, _ = await get_json(session, url, V4)
    assert [first[0]["status"], second[0]["status"], again[0]["status"]] == [
        "success",  # compile
        "running",  # unit, same run
        "success",
    ]
    _, later, _ = await get_json(session, f"{url}&offset=1", V4)
    assert later[0]["status"] == "success"  # the second run now


async def test_callable_source_gets_elapsed_seconds(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """A callable source receives the seconds since the server started."""
    seen: list[float] = []

    def source(elapsed: float) -> SimRun:
        seen.append(elapsed)
        return a_run("running" if elapsed < 3600 else "success")

    server.add_yunxiao_pipeline("55", source)
    _, body, _ = await get_json(
        session, f"{server.url}/oapi/v1/flow/pipelines/55/runs/latestPipelineRun", YX
    )
    assert body["status"] == "RUNNING"
    assert len(seen) == 1
    assert 0 <= seen[0] < 60


async def test_fleet_is_deterministic_and_moves_through_states() -> None:
    """make_fleet adds 30 pipelines whose runs queue, run and end in all four ways, per seed."""
    async with VendorServer() as one, VendorServer() as two:
        make_fleet(one, 10, seed=4)
        make_fleet(two, 10, seed=4)
        repo, v5, yunxiao = (one.pipelines(key) for key in VENDORS)
        assert len(repo) == len([p for p in v5 if p.scope == "fleet"]) == len(yunxiao) == 10
        pipelines = [*repo, *v5, *yunxiao]
        twins = [p for key in VENDORS for p in two.pipelines(key)]
        words: set[str] = set()
        numbers: set[int] = set()
        for mine, theirs in zip(pipelines, twins, strict=True):
            for t in range(0, 900, 3):
                a, b = mine.current(float(t)), theirs.current(float(t))
                assert a is not None
                assert b is not None
                shape = [(s.name, s.effective_status, [j.status for j in s.jobs]) for s in a.stages]
                assert (a.number, a.status) == (b.number, b.status)
                assert shape == [
                    (s.name, s.effective_status, [j.status for j in s.jobs]) for s in b.stages
                ]
                words.add(a.status)
                numbers.add(a.number)
        assert words == {"pending", "running", "success", "failed", "canceled", "timedout"}
        assert max(numbers) > 5


# -- conditional requests ---------------------------------------------------------------------


async def test_etag_and_if_none_match(server: VendorServer, session: aiohttp.ClientSession) -> None:
    """A GET 200 carries an ETag; a matching If-None-Match gets an empty 304; etags can be off."""
    url = f"{server.url}{REPO_PATH}/latest-jobs"
    _, _, headers = await get_json(session, url, V4)
    etag = headers["ETag"]
    for match in (etag, f"W/{etag}", f'"other", {etag}'):
        async with session.get(url, headers={**V4, "If-None-Match": match}) as resp:
            assert resp.status == 304
            assert await resp.read() == b""
            assert resp.headers["ETag"] == etag
    async with session.get(url, headers={**V4, "If-None-Match": '"stale"'}) as resp:
        assert resp.status == 200
    server.etags = False
    async with session.get(url, headers={**V4, "If-None-Match": etag}) as resp:
        assert resp.status == 200
        assert "ETag" not in resp.headers


# -- faults ----------------------------------------------------------------------------------


async def test_status_fault_with_html_body_and_times(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """A status fault answers its code with an HTML page for `times` requests, then stops."""
    fault = server.fault(vendor="codearts_repo", status=502, times=2)
    url = f"{server.url}{REPO_PATH}/latest-jobs"
    for _ in range(2):
        async with session.get(url, headers=V4) as resp:
            assert resp.status == 502
            assert resp.headers["Content-Type"].startswith("text/html")
            assert (await resp.text()).startswith("<html>")
    async with session.get(url, headers=V4) as resp:
        assert resp.status == 200
    assert fault.hits == 2
    assert [r.fault for r in server.requests] == ["fault", "fault", None]


async def test_429_fault_carries_retry_after(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """A 429 fault sends Retry-After as seconds or as an HTTP-date."""
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    server.fault(status=429, retry_after=2, times=1)
    server.fault(status=429, headers={"Retry-After": date}, times=1)
    url = f"{server.url}{YX_PATH}"
    async with session.get(url, headers=YX) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "2"
    async with session.get(url, headers=YX) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == date


async def test_faults_match_by_pipeline_and_path(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """A fault for one pipeline or path prefix leaves other requests alone."""
    server.add_repo_pipeline(2111976239, 7, a_run())
    server.fault(pipeline=7, status=503)
    server.fault(path_prefix="/oapi/v1/flow/pipelines/", status=500)
    status, _, _ = await get_json(session, f"{server.url}{REPO_PATH[:-1]}7/latest-jobs", V4)
    assert status == 503
    status, _, _ = await get_json(session, f"{server.url}{REPO_PATH}/latest-jobs", V4)
    assert status == 200
    url = f"{server.url}/oapi/v1/flow/pipelines/123/runs/latestPipelineRun"
    assert (await get_json(session, url, YX))[0] == 500
    assert (await get_json(session, f"{server.url}{YX_PATH}", YX))[0] == 200
    server.fault(pipeline="p1", status=500, times=1)
    async with session.post(f"{server.url}{V5_PATH}", json=["x", "p1"], headers=V4) as resp:
        assert resp.status == 500
    server.clear_faults()
    assert (await get_json(session, url, YX))[0] == 200


async def test_body_and_mutator_faults(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """A raw body replaces the answer; a payload mutator edits the rendered JSON."""
    url = f"{server.url}{REPO_PATH}/latest-jobs"
    server.fault(body={"unexpected": "shape"}, times=1)
    server.fault(body="[1, 2", times=1)
    server.fault(payload_mutator=lambda p: {**p, "status": "weird"}, times=1)
    assert (await get_json(session, url, V4))[1] == {"unexpected": "shape"}
    async with session.get(url, headers=V4) as resp:
        assert resp.status == 200
        assert await resp.read() == b"[1, 2"
    status, body, headers = await get_json(session, url, V4)
    assert status == 200
    assert body["status"] == "weird"
    assert "ETag" in headers


async def test_malformed_fault_is_invalid_json(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """A malformed fault answers 200 with a body that is not JSON."""
    server.fault(malformed=True)
    async with session.get(f"{server.url}{YX_PATH}", headers=YX) as resp:
        assert resp.status == 200
        with pytest.raises(json.JSONDecodeError):
            await resp.json()


async def test_truncate_fault_cuts_the_body(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """A truncate fault declares more bytes than it sends and closes mid-body."""
    server.fault(truncate=True)
    async with session.get(f"{server.url}{REPO_PATH}/latest-jobs", headers=V4) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


async def test_reset_fault_resets_the_connection(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """A reset fault aborts the connection mid-body with a TCP reset."""
    server.fault(reset=True)
    with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ClientConnectionError)):
        async with session.get(f"{server.url}{REPO_PATH}/latest-jobs", headers=V4) as resp:
            await resp.read()


async def test_delay_fault_answers_late(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """A delay fault holds the normal answer back for its delay."""
    server.fault(delay=0.2, times=1)
    started = time.monotonic()
    status, _, _ = await get_json(session, f"{server.url}{YX_PATH}", YX)
    assert status == 200
    assert time.monotonic() - started >= 0.2


async def test_hang_fault_never_answers_and_does_not_block_close(
    session: aiohttp.ClientSession,
) -> None:
    """A hung request times out on the client, and closing the server does not wait for it."""
    srv = VendorServer(token=TOKEN)
    await srv.start()
    try:
        srv.add_yunxiao_pipeline("1", a_run())
        srv.fault(hang=True)
        url = f"{srv.url}/oapi/v1/flow/pipelines/1/runs/latestPipelineRun"
        still_waiting = asyncio.ensure_future(session.get(url, headers=YX))
        with pytest.raises(TimeoutError):
            async with session.get(
                url, headers=YX, timeout=aiohttp.ClientTimeout(total=0.2)
            ) as resp:
                await resp.read()
        await srv.wait_in_flight(1)
    finally:
        started = time.monotonic()
        await srv.close()
    assert time.monotonic() - started < 1.5  # the shutdown timeout is 2 s
    with pytest.raises(aiohttp.ClientConnectionError):
        await still_waiting


async def test_trickle_fault_sends_a_byte_at_a_time(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """A trickle fault announces the full length and then sends one byte per interval."""
    server.fault(trickle=0.05)
    started = time.monotonic()
    async with session.get(f"{server.url}{YX_PATH}", headers=YX) as resp:
        assert resp.status == 200
        assert int(resp.headers["Content-Length"]) > 1000
        first = await resp.content.readexactly(4)
        assert first == b'{"cr'
        assert time.monotonic() - started >= 0.15


async def test_oversize_stream_can_be_read_partially_and_aborted(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """A 300 MB chunked JSON stream starts at once, and aborting it holds no memory."""
    size = 300 * 1024 * 1024
    server.fault(oversize_bytes=size, times=1)
    server.fault(oversize_bytes=size, announce=True, times=1)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    url = f"{server.url}{REPO_PATH}/latest-jobs"
    async with session.get(url, headers=V4) as resp:
        assert resp.status == 200
        assert "Content-Length" not in resp.headers
        assert resp.headers["Transfer-Encoding"] == "chunked"
        head = await resp.content.readexactly(4 * 1024 * 1024)
        assert head.startswith(b'{"status":"success","padding":"xxx')
        resp.close()
    async with session.get(url, headers=V4) as resp:
        assert resp.headers["Content-Length"] == str(size)
        await resp.content.readexactly(1024 * 1024)
        resp.close()
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mib < 100
    async with session.get(url, headers=V4) as resp:
        assert resp.status == 200  # the server still answers normally


async def test_small_oversize_stream_is_valid_json(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """An oversize stream read to its end is exactly N bytes of valid JSON."""
    server.fault(oversize_bytes=200_000)
    async with session.get(f"{server.url}{YX_PATH}", headers=YX) as resp:
        data = await resp.read()
    assert len(data) == 200_000
    assert json.loads(data)["status"] == "success"


async def test_redirect_fault_points_to_a_foreign_origin(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """A redirect fault sends its status and Location; the foreign server records what came."""
    async with VendorServer(token="foreign-token") as foreign:
        target = f"{foreign.url}{REPO_PATH}/latest-jobs"
        for code in (301, 302, 307, 308):
            server.fault(redirect_to=target, redirect_status=code, times=1)
            async with session.get(
                f"{server.url}{REPO_PATH}/latest-jobs", headers=V4, allow_redirects=False
            ) as resp:
                assert resp.status == code
                assert resp.headers["Location"] == target
        async with session.get(target) as resp:  # a careful client follows without the token
            assert resp.status == 401
        (seen,) = foreign.requests
        assert "x-auth-token" not in seen.headers
        assert seen.peer is not None
        assert seen.peer.startswith("127.0.0.1:")


# -- chaos -----------------------------------------------------------------------------------


async def test_chaos_rate_is_roughly_honoured_and_seeded(session: aiohttp.ClientSession) -> None:
    """Chaos faults about `rate` of the requests, the same ones for the same seed."""
    patterns = []
    for _ in range(2):
        async with VendorServer(token=TOKEN) as srv:
            srv.add_yunxiao_pipeline("1", a_run())
            srv.chaos(0.25, seed=11, kinds=("http_500", "http_502", "http_503", "http_429"))
            url = f"{srv.url}/oapi/v1/flow/pipelines/1/runs/latestPipelineRun"
            codes = [(await get_json(session, url, YX))[0] for _ in range(200)]
            patterns.append(codes)
            failures = sum(code != 200 for code in codes)
            assert 30 <= failures <= 70
            assert {r.fault for r in srv.requests} >= {"chaos:http_500", "chaos:http_429"}
            srv.chaos(0)
            assert all([(await get_json(session, url, YX))[0] == 200 for _ in range(20)])
    assert patterns[0] == patterns[1]


async def test_chaos_payload_kinds(server: VendorServer, session: aiohttp.ClientSession) -> None:
    """Chaos can send unknown status words, malformed JSON and truncated bodies."""
    server.chaos(1.0, seed=1, kinds=("unknown_status",))
    _, body, _ = await get_json(session, f"{server.url}{YX_PATH}", YX)
    assert body["status"] == "EXPLODED"
    server.chaos(1.0, seed=1, kinds=("malformed",))
    async with session.get(f"{server.url}{YX_PATH}", headers=YX) as resp:
        with pytest.raises(json.JSONDecodeError):
            await resp.json()
    server.chaos(1.0, seed=1, kinds=("truncate",))
    async with session.get(f"{server.url}{YX_PATH}", headers=YX) as resp:
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    with pytest.raises(ValueError, match="unknown chaos kinds"):
        server.chaos(0.5, kinds=("meteor",))


async def test_chaos_hang_is_bounded(server: VendorServer, session: aiohttp.ClientSession) -> None:
    """A chaos hang lasts `hang` seconds and then answers normally."""
    server.chaos(1.0, seed=3, kinds=("hang",), hang=0.1)
    started = time.monotonic()
    status, _, _ = await get_json(session, f"{server.url}{YX_PATH}", YX)
    assert status == 200
    assert time.monotonic() - started >= 0.1


# -- recording and concurrency ---------------------------------------------------------------


async def test_requests_are_recorded(server: VendorServer, session: aiohttp.ClientSession) -> None:
    """Each request is recorded with lower-case headers, query, body and peer."""
    await get_json(session, f"{server.url}{REPO_PATH}/jobs?offset=0&limit=5", V4)
    async with session.post(f"{server.url}{V5_PATH}", json=["p1"], headers=V4):
        pass
    first, second = server.requests
    assert first.method == "GET"
    assert first.path == f"{REPO_PATH}/jobs"
    assert first.query == {"offset": "0", "limit": "5"}
    assert first.headers["x-auth-token"] == TOKEN
    assert first.vendor == "codearts_repo"
    assert second.body == b'["p1"]'
    assert server.request_count == 2
    server.reset_stats()
    assert server.requests == []
    assert server.request_count == 0
    server.record = False
    await get_json(session, f"{server.url}{YX_PATH}", YX)
    assert server.requests == []
    assert server.request_count == 1


async def test_peak_in_flight_counts_concurrent_requests(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """peak_in_flight is the most requests handled at once."""
    hang = server.fault(hang=True)
    url = f"{server.url}{YX_PATH}"
    tasks = [asyncio.ensure_future(get_json(session, url, YX)) for _ in range(8)]
    async with asyncio.timeout(5):
        await server.wait_in_flight(8)
    assert server.in_flight == 8
    hang.remove()
    hang.release()
    results = await asyncio.gather(*tasks)
    assert [r[0] for r in results] == [200] * 8
    assert server.peak_in_flight == 8
    assert server.in_flight == 0
    server.reset_stats()
    await get_json(session, url, YX)
    assert server.peak_in_flight == 1


def test_only_loopback_and_no_token_in_repr() -> None:
    """The server refuses non-loopback addresses and never shows its token."""
    with pytest.raises(ValueError, match="loopback"):
        VendorServer(host="0.0.0.0")  # noqa: S104 - the refusal is the point
    assert "secret-token" not in repr(VendorServer(token="secret-token"))


async def test_standalone_process_prints_url_and_serves() -> None:
    """python -m pipestatus.testing prints its URL first and serves the numbered pipelines."""
    root = ROOT
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pipestatus.testing",
        "--repo", "3", "--v5", "2", "--yunxiao", "2",
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(10):
            url = (await proc.stdout.readline()).decode().strip()
        assert url.startswith("http://127.0.0.1:")
        headers = {"X-Auth-Token": "bench-token"}
        async with aiohttp.ClientSession() as sess:
            async with sess.get(
                f"{url}/v4/repositories/1000/pipelines/3/latest-jobs", headers=headers
            ) as r:
                assert r.status == 200
            async with sess.post(
                f"{url}/v5/proj/api/pipelines/status", json=["p0001", "p0002"], headers=headers
            ) as r:
                assert len(await r.json()) == 2
            yx = f"{url}/oapi/v1/flow/pipelines/2/runs/latestPipelineRun"
            async with sess.get(yx, headers={"x-yunxiao-token": "bench-token"}) as r:
                assert r.status == 200
    finally:
        proc.terminate()
        await proc.communicate()
    assert proc.returncode == 0
