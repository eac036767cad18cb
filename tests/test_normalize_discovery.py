"""The new payloads, normalized with no network and no event loop: the v5 pipeline list, run
detail, run history and step log, Yunxiao's pipeline list, run list and job log, a 429's
``reset_at``, and the pure paging rule and log tail every reader shares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import fixture_bytes, load_fixture

from pipestatus import Run, Status
from pipestatus._wire import Structurer
from pipestatus.errors import ResponseError
from pipestatus.vendors import codearts_pipeline as v5
from pipestatus.vendors import yunxiao
from pipestatus.vendors._base import glob_literal
from pipestatus.vendors._codearts_pipeline_detail import (
    job_steps,
    parse_detail,
    parse_log_chunk,
    parse_pipelines_page,
    parse_runs_page,
)
from pipestatus.vendors._paging import Pages, read_count
from pipestatus.vendors._tail import Tail
from pipestatus.vendors._yunxiao_history import (
    WireListedPipeline,
    WireRunItem,
    parse_pipelines,
    parse_runs,
    reset_after,
)

PIPE, FLOW = "codearts_pipeline", "yunxiao"
T = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)  # 1700000000000 ms


def at(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


# --- v5 ----------------------------------------------------------------------------------------


def test_v5_list_page_item_by_item() -> None:
    """A list page: a run, a pipeline never run, a bad run kept as its error, an item without
    an ID left out (and reported), and the claimed total."""
    page = parse_pipelines_page(load_fixture(PIPE, "pipelines-list-200.json"), v5.parse_run, PIPE)
    assert page.total == 3
    first, never, broken = page.items
    assert (first.pipeline_id, first.name) == ("d19799d619424b2bb2625ec2d93ea087", "release-api")
    assert isinstance(first.latest, Run)
    assert (first.latest.status, first.latest.number, first.latest.ref) == (
        Status.FAILED,
        2,
        "test-lbdsb11",
    )
    assert first.latest.pipeline_id == first.pipeline_id  # filled in from the item
    assert (never.name, never.latest) == ("nightly", None)
    assert isinstance(broken.latest, ResponseError)
    assert broken.latest.path == "$.pipelines[2].latest_run.stage_status_list"
    assert len(page.unattributed) == 1
    assert page.unattributed[0].path == "$.pipelines[3].pipeline_id"


def test_v5_run_detail_field_by_field() -> None:
    """The failed run's detail against values worked out by hand from the fixture."""
    run = parse_detail(load_fixture(PIPE, "run-detail-failed-200.json"), v5.STATUS, "x")
    assert (run.vendor, run.pipeline_id) == (PIPE, "d19799d619424b2bb2625ec2d93ea087")
    assert (run.run_id, run.number) == ("7f3e5d1c9b8a4f6e8d2c1b0a9f8e7d6c", 42)
    assert (run.status, run.raw_status, run.trigger) == (Status.FAILED, "FAILED", "Manual")
    assert (run.started_at, run.finished_at, run.as_of) == (at(0), at(600), at(660))
    assert (run.duration, run.elapsed) == (timedelta(minutes=10), timedelta(minutes=10))
    assert run.url == "https://devcloud.example.com/cicd/project/p/pipeline/detail/x/y"
    # Stages by sequence (the payload lists Test first), jobs by sequence within each.
    assert [(s.id, s.name, s.order, s.status) for s in run.stages] == [
        ("st-1", "Build", 0, Status.SUCCESS),
        ("st-2", "Test", 1, Status.FAILED),
    ]
    assert (run.stages[1].started_at, run.stages[1].finished_at) == (at(300), at(600))
    assert [(j.id, j.name, j.status, j.raw_status) for j in run.jobs] == [
        ("job-1", "compile", Status.SUCCESS, "COMPLETED"),
        ("job-2", "unit", Status.FAILED, "FAILED"),
        ("job-3", "lint", Status.SKIPPED, "SKIPPED"),
    ]
    unit = run.jobs[1]
    assert (unit.started_at, unit.finished_at) == (at(301), at(590))
    assert (unit.stage_id, unit.stage_name, unit.build_id) == ("st-2", "Test", "exec-job-2")
    assert (run.jobs[2].started_at, run.jobs[2].finished_at) == (None, None)


