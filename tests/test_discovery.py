"""Contract tests over real HTTP for discovery, run detail, history and logs (v5 and Yunxiao),
scopes in ``poll`` and ``watch``, and the paging rule, against ``pipestatus.testing``."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from pipestatus import Client, Pipeline, Run, Status
from pipestatus.errors import NotFoundError, RateLimitedError, ResponseError
from pipestatus.model import Change, ChangeKind, Scope
from pipestatus.testing import SimJob, SimRun, SimStage, VendorServer

TOKEN = "discovery-secret-token-0123456789"
START = datetime(2025, 6, 1, 8, 0, 0, tzinfo=UTC)


def _run(number: int, status: str, *, log: str | None = None, hours: int = 0) -> SimRun:
    started = START + timedelta(hours=hours or number)
    finished = started + timedelta(minutes=10) if status not in ("running", "pending") else None
    return SimRun(
        number,
        status,
        [
            SimStage("build", [SimJob("compile", "success"), SimJob("unit", status, log=log)]),
            SimStage("deploy", [SimJob("ship", "skipped" if status == "failed" else status)]),
        ],
        ref="main",
        started_at=started,
        finished_at=finished,
    )


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def server() -> AsyncIterator[VendorServer]:
    async with VendorServer(token=TOKEN) as srv:
        for i in range(250):
            srv.add_v5_pipeline("proj", f"p{i:03d}", _run(9, "success"), name=f"svc-{i:03d}")
        srv.add_v5_pipeline("proj", "never", None, name="svc-never")
        history = [_run(n, "failed" if n % 2 else "success") for n in range(1, 9)]
        srv.add_v5_pipeline(
            "proj",
            "hist",
            _run(9, "failed", log="fine\nboom: exit 2\n"),
            name="api",
            history=history,
        )
        for i in range(70):
            srv.add_yunxiao_pipeline(str(100 + i), _run(3, "running"), "org", name=f"app-{i:02d}")
        srv.add_yunxiao_pipeline(
            "900", _run(5, "failed", log="oops\n"), "org", name="web", history=history[:4]
        )
        yield srv


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with Client(timeout=5.0, retries=1, sleep=_no_sleep) as c:
        yield c


def _posts(server: VendorServer, tail: str) -> list[dict[str, object]]:
    return [json.loads(r.body) for r in server.requests if r.path.endswith(tail)]


# --- discovery ---------------------------------------------------------------------------------


async def test_v5_pipelines_reads_every_page_once(server: VendorServer, client: Client) -> None:
    """``pipelines()`` reads 251 v5 pipelines in three pages of 100, each page once, with runs."""
    pipe = client.codearts_pipeline(server.url, project_id="proj", token=TOKEN)
    found = await pipe.pipelines()
    assert len(found) == 252
    assert [body["offset"] for body in _posts(server, "/pipelines/list")] == [0, 100, 200]
    first = found[0]
    assert isinstance(first, Pipeline)
    assert (first.vendor, first.id, first.name) == ("codearts_pipeline", "p000", "svc-000")
    assert first.target == pipe.target("p000")
    assert first.latest is not None
    assert first.latest.status is Status.SUCCESS
    assert next(p for p in found if p.id == "never").latest is None


async def test_v5_pipelines_name_glob(server: VendorServer, client: Client) -> None:
    """A glob sends its longest literal as the vendor's name filter and matches exactly."""
    pipe = client.codearts_pipeline(server.url, project_id="proj", token=TOKEN)
    found = await pipe.pipelines("svc-1[0-1]?")
    assert [p.name for p in found] == [f"svc-{n}" for n in range(100, 120)]
    assert _posts(server, "/pipelines/list")[0]["name"] == "svc-1"


async def test_yunxiao_pipelines_pages_of_30(server: VendorServer, client: Client) -> None:
    """``flow.pipelines()`` reads 71 pipelines in pages of 30, following x-next-page."""
    flow = client.yunxiao(server.url, token=TOKEN, organization_id="org")
    found = await flow.pipelines()
    assert len(found) == 71
    lists = [r.query for r in server.requests if r.path.endswith("/org/pipelines")]
    assert [(q["page"], q["perPage"]) for q in lists] == [("1", "30"), ("2", "30"), ("3", "30")]
    assert found[0].target == flow.target("100")
    assert all(p.latest is None for p in found)
    assert [p.id for p in await flow.pipelines("w*")] == ["900"]


