"""Refusing a bad answer costs what decoding it costs: the normalizers stop at the first bad
value of a list, report and log a bounded amount, and a huge answer never holds the event loop
long enough to cost the other targets of a poll their results."""

from __future__ import annotations

import asyncio
import json
import logging
import tracemalloc
from collections.abc import Awaitable
from typing import Any, TypeVar

import cattrs
import pytest
from conftest import load_fixture
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz_normalize import mutated

from pipestatus import Client, Run
from pipestatus._wire import MESSAGE_LIMIT, PATH_LIMIT, first_error
from pipestatus.errors import ResponseError
from pipestatus.testing import SimJob, SimRun, SimStage, VendorServer
from pipestatus.vendors import codearts_pipeline, codearts_repo, yunxiao
from pipestatus.vendors.codearts_pipeline import MAX_UNATTRIBUTED, parse_batch

T = TypeVar("T")
TOKEN = "amplify-token"
MIB = 1024 * 1024
#: The longest the event loop may be held while a 1 MiB wrong-shaped answer is refused. It is
#: generous for a shared, noisy machine (decoding 1 MiB of JSON takes about 20 ms here), and
#: far under what 0.1 took: 3 s for 117 KB, about 50 s for 1 MiB.
STALL_BOUND = 0.5
#: Memory traced while refusing a 1 MiB wrong-shaped payload (0.1: about 800 MiB).
REFUSAL_MEMORY_BOUND = 4 * MIB


def _wrong_list(prefix: bytes, suffix: bytes, size: int = MIB) -> bytes:
    """``prefix`` + ``0, 0, ...`` + ``suffix``, about ``size`` bytes of valid JSON."""
    count = (size - len(prefix) - len(suffix)) // 3
    return prefix + b", ".join([b"0"] * count) + suffix


#: Per vendor: the answer with a huge list of wrong items where a list of objects belongs.
WRONG: dict[str, bytes] = {
    "codearts_repo": _wrong_list(b'{"id": 1, "status": "running", "stages": [', b"]}"),
    "codearts_pipeline": _wrong_list(b"[", b"]"),
    "yunxiao": _wrong_list(b'{"pipelineId": 9, "status": "RUNNING", "stages": [', b"]}"),
}


def _a_run(word: str = "running") -> SimRun:
    return SimRun(number=1, status=word, stages=[SimStage("build", [SimJob("make", word)])])


async def _with_ticker(work: Awaitable[T]) -> tuple[T, float]:
    """``work``'s result and the longest gap between two ticks of a task that asks the loop
    for a turn every 2 ms meanwhile: how long the event loop was held at most."""
    loop = asyncio.get_running_loop()
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = loop.time()
        while not done.is_set():
            await asyncio.sleep(0.002)
            now = loop.time()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0)  # the ticker runs before the work starts
    try:
        result = await work
    finally:
        done.set()
        await ticking
    return result, max(gaps, default=0.0)


# --- the normalizers ---------------------------------------------------------------------------


def test_a_huge_wrong_list_is_refused_at_its_first_element() -> None:
    """A 1 MiB list of wrong items is refused naming its first element only, with no count of
    the others, within a few MiB of memory."""
    payload = json.loads(WRONG["codearts_repo"])
    tracemalloc.start()
    try:
        with pytest.raises(ResponseError) as info:
            codearts_repo.parse_latest_jobs(payload)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.path == "$.stages[0]"
    assert str(info.value) == (
        "codearts_repo: unexpected LatestJobs payload: expected an object, got number @ $.stages[0]"
    )
    assert peak < REFUSAL_MEMORY_BOUND, peak


def test_the_first_bad_element_is_found_past_good_ones() -> None:
    """Past good elements, the refusal names the first bad one, deep inside it."""
    payload = load_fixture("codearts_repo", "latest-jobs-200.json")
    stage = payload["stages"][0]
    payload["stages"] = [stage] * 500 + [{**stage, "jobs": [*stage["jobs"], {"id": []}]}] * 500
    with pytest.raises(ResponseError) as info:
        codearts_repo.parse_latest_jobs(payload)
    jobs = len(stage["jobs"])
    assert info.value.path == f"$.stages[500].jobs[{jobs}].id"