def test_v5_running_detail_elapsed_by_the_servers_clock() -> None:
    """A running run has no end: its elapsed time is the server's clock minus its start."""
    run = parse_detail(load_fixture(PIPE, "run-detail-running-200.json"), v5.STATUS, "x")
    assert (run.status, run.finished_at, run.duration) == (Status.RUNNING, None, None)
    assert run.elapsed == timedelta(seconds=125)
    assert [(j.name, j.status) for j in run.jobs] == [
        ("compile", Status.RUNNING),
        ("queued", Status.PENDING),
    ]


def test_v5_detail_names_a_jobs_steps() -> None:
    """``job_steps`` gives a job's step IDs in order, and ``None`` for no such job."""
    payload = load_fixture(PIPE, "run-detail-failed-200.json")
    assert job_steps(payload, "job-1") == ["step-1a", "step-1b"]
    assert job_steps(payload, "job-3") == []
    assert job_steps(payload, "nope") is None


def test_v5_run_history_page() -> None:
    """A history page: each run normalized as a batch item, the pipeline ID filled in."""
    page = parse_runs_page(load_fixture(PIPE, "pipeline-runs-200.json"), v5.parse_run, PIPE, "p")
    assert page.total == 3
    assert [(r.number, r.status, r.started_at) for r in page.items] == [
        (3, Status.RUNNING, at(7200)),
        (2, Status.FAILED, at(3600)),
        (1, Status.SUCCESS, at(0)),
    ]


def test_v5_step_log_chunks() -> None:
    """A step-log reply: its text, whether more follows, and where it ends."""
    first = parse_log_chunk(load_fixture(PIPE, "step-log-200.json"))
    last = parse_log_chunk(load_fixture(PIPE, "step-log-last-200.json"))
    assert (first.text, first.has_more, first.end_offset) == (
        "[INFO] build started\n构建中\n",
        True,
        27,
    )
    assert (last.has_more, last.end_offset) == (False, 49)


# --- Yunxiao -----------------------------------------------------------------------------------


def test_yunxiao_pipeline_list() -> None:
    """The pipeline list: IDs as strings, names kept, an item without an ID left out."""
    structurer = Structurer(yunxiao.converters, WireListedPipeline, vendor=FLOW)
    found = parse_pipelines(load_fixture(FLOW, "pipelines-200.json"), structurer, FLOW)
    assert found == [("124", "mobile-build"), ("125", "移动端发布"), ("126", None)]


def test_yunxiao_run_list() -> None:
    """The run list: webhook words read by the table, times in epoch ms, trigger modes by
    name (an unknown one by its number), a run without an ID kept as its error."""
    structurer = Structurer(yunxiao.converters, WireRunItem, vendor=FLOW)
    runs = parse_runs(
        load_fixture(FLOW, "runs-200.json"),
        "124",
        structurer,
        yunxiao.STATUS,
        yunxiao.TRIGGER_MODES,
    )
    good = [r for r in runs if isinstance(r, Run)]
    assert [(r.number, r.status, r.raw_status, r.trigger) for r in good] == [
        (12, Status.RUNNING, "RUNNING", "commit"),
        (11, Status.FAILED, "FAIL", "manual"),
        (10, Status.RUNNING, "CANCELLING", "9"),
    ]
    assert (good[1].started_at, good[1].finished_at) == (at(3600), at(3900))
    assert isinstance(runs[3], ResponseError)
    assert runs[3].path == "$[3].pipelineRunId"


def test_yunxiao_429_reset_at() -> None:
    """``reset_at`` in epoch seconds, epoch milliseconds or ISO 8601 -> seconds from now."""
    now = datetime.fromtimestamp(1_700_000_000, UTC)
    assert reset_after(fixture_bytes(FLOW, "error-429-reset-at.json"), now=now) == 60.0
    assert reset_after(b'{"reset_at": 1700000030000}', now=now) == 30.0
    assert reset_after(b'{"reset_at": "2023-11-14T22:13:30Z"}', now=now) == 10.0
    assert reset_after(b'{"reset_at": "1700000005"}', now=now) == 5.0
    assert reset_after(b'{"reset_at": 1600000000}', now=now) == 0.0  # past: now
    for body in (b"{}", b"<html>", b'{"reset_at": true}', b'{"reset_at": "soon"}', b"[1]"):
        assert reset_after(body, now=now) is None


def test_yunxiao_error_description_fallback() -> None:
    """An empty ``errorMessage`` falls back to ``errorDescription``."""
    body = fixture_bytes(FLOW, "error-404-description.json")
    assert yunxiao.decode_error(body) == ("NotFound", "The pipeline run does not exist.")