# --- run detail --------------------------------------------------------------------------------


async def test_v5_run_detail_field_by_field(server: VendorServer, client: Client) -> None:
    """The latest run's detail, every field against values worked out by hand from the run."""
    pipe = client.codearts_pipeline(server.url, project_id="proj", token=TOKEN)
    run = await pipe.run("hist")
    started = START + timedelta(hours=9)  # 2025-06-01T17:00Z, ten minutes long
    assert (run.vendor, run.pipeline_id, run.number) == ("codearts_pipeline", "hist", 9)
    assert (run.status, run.raw_status) == (Status.FAILED, "FAILED")
    assert (run.started_at, run.finished_at) == (started, started + timedelta(minutes=10))
    assert run.as_of == started + timedelta(minutes=11)  # the server's clock: a minute on
    assert run.elapsed == timedelta(minutes=10)
    assert run.trigger == "Manual"
    assert [(s.name, s.order, s.status) for s in run.stages] == [
        ("build", 0, Status.FAILED),
        ("deploy", 1, Status.SKIPPED),
    ]
    # Three jobs share the ten minutes: 200 s each, running 180 s (0.9 of their share).
    jobs = run.jobs
    assert [(j.name, j.status, j.raw_status) for j in jobs] == [
        ("compile", Status.SUCCESS, "COMPLETED"),
        ("unit", Status.FAILED, "FAILED"),
        ("ship", Status.SKIPPED, "SKIPPED"),
    ]
    assert jobs[1].started_at == started + timedelta(seconds=200)
    assert jobs[1].finished_at == started + timedelta(seconds=380)
    assert (jobs[2].started_at, jobs[2].finished_at) == (None, None)
    assert [j.stage_name for j in jobs] == ["build", "build", "deploy"]
    assert jobs[0].stage_id == run.stages[0].id
    same = await pipe.run("hist", run.run_id)
    assert same == run
    assert server.requests[-1].query == {"pipeline_run_id": run.run_id}


async def test_yunxiao_run_by_id(server: VendorServer, client: Client) -> None:
    """``flow.run`` reads one run of the history by its ID, stages and jobs included."""
    flow = client.yunxiao(server.url, token=TOKEN, organization_id="org")
    run = await flow.run("900", 2)
    assert (run.pipeline_id, run.run_id, run.number, run.status) == ("900", "2", 2, Status.SUCCESS)
    assert [j.name for j in run.jobs] == ["compile", "unit", "ship"]
    with pytest.raises(NotFoundError):
        await flow.run("900", 77)


# --- history -----------------------------------------------------------------------------------


async def test_v5_runs_newest_first_with_filters(server: VendorServer, client: Client) -> None:
    """History comes newest first; ``status`` filters at the vendor and here."""
    pipe = client.codearts_pipeline(server.url, project_id="proj", token=TOKEN)
    numbers = [r.number async for r in pipe.runs("hist")]
    assert numbers == [9, 8, 7, 6, 5, 4, 3, 2, 1]
    failed = [r.number async for r in pipe.runs("hist", status=Status.FAILED)]
    assert failed == [9, 7, 5, 3, 1]
    assert _posts(server, "/pipeline-runs/list")[-1]["status"] == ["FAILED"]


async def test_v5_runs_since_stops_paging_early(server: VendorServer, client: Client) -> None:
    """``since`` yields the runs started since then and stops at the first older one."""
    pipe = client.codearts_pipeline(server.url, project_id="proj", token=TOKEN)
    since = START + timedelta(hours=7)
    runs = pipe.runs("hist", since=since)
    numbers = [r.number async for r in runs]
    assert numbers == [9, 8, 7]
    body = _posts(server, "/pipeline-runs/list")[-1]
    assert body["start_time"] == int(since.timestamp() * 1000)


async def test_v5_runs_history_pages_once_each(server: VendorServer) -> None:
    """A 120-run history is read in pages of 50, each once, newest first."""
    history = [_run(n, "success") for n in range(1, 120)]
    server.add_v5_pipeline("proj", "long", _run(120, "running"), history=history)
    async with Client(retries=0) as client:
        pipe = client.codearts_pipeline(server.url, project_id="proj", token=TOKEN)
        numbers = [r.number async for r in pipe.runs("long")]
    assert numbers == list(range(120, 0, -1))
    assert [b["offset"] for b in _posts(server, "/pipeline-runs/list")] == [0, 50, 100]