@pytest.mark.parametrize("depth", [50, 5_000])
def test_what_a_refusal_reports_is_bounded(depth: int) -> None:
    """However long the path or the offending value, the message and path stay bounded."""
    huge_negative = -(10**4000)  # its text alone is 4,000 digits
    for payload in ({"pipeline_id": huge_negative}, {"pipeline_id": "x" * (depth * 100)}):
        message, path = first_error(
            codearts_pipeline.converters, payload, codearts_pipeline.WirePipelineLatestRun
        )
        assert len(message) <= MESSAGE_LIMIT
        assert len(path) <= PATH_LIMIT
        assert path == "$.pipeline_id"


def test_a_batch_of_wrong_items_is_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    """20,000 unreadable items of a v5 batch answer are counted, the first few kept, and
    logged in one line for the whole answer."""
    with caplog.at_level(logging.WARNING, logger="pipestatus"):
        result = parse_batch([0] * 20_000)
    assert result.results == {}
    assert result.unreadable == 20_000
    assert len(result.unattributed) == MAX_UNATTRIBUTED
    assert result.unattributed[0].path == "$[0]"
    lines = [r for r in caplog.records if r.name.startswith("pipestatus")]
    assert len(lines) == 1
    assert "20000 item(s)" in lines[0].getMessage()
    assert "\n" not in lines[0].getMessage()


def test_a_batch_reads_only_the_pipelines_asked_for() -> None:
    """With ``wanted``, items of other pipelines are skipped unread, good or bad."""
    item = load_fixture("codearts_pipeline", "batch-status-200.json")[0]
    asked = item["pipeline_id"]
    others = [{**item, "pipeline_id": f"other-{n}", "status": n} for n in range(1000)]
    result = parse_batch([*others, item], wanted=[asked])
    assert set(result.results) == {asked}
    assert isinstance(result.results[asked], Run)


def test_repeated_items_of_a_pipeline_keep_the_first_good_one() -> None:
    """A pipeline repeated thousands of times keeps its first good run; bad repeats before it
    keep one error until a good one comes."""
    item = load_fixture("codearts_pipeline", "batch-status-200.json")[0]
    bad = {**item, "status": 5}
    result = parse_batch([bad] * 1000 + [item] + [{**item, "run_number": 99}] * 1000)
    (outcome,) = result.results.values()
    assert isinstance(outcome, Run)
    assert outcome.number == item["run_number"]
    only_bad = parse_batch([bad] * 1000).results[item["pipeline_id"]]
    assert isinstance(only_bad, ResponseError)
    assert only_bad.path == "$[0].status"


SCHEMAS: dict[str, tuple[Any, Any, str, str]] = {
    "v4 latest-jobs": (
        codearts_repo.converters,
        codearts_repo.WireLatestJobs,
        "codearts_repo",
        "latest-jobs-derived-200.json",
    ),
    "v5 run": (
        codearts_pipeline.converters,
        codearts_pipeline.WirePipelineLatestRun,
        "codearts_pipeline",
        "batch-status-chinese-200.json",
    ),
    "yunxiao run": (
        yunxiao.converters,
        yunxiao.WireLatestRun,
        "yunxiao",
        "latest-run-derived-200.json",
    ),
}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_the_first_error_is_the_one_detailed_validation_names_first(
    name: str, data: st.DataObject
) -> None:
    """On any mutation of a vendor payload that the schema refuses, the first bad value found
    is the first one cattrs' detailed validation names (its path, in the vendor's keys)."""
    converters, cls, vendor, fixture = SCHEMAS[name]
    base = load_fixture(vendor, fixture)
    payload = data.draw(mutated(base[0] if isinstance(base, list) else base))
    try:
        converters.detailed.structure(payload, cls)
    except (cattrs.BaseValidationError, TypeError) as exc:
        lines = cattrs.transform_error(exc, path="$")
        expected = lines[0].rpartition(" @ ")[2] if lines else "$"
    except RecursionError:
        return
    else:
        return  # accepted: nothing to locate
    assert first_error(converters, payload, cls)[1] == expected