# --- the paging rule ---------------------------------------------------------------------------


def test_pages_end_at_a_short_page_or_the_total() -> None:
    """A short page ends a list; so does reaching the claimed total."""
    pages = Pages("the list", vendor="v", limit=2)
    assert pages.page(["a", "b"]) is True
    assert pages.page(["c"]) is False
    pages = Pages("the list", vendor="v", limit=2)
    assert pages.page(["a", "b"], total=2) is False


@pytest.mark.parametrize(
    ("pages", "match"),
    [
        pytest.param([(["a", "b"], 9), (["a", "b"], 9)], "same page again", id="repeat"),
        pytest.param([(["a", "b"], 9), ([], 9)], "ended early", id="hole"),
    ],
)
def test_pages_refuse_what_would_hide_or_loop(
    pages: list[tuple[list[str], int]], match: str
) -> None:
    """A repeated page, or an empty one before the total, is a ResponseError."""
    rule = Pages("the list", vendor="v", limit=2)
    *before, (keys, total) = pages
    for earlier, claimed in before:
        assert rule.page(earlier, total=claimed) is True
    with pytest.raises(ResponseError, match=match):
        rule.page(keys, total=total)


def test_pages_are_bounded() -> None:
    """A list that never ends is a ResponseError after ``max_pages`` pages."""
    rule = Pages("the list", vendor="v", limit=1, max_pages=5)
    for n in range(4):
        assert rule.page([n]) is True
    with pytest.raises(ResponseError, match="did not end after 5 pages"):
        rule.page([4])
    assert rule.pages == 5


def test_pages_follow_a_cursor_and_drop_repeats() -> None:
    """A next-page cursor is followed, must move forward, and an empty one ends the list;
    items seen before are marked stale."""
    rule = Pages("the list", vendor="v", limit=2)
    assert rule.page(["a", "b"], next_page=2, has_next=True) is True
    assert rule.fresh(["a", "b"]) == [True, True]
    assert rule.fresh(["b", "c"]) == [False, True]
    with pytest.raises(ResponseError, match="named page 2 next again"):
        rule.page(["c", "d"], next_page=2, has_next=True)
    assert Pages("l", vendor="v", limit=2).page(["a", "b"], has_next=False) is False
    assert (read_count("12"), read_count(" 7 "), read_count("-1"), read_count(True)) == (
        12,
        7,
        None,
        None,
    )


# --- the log tail and the name filter ----------------------------------------------------------


def test_tail_keeps_the_last_bytes_and_a_whole_character() -> None:
    """The tail keeps the last ``max_bytes`` bytes, dropping a character cut at the front."""
    tail = Tail(5)
    for chunk in ("abc", "dé", "fg"):  # 8 bytes in all, "é" is two
        tail.add(chunk)
    assert (tail.total, tail.cut, tail.text()) == (8, True, "défg")
    tail = Tail(4)
    tail.add("xyzé")  # the last four bytes start inside nothing: "yzé" is 4 bytes
    assert tail.text() == "yzé"
    tail = Tail(1)
    tail.add("é")  # half a character: nothing whole is left
    assert tail.text() == ""
    with pytest.raises(ValueError, match="max_bytes"):
        Tail(-1)


@pytest.mark.parametrize(
    ("glob", "literal"),
    [
        (None, None),
        ("*", None),
        ("release-*", "release-"),
        ("*api*", "api"),
        ("svc-1[0-1]?", "svc-1"),
        ("a?bcd*e", "bcd"),
        ("x[", "x["),
    ],
)
def test_glob_literal(glob: str | None, literal: str | None) -> None:
    """A glob's longest plain run is the vendor's name filter: it can only narrow."""
    assert glob_literal(glob) == literal


def test_yunxiao_job_log_content_is_kept_as_sent() -> None:
    """A job log's ``content`` comes back as the vendor sent it, escapes included (the
    command cleans it; the library does not)."""
    from pipestatus.vendors._yunxiao_history import WireJobLog

    wire = Structurer(yunxiao.converters, WireJobLog, vendor=FLOW)(
        load_fixture(FLOW, "job-log-200.json")
    )
    assert wire.content is not None
    assert wire.content.endswith("\x1b[31mError: 1 failing\x1b[0m\n")