async def test_yunxiao_runs_since_until_and_status(server: VendorServer, client: Client) -> None:
    """Yunxiao history sends ``startTime``, ``endTme`` (sic) and ``status``, newest first."""
    flow = client.yunxiao(server.url, token=TOKEN, organization_id="org")
    assert [r.number async for r in flow.runs("900")] == [5, 4, 3, 2, 1]
    since, until = START + timedelta(hours=2), START + timedelta(hours=30)
    got = [r async for r in flow.runs("900", since=since, status=Status.FAILED, until=until)]
    assert [(r.number, r.status) for r in got] == [(5, Status.FAILED), (3, Status.FAILED)]
    query = [r.query for r in server.requests if r.path.endswith("/900/runs")][-1]
    assert query["startTime"] == str(int(since.timestamp() * 1000))
    assert query["endTme"] == str(int(until.timestamp() * 1000))
    assert query["status"] == "FAIL"


# --- logs --------------------------------------------------------------------------------------


async def test_v5_log_pages_steps_by_offset(server: VendorServer, client: Client) -> None:
    """A 200 KB log is read in offset chunks; its last ``max_bytes`` come back, decoded."""
    text = "".join(f"line {n:06d} ✓\n" for n in range(15_000))
    server.add_v5_pipeline("proj", "chatty", _run(1, "failed", log=text))
    pipe = client.codearts_pipeline(server.url, project_id="proj", token=TOKEN)
    run = await pipe.run("chatty")
    unit = next(job for job in run.jobs if job.name == "unit")
    tail = await pipe.log("chatty", run.run_id or "", unit.id, max_bytes=1000)
    assert len(tail.encode()) <= 1000
    assert tail.endswith("line 014999 ✓\n")
    assert text.endswith(tail)
    offsets = [b["start_offset"] for b in _posts(server, "/logs")]
    assert offsets == [0, 0, 65536, 131072, 196608]  # the checkout step, then four chunks
    whole = await pipe.log("chatty", run.run_id or "", unit.id, max_bytes=10**7)
    assert whole.endswith(text)


async def test_yunxiao_log_tail(server: VendorServer, client: Client) -> None:
    """``flow.log`` returns the job log's tail."""
    flow = client.yunxiao(server.url, token=TOKEN, organization_id="org")
    run = await flow.run("900", 5)
    unit = next(job for job in run.jobs if job.name == "unit")
    assert await flow.log("900", 5, unit.id) == "oops\n"
    assert await flow.log("900", 5, unit.id, max_bytes=2) == "s\n"


# --- paging that cannot run away ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("quirks", "match", "requests"),
    [
        pytest.param({"repeat_page": 1}, "same page again", 3, id="repeated-page"),
        pytest.param({"empty_page": 1, "total_delta": 0}, "ended early", 3, id="empty-middle"),
    ],
)
async def test_v5_list_paging_failures(
    server: VendorServer, client: Client, quirks: dict[str, int], match: str, requests: int
) -> None:
    """A repeated page or a hole in the middle: a ResponseError in bounded requests (the
    first page, then the two its total announces, asked for at once)."""
    server.paging("codearts_pipeline", **quirks)
    pipe = client.codearts_pipeline(server.url, project_id="proj", token=TOKEN)
    with pytest.raises(ResponseError, match=match):
        await pipe.pipelines()
    assert len(_posts(server, "/pipelines/list")) == requests


@pytest.mark.parametrize(
    ("delta", "items", "requests"),
    [
        pytest.param(-200, 100, 1, id="low-stops-at-the-total"),
        pytest.param(500, 252, 8, id="high-stops-at-the-short-page"),
    ],
)
async def test_v5_list_lying_total_ends_with_items_read(
    server: VendorServer, client: Client, delta: int, items: int, requests: int
) -> None:
    """A total that lies ends the list with the items read: low, at that total; high, at the
    short page (after one wave of the pages it announced: 1 + 7 requests for 752 claimed)."""
    server.paging("codearts_pipeline", total_delta=delta)
    pipe = client.codearts_pipeline(server.url, project_id="proj", token=TOKEN)
    assert len(await pipe.pipelines()) == items
    assert len(_posts(server, "/pipelines/list")) == requests