# --- over the wire -------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", sorted(WRONG))
async def test_refusing_a_1mib_wrong_answer_does_not_stall_the_loop(vendor: str) -> None:
    """A 1 MiB answer of wrong-shaped items is refused with a ResponseError while the event
    loop is never held longer than the stated bound (measured by a ticker task)."""
    async with VendorServer(token=TOKEN) as server, Client(timeout=30, retries=0) as client:
        if vendor == "codearts_repo":
            server.add_repo_pipeline(2000, 1, _a_run())
            target = client.codearts_repo(server.url, token=TOKEN).target(2000, 1)
        elif vendor == "codearts_pipeline":
            server.add_v5_pipeline("proj", "p1", _a_run())
            pipe = client.codearts_pipeline(server.url, project_id="proj", token=TOKEN)
            target = pipe.target("p1")
        else:
            server.add_yunxiao_pipeline("9", _a_run())
            target = client.yunxiao(server.url, token=TOKEN).target("9")
        server.fault(vendor=vendor, body=WRONG[vendor])
        results, stall = await _with_ticker(client.poll([target]))
    assert isinstance(results[target], ResponseError), results[target]
    assert stall < STALL_BOUND, stall


async def test_a_huge_bad_answer_costs_its_neighbours_nothing() -> None:
    """Ten healthy pipelines whose server answers in 0.3 s keep their runs in the same poll as
    a pipeline answered with 1 MiB of wrong items."""
    async with VendorServer(token=TOKEN) as server, Client(timeout=3, retries=0) as client:
        repo = client.codearts_repo(server.url, token=TOKEN)
        for number in range(1, 12):
            server.add_repo_pipeline(2000, number, _a_run())
        server.fault(vendor="codearts_repo", pipeline="11", body=WRONG["codearts_repo"])
        server.fault(vendor="codearts_repo", delay=0.3)
        healthy = [repo.target(2000, number) for number in range(1, 11)]
        bad = repo.target(2000, 11)
        results = await client.poll([bad, *healthy])
    assert isinstance(results[bad], ResponseError)
    assert all(isinstance(results[target], Run) for target in healthy), results


# --- listings (pipeline lists, run histories) --------------------------------------------------


def _listing_pages() -> dict[str, Any]:
    """Each listing parser, fed a page of 100,000 numbers where its items belong."""
    from pipestatus.vendors import _codearts_pipeline_detail as v5
    from pipestatus.vendors import _yunxiao_history as flow

    numbers = [0] * 100_000
    listed = flow._listed(yunxiao.converters, "yunxiao")
    runs = flow._structurer(yunxiao.converters, flow.WireRunItem, "yunxiao")
    return {
        "v5 pipeline list": lambda: (
            v5.parse_pipelines_page(
                {"pipelines": numbers, "total": 1}, codearts_pipeline.parse_run, "codearts_pipeline"
            ).unattributed
        ),
        "v5 run history": lambda: (
            v5.parse_runs_page(
                {"pipeline_runs": numbers, "total": 1},
                codearts_pipeline.parse_run,
                "codearts_pipeline",
                "p1",
            ).items
        ),
        "yunxiao pipeline list": lambda: flow.parse_pipelines(numbers, listed, "yunxiao"),
        "yunxiao run history": lambda: flow.parse_runs(
            numbers, "9", runs, yunxiao.STATUS, yunxiao.TRIGGER_MODES
        ),
    }


@pytest.mark.parametrize("name", sorted(_listing_pages()))
def test_a_listing_page_of_wrong_items_is_cheap_and_one_log_line(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A pipeline-list or run-history page of 100,000 wrong items is read with a few described
    errors (the rest share one), within a few MiB, and at most one log line for the page."""
    parse = _listing_pages()[name]
    tracemalloc.start()
    try:
        with caplog.at_level(logging.WARNING, logger="pipestatus"):
            result = parse()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    distinct = {id(item) for item in result}
    assert len(distinct) <= MAX_UNATTRIBUTED
    assert len([r for r in caplog.records if r.name.startswith("pipestatus")]) <= 1
    assert peak < REFUSAL_MEMORY_BOUND, peak