async def test_yunxiao_list_repeated_page(server: VendorServer, client: Client) -> None:
    """A Yunxiao list that serves page 1 again is a ResponseError after two requests."""
    server.paging("yunxiao", repeat_page=1)
    flow = client.yunxiao(server.url, token=TOKEN, organization_id="org")
    with pytest.raises(ResponseError, match="same page again"):
        await flow.pipelines()
    assert sum(r.path.endswith("/org/pipelines") for r in server.requests) == 2


async def test_v5_stuck_log_is_refused(server: VendorServer, client: Client) -> None:
    """A step log whose offsets never move is a ResponseError, not an endless loop."""
    server.paging("codearts_pipeline", stuck_log=True)
    pipe = client.codearts_pipeline(server.url, project_id="proj", token=TOKEN)
    run = await pipe.run("hist")
    with pytest.raises(ResponseError, match="did not move"):
        await pipe.log("hist", run.run_id or "", run.jobs[1].id)
    assert len(_posts(server, "/logs")) == 1


# --- scopes in poll ----------------------------------------------------------------------------


async def test_poll_of_a_v5_scope_is_the_list(server: VendorServer, client: Client) -> None:
    """A v5 scope polls as its list pages alone, keyed by each pipeline's own Target; a
    pipeline both in it and named alone is one entry; one never run is NotFoundError."""
    pipe = client.codearts_pipeline(server.url, project_id="proj", token=TOKEN)
    scope = pipe.scope()
    assert isinstance(scope, Scope)
    results = await client.poll([pipe.target("p001"), scope])
    assert len(results) == 252
    assert isinstance(results[pipe.target("p001")], Run)
    assert isinstance(results[pipe.target("never")], NotFoundError)
    assert scope not in results
    assert not [r for r in server.requests if r.path.endswith("/status")]
    assert len(_posts(server, "/pipelines/list")) == 3


async def test_poll_of_a_yunxiao_scope_polls_each_once(
    server: VendorServer, client: Client
) -> None:
    """A Yunxiao scope lists, then polls each pipeline once, even one also named alone."""
    flow = client.yunxiao(server.url, token=TOKEN, organization_id="org")
    results = await client.poll([flow.scope("app-0*"), flow.target("101"), flow.target("900")])
    assert set(results) == {flow.target(str(100 + i)) for i in range(10)} | {flow.target("900")}
    latest = [r.path for r in server.requests if r.path.endswith("latestPipelineRun")]
    assert len(latest) == len(set(latest)) == 11


async def test_a_scope_whose_listing_fails_is_keyed_itself(
    server: VendorServer, client: Client
) -> None:
    """A scope whose listing fails maps to its error; the other targets are read."""
    pipe = client.codearts_pipeline(server.url, project_id="nope", token=TOKEN)
    flow = client.yunxiao(server.url, token=TOKEN, organization_id="org")
    results = await client.poll([pipe.scope(), flow.target("900")])
    assert isinstance(results[pipe.scope()], NotFoundError)
    assert isinstance(results[flow.target("900")], Run)


# --- scopes in watch ---------------------------------------------------------------------------


async def _until(changes: AsyncIterator[Change], done: object, limit: int = 2000) -> list[Change]:
    seen: list[Change] = []
    async with asyncio.timeout(20):
        async for change in changes:
            seen.append(change)
            if callable(done) and done(seen):
                return seen
            if len(seen) >= limit:
                break
    return seen


async def test_watch_of_a_scope_sees_created_and_removed(server: VendorServer) -> None:
    """A watched v5 scope picks up a pipeline created mid-watch within one re-expansion and
    yields REMOVED for one deleted, from its list requests alone."""
    async with Client(retries=0) as client:
        pipe = client.codearts_pipeline(server.url, project_id="proj", token=TOKEN)
        watcher = client.watcher([pipe.scope("api*")], interval=0.05)
        async with watcher:
            changes = aiter(watcher)
            first = await _until(changes, lambda seen: len(seen) == 1)
            assert (first[0].target, first[0].kind) == (pipe.target("hist"), ChangeKind.FIRST)
            listed = len(_posts(server, "/pipelines/list"))
            server.add_v5_pipeline("proj", "new", _run(1, "running"), name="api-new")
            server.remove_pipeline("codearts_pipeline", ["hist"], project_id="proj")
            later = await _until(changes, lambda seen: len(seen) == 2)
        assert len(_posts(server, "/pipelines/list")) - listed == 1  # one re-expansion
    kinds = {(c.target, c.kind) for c in later}
    assert kinds == {
        (pipe.target("new"), ChangeKind.FIRST),
        (pipe.target("hist"), ChangeKind.REMOVED),
    }
    removed = next(c for c in later if c.kind is ChangeKind.REMOVED)
    assert isinstance(removed.previous, Run)
    assert isinstance(removed.current, NotFoundError)
    assert not [r for r in server.requests if r.path.endswith("/status")]


async def test_watch_of_a_yunxiao_scope_adds_a_new_pipeline(server: VendorServer) -> None:
    """A watched Yunxiao scope polls its pipelines and watches one created mid-watch."""
    async with Client(retries=0) as client:
        flow = client.yunxiao(server.url, token=TOKEN, organization_id="org")
        async with client.watcher([flow.scope("web*")], interval=0.05) as watcher:
            changes = aiter(watcher)
            first = await _until(changes, lambda seen: len(seen) == 1)
            server.add_yunxiao_pipeline("901", _run(1, "success"), "org", name="web-2")
            later = await _until(
                changes, lambda seen: any(c.target == flow.target("901") for c in seen)
            )
    assert first[0].target == flow.target("900")
    assert later[-1].kind is ChangeKind.FIRST


async def test_watch_names_the_failed_job_of_a_v5_run_once(server: VendorServer) -> None:
    """A v5 run seen to fail is read in detail once, so its change carries the jobs (and the
    branch and commit the status gave, which the detail does not)."""
    script = [_run(1, "running"), _run(1, "failed")]
    server.add_v5_pipeline("proj", "flaky", script, name="flaky")
    async with Client(retries=0) as client:
        pipe = client.codearts_pipeline(server.url, project_id="proj", token=TOKEN)
        async with client.watcher([pipe.target("flaky")], interval=0.05) as watcher:
            changes = await _until(aiter(watcher), lambda seen: len(seen) == 2)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.3):  # a few more polls: no second detail
                    async for _ in watcher:
                        pass
    assert [c.kind for c in changes] == [ChangeKind.FIRST, ChangeKind.FINISHED]
    run = changes[1].run
    assert run is not None
    assert run.status is Status.FAILED
    assert [j.name for j in run.jobs if j.status is Status.FAILED] == ["unit"]
    assert (run.ref, run.sha) == ("main", script[1].sha)  # kept from the status: the detail
    details = [r for r in server.requests if r.path.endswith("/pipeline-runs/detail")]
    assert len(details) == 1


# --- Yunxiao errors ----------------------------------------------------------------------------


async def test_yunxiao_429_reset_at_in_the_body(server: VendorServer) -> None:
    """A Yunxiao 429 without Retry-After says when in its body's ``reset_at``."""
    reset = int((datetime.now(UTC) + timedelta(seconds=120)).timestamp())
    server.fault(vendor="yunxiao", status=429, body={"errorCode": "Throttled", "reset_at": reset})
    async with Client(retries=3, max_retry_wait=60, sleep=_no_sleep) as client:
        flow = client.yunxiao(server.url, token=TOKEN, organization_id="org")
        with pytest.raises(RateLimitedError) as caught:
            await flow.latest_run("900")
    assert caught.value.retry_after is not None
    assert 100 < caught.value.retry_after <= 120
    assert server.request_count == 1  # past max_retry_wait: not waited out


async def test_yunxiao_error_description_is_the_fallback(server: VendorServer) -> None:
    """An empty ``errorMessage`` falls back to ``errorDescription``."""
    body = {"errorCode": "NotFound", "errorMessage": "", "errorDescription": "no such run"}
    server.fault(vendor="yunxiao", status=404, body=body)
    async with Client(retries=0) as client:
        flow = client.yunxiao(server.url, token=TOKEN, organization_id="org")
        with pytest.raises(NotFoundError) as caught:
            await flow.run("900", 1)
    assert (caught.value.code, caught.value.message) == ("NotFound", "no such run")


def test_a_scope_is_listed_at_least_every_ten_intervals() -> None:
    """However long the idle interval, a scope waits at most ten watch intervals between
    listings (and never longer than the idle interval)."""
    from pipestatus.watch.scheduler import Watcher
    from pipestatus.watch.scoping import MAX_RESCAN

    assert MAX_RESCAN == 10
    assert Watcher(interval=2.0, idle_interval=3600.0)._rescan() == 20.0
    assert Watcher(interval=2.0, idle_interval=5.0)._rescan() == 5.0
