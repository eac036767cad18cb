"""CodeArts Repo v4 normalizers: recorded payloads -> Run / Job, worked out by hand."""

from __future__ import annotations

import copy
import itertools
import logging
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import load_fixture

from pipestatus import _time
from pipestatus._logonce import LogOnce
from pipestatus.errors import ResponseError
from pipestatus.model import Job, Run
from pipestatus.status import Status
from pipestatus.vendors import codearts_repo
from pipestatus.vendors.codearts_repo import parse_job, parse_jobs_page, parse_latest_jobs

VENDOR = "codearts_repo"
SHA = "1c46c505c84853887efe2ea9ea02a1333bae2237"
URL = (
    "https://example.com/cicd/project/72271b5446614062a01b8be944c9f372/pipeline/detail/"
    "724cb378007d4303b91f85161f67d6b0/c9cfdc8b918e44c09ad1cdd8c6b13c78"
)
JOB_START = datetime(2025, 5, 17, 3, 2, 25, tzinfo=UTC)
JOB_END = datetime(2025, 5, 17, 3, 2, 56, tzinfo=UTC)

#: The v4 status words, worked out from the v4 documents (not read from the code).
WORDS = {
    "pending": Status.PENDING,
    "running": Status.RUNNING,
    "success": Status.SUCCESS,
    "failed": Status.FAILED,
    "canceled": Status.CANCELED,
    "skipped": Status.SKIPPED,
    "timedout": Status.TIMEDOUT,
}

_unique = itertools.count()


def fixture(name: str) -> Any:
    return load_fixture(VENDOR, name)


def doc_job() -> dict[str, Any]:
    """A fresh copy of the documented job (from ``latest-jobs-200.json``)."""
    return copy.deepcopy(fixture("latest-jobs-200.json")["stages"][0]["jobs"][0])


def all_datetimes(run: Run) -> list[datetime]:
    values: list[datetime | None] = [run.started_at, run.finished_at]
    for stage in run.stages:
        values += [stage.started_at, stage.finished_at]
        values += [t for job in stage.jobs for t in (job.started_at, job.finished_at)]
    return [value for value in values if value is not None]


@pytest.fixture
def fresh_time_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad times are logged once per (vendor, field) per process: start from a clean memory."""
    monkeypatch.setattr(_time, "_bad_times", LogOnce(_time.logger))


# --- the documented examples, field by field --------------------------------------------------


def test_latest_jobs_doc_example_run_fields() -> None:
    """The documented latest-jobs answer gives a run whose times are derived from its job."""
    run = parse_latest_jobs(fixture("latest-jobs-200.json"))

    assert run.vendor == "codearts_repo"
    assert run.pipeline_id == "6"
    assert run.run_id is None
    assert run.number is None
    assert run.status is Status.SUCCESS
    assert run.raw_status == "success"
    assert run.started_at == JOB_START
    assert run.finished_at == JOB_END
    assert run.duration is not None
    assert run.duration.total_seconds() == 31
    assert run.ref == "dev"
    assert run.sha == SHA
    assert run.trigger is None
    assert run.url is None
    assert len(run.stages) == 1


def test_latest_jobs_doc_example_stage_fields() -> None:
    """The documented stage keeps its ID, name and word; its times come from its one job."""
    (stage,) = parse_latest_jobs(fixture("latest-jobs-200.json")).stages

    assert stage.id == "8125"
    assert stage.name == "external"
    assert stage.order == 0
    assert stage.status is Status.SUCCESS
    assert stage.raw_status == "success"
    assert stage.started_at == JOB_START
    assert stage.finished_at == JOB_END
    assert len(stage.jobs) == 1


def test_latest_jobs_doc_example_job_fields() -> None:
    """The documented job is read field by field, +08:00 times in UTC and the stray quote gone."""
    run = parse_latest_jobs(fixture("latest-jobs-200.json"))

    assert run.jobs == (
        Job(
            id="31930",
            name="Task 1.",
            status=Status.SUCCESS,
            raw_status="success",
            started_at=JOB_START,
            finished_at=JOB_END,
            url=URL,
            ref="dev",
            sha=SHA,
            build_id="0ede266890ddd33cff76da30090b9780",
            stage_id="8125",
            stage_name="external",
        ),
    )
    assert not run.jobs[0].url.endswith('"')  # type: ignore[union-attr]


def test_jobs_page_doc_example() -> None:
    """The documented job list (with its ``updated_at"`` key) gives one job with its stage."""
    assert parse_jobs_page(fixture("jobs-200.json")) == [
        Job(
            id="31930",
            name="Task 1.",
            status=Status.SUCCESS,
            raw_status="success",
            started_at=JOB_START,
            finished_at=JOB_END,
            url=URL,
            ref="dev",
            sha=SHA,
            build_id="0ede266890ddd33cff76da30090b9780",
            stage_id="123",
            stage_name="external",
        )
    ]


def test_parse_job_equals_page_item() -> None:
    """parse_job on one list item gives the same Job as parse_jobs_page does for it."""
    page = fixture("jobs-200.json")
    assert parse_job(page[0]) == parse_jobs_page(page)[0]


def test_jobs_page_empty() -> None:
    """An empty job list is an empty list, not an error."""
    assert parse_jobs_page(fixture("jobs-empty-200.json")) == []


# --- variants -------------------------------------------------------------------------------


def test_nulls_everywhere_optional() -> None:
    """Null in every optional field gives None fields, derived statuses and no times."""
    run = parse_latest_jobs(fixture("latest-jobs-nulls-200.json"))
    (stage,) = run.stages
    (job,) = stage.jobs

    assert job == Job(
        id="31930",
        name=None,
        status=Status.PENDING,
        raw_status=None,
        stage_id="8125",
        stage_name=None,
    )
    assert (stage.name, stage.status, stage.raw_status) == (None, Status.PENDING, None)
    assert (stage.started_at, stage.finished_at) == (None, None)
    assert (run.status, run.raw_status) == (Status.PENDING, None)
    assert (run.started_at, run.finished_at, run.ref, run.sha) == (None, None, None, None)


def test_job_list_nulls_everywhere_optional() -> None:
    """A job-list item with only its ID set gives a job with everything else None."""
    (job,) = parse_jobs_page(fixture("jobs-nulls-200.json"))
    assert job == Job(id="31930", name=None, status=Status.PENDING, raw_status=None)


def test_optional_fields_missing() -> None:
    """Missing optional keys (even a stage without ``jobs``) read as absent, not as errors."""
    run = parse_latest_jobs(fixture("latest-jobs-missing-200.json"))

    assert [stage.id for stage in run.stages] == ["8125", "8126"]
    assert run.stages[1].jobs == ()
    assert run.stages[0].jobs[0] == Job(
        id="31930", name=None, status=Status.PENDING, raw_status=None, stage_id="8125"
    )
    assert run.status is Status.PENDING


def test_no_stages() -> None:
    """A run without ``stages`` has no stages and is pending (nothing known yet)."""
    run = parse_latest_jobs(fixture("latest-jobs-no-stages-200.json"))
    assert (run.stages, run.status, run.raw_status) == ((), Status.PENDING, None)


def test_string_ids_equal_integer_ids() -> None:
    """IDs sent as strings give the same run as IDs sent as integers."""
    as_strings = parse_latest_jobs(fixture("latest-jobs-string-ids-200.json"))
    assert as_strings == parse_latest_jobs(fixture("latest-jobs-200.json"))
    (job,) = parse_jobs_page(fixture("jobs-string-ids-200.json"))
    assert (job.id, job.stage_id) == ("31930", "123")


def test_chinese_names_kept() -> None:
    """Chinese stage, job and branch names pass through unchanged."""
    run = parse_latest_jobs(fixture("latest-jobs-chinese-200.json"))

    assert [stage.name for stage in run.stages] == ["构建", "部署"]
    assert [job.name for job in run.jobs] == ["编译打包", "部署到测试环境"]
    assert [job.stage_name for job in run.jobs] == ["构建", "部署"]
    assert run.ref == "特性/登录"
    assert run.status is Status.RUNNING
    assert run.finished_at is None  # a running run has no end yet


def test_large_run() -> None:
    """The 50-stage, 500-job run keeps every stage and job, sort_id nulls last."""
    run = parse_latest_jobs(fixture("latest-jobs-large-200.json"))

    assert len(run.stages) == 50
    assert len(run.jobs) == 500
    assert [stage.order for stage in run.stages] == list(range(50))
    # Stages with a null sort_id (every tenth, from 9) come last, in payload order.
    assert [stage.id for stage in run.stages[-5:]] == ["8009", "8019", "8029", "8039", "8049"]
    assert run.status is Status.RUNNING


# --- status words ------------------------------------------------------------------------------


def test_word_table_is_the_documented_seven() -> None:
    """The v4 table holds exactly the seven documented words."""
    assert dict(codearts_repo.STATUS.words) == WORDS


@pytest.mark.parametrize(("word", "expected"), WORDS.items(), ids=list(WORDS))
def test_status_word(word: str, expected: Status) -> None:
    """Each documented v4 word maps to its status, and the word is kept verbatim."""
    payload = fixture("latest-jobs-200.json")
    payload["status"] = payload["stages"][0]["status"] = word
    payload["stages"][0]["jobs"][0]["status"] = word
    run = parse_latest_jobs(payload)

    assert (run.status, run.raw_status) == (expected, word)
    assert (run.stages[0].status, run.stages[0].raw_status) == (expected, word)
    assert (run.jobs[0].status, run.jobs[0].raw_status) == (expected, word)


def test_statuses_fixture() -> None:
    """The fixture with one stage per word maps every stage and job by the table."""
    run = parse_latest_jobs(fixture("latest-jobs-statuses-200.json"))

    assert [stage.raw_status for stage in run.stages] == list(WORDS)
    assert [stage.status for stage in run.stages] == list(WORDS.values())
    assert [job.status for job in run.jobs] == list(WORDS.values())


@pytest.mark.parametrize(
    "word", ["SUCCESS", "Success", "sUcCeSs", "TimedOut"], ids=["upper", "title", "mixed", "camel"]
)
def test_status_case_insensitive(word: str) -> None:
    """Status words match whatever their case, and raw_status keeps the case as sent."""
    payload = fixture("latest-jobs-200.json")
    payload["stages"][0]["jobs"][0]["status"] = word
    job = parse_latest_jobs(payload).jobs[0]
    assert job.status is WORDS[word.lower()]
    assert job.raw_status == word


def test_upper_case_fixture() -> None:
    """The upper-case variant normalizes like the documented lower-case one."""
    run = parse_latest_jobs(fixture("latest-jobs-upper-case-200.json"))
    assert [run.status, run.stages[0].status, run.jobs[0].status] == [Status.SUCCESS] * 3
    assert [run.raw_status, run.stages[0].raw_status, run.jobs[0].raw_status] == [
        "SUCCESS",
        "Success",
        "SUCCESS",
    ]


def test_unknown_words_fixture() -> None:
    """Unknown words become pending (not terminal), with the word kept verbatim."""
    run = parse_latest_jobs(fixture("latest-jobs-unknown-status-200.json"))
    assert (run.status, run.raw_status) == (Status.PENDING, "queued_for_review")
    assert (run.stages[0].status, run.stages[0].raw_status) == (Status.PENDING, "blocked")
    assert (run.jobs[0].status, run.jobs[0].raw_status) == (Status.PENDING, "manual")


def test_unknown_word_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """An unknown word is logged once per (vendor, word), however often it appears."""
    word = f"Mystery-{next(_unique)}-{id(caplog)}"
    payload = fixture("latest-jobs-200.json")
    payload["status"] = payload["stages"][0]["status"] = word
    payload["stages"][0]["jobs"][0]["status"] = word
    with caplog.at_level(logging.WARNING):
        parse_latest_jobs(payload)
        parse_latest_jobs(payload)
    lines = [r for r in caplog.records if word in r.getMessage()]
    assert len(lines) == 1
    assert "codearts_repo" in lines[0].getMessage()


# --- derivation and ordering -----------------------------------------------------------------


def test_run_and_stage_derived_from_jobs() -> None:
    """Without words, a stage and the run take the worst child status and the children's span."""
    run = parse_latest_jobs(fixture("latest-jobs-derived-200.json"))
    build, test = run.stages

    assert (build.status, build.raw_status) == (Status.FAILED, None)  # failed > success
    assert build.started_at == datetime(2025, 5, 17, 3, 0, 0, tzinfo=UTC)  # earliest job start
    assert build.finished_at == datetime(2025, 5, 17, 3, 7, 30, tzinfo=UTC)  # latest job end
    assert (test.status, test.started_at, test.finished_at) == (Status.SKIPPED, None, None)
    assert (run.status, run.raw_status) == (Status.FAILED, None)
    assert run.started_at == datetime(2025, 5, 17, 3, 0, 0, tzinfo=UTC)
    assert run.finished_at == datetime(2025, 5, 17, 3, 7, 30, tzinfo=UTC)


def test_running_run_has_no_derived_end() -> None:
    """A run that is not terminal gets a derived start but no end, even if some jobs ended."""
    payload = fixture("latest-jobs-derived-200.json")
    payload["stages"][1]["jobs"][0]["status"] = "running"
    run = parse_latest_jobs(payload)
    assert run.status is Status.RUNNING
    assert run.started_at == datetime(2025, 5, 17, 3, 0, 0, tzinfo=UTC)
    assert run.finished_at is None


def test_vendor_word_wins_over_children() -> None:
    """A stage's own word wins over what its jobs would give."""
    payload = fixture("latest-jobs-200.json")
    payload["stages"][0]["status"] = "canceled"
    run = parse_latest_jobs(payload)
    assert run.stages[0].status is Status.CANCELED
    assert run.jobs[0].status is Status.SUCCESS


def test_stage_order_by_sort_id_nulls_last() -> None:
    """Stages sort by sort_id, a null last, ties and nulls in payload order; order is 0-based."""
    run = parse_latest_jobs(fixture("latest-jobs-sort-order-200.json"))
    # payload: sort_id 3, null, 1, null, 2
    assert [stage.name for stage in run.stages] == [
        "payload 2",
        "payload 4",
        "payload 0",
        "payload 1",
        "payload 3",
    ]
    assert [stage.order for stage in run.stages] == [0, 1, 2, 3, 4]
    assert [job.id for job in run.jobs] == ["103", "105", "101", "102", "104"]


def test_equal_sort_ids_keep_payload_order() -> None:
    """Stages with equal sort_id keep their payload order."""
    payload = fixture("latest-jobs-sort-order-200.json")
    for stage in payload["stages"]:
        stage["sort_id"] = 7
    run = parse_latest_jobs(payload)
    assert [stage.name for stage in run.stages] == [f"payload {n}" for n in range(5)]


# --- types of the output -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "latest-jobs-200.json",
        "latest-jobs-chinese-200.json",
        "latest-jobs-derived-200.json",
        "latest-jobs-large-200.json",
        "latest-jobs-string-ids-200.json",
    ],
)
def test_datetimes_aware_utc_and_ids_str(name: str) -> None:
    """Every datetime is aware UTC and every ID a str."""
    run = parse_latest_jobs(fixture(name))
    times = all_datetimes(run)
    assert times
    assert all(t.tzinfo is not None and t.utcoffset() == UTC.utcoffset(None) for t in times)
    ids: list[str | None] = [run.pipeline_id, *(s.id for s in run.stages)]
    ids += [v for job in run.jobs for v in (job.id, job.stage_id)]
    assert all(type(value) is str for value in ids)


# --- bad payloads -----------------------------------------------------------------------------


def _set(payload: Any, path: tuple[Any, ...], value: Any) -> Any:
    target = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return payload


def _two_jobs() -> dict[str, Any]:
    payload: dict[str, Any] = fixture("latest-jobs-200.json")
    payload["stages"][0]["jobs"].append(doc_job())
    return payload


BAD_LATEST: list[Any] = [
    pytest.param(lambda: [fixture("latest-jobs-200.json")], "$", "object", id="list-for-object"),
    pytest.param(lambda: "latest", "$", "object", id="string-for-object"),
    pytest.param(lambda: None, "$", "object", id="null-for-object"),
    pytest.param(
        lambda: _set(fixture("latest-jobs-200.json"), ("stages",), "stages"),
        "$.stages",
        "array",
        id="string-for-stages",
    ),
    pytest.param(
        lambda: _set(fixture("latest-jobs-200.json"), ("stages", 0), ["stage"]),
        "$.stages[0]",
        "object",
        id="list-for-stage",
    ),
    pytest.param(
        lambda: _set(fixture("latest-jobs-200.json"), ("status",), 3),
        "$.status",
        "string",
        id="number-for-run-status",
    ),
    pytest.param(
        lambda: _set(fixture("latest-jobs-200.json"), ("stages", 0, "jobs", 0, "status"), 1),
        "$.stages[0].jobs[0].status",
        "string",
        id="number-for-job-status",
    ),
    pytest.param(
        lambda: _set(fixture("latest-jobs-200.json"), ("stages", 0, "sort_id"), "1"),
        "$.stages[0].sort_id",
        "integer",
        id="string-for-sort-id",
    ),
    pytest.param(
        lambda: _set(fixture("latest-jobs-200.json"), ("stages", 0, "sort_id"), 1.5),
        "$.stages[0].sort_id",
        "integer",
        id="float-for-sort-id",
    ),
    pytest.param(
        lambda: _set(fixture("latest-jobs-200.json"), ("stages", 0, "jobs"), {"id": 1}),
        "$.stages[0].jobs",
        "array",
        id="object-for-jobs",
    ),
    pytest.param(
        lambda: (lambda p: (p.pop("id"), p)[1])(fixture("latest-jobs-200.json")),
        "$.id",
        "missing",
        id="missing-run-id",
    ),
    pytest.param(
        lambda: (lambda p: (p["stages"][0].pop("id"), p)[1])(fixture("latest-jobs-200.json")),
        "$.stages[0].id",
        "missing",
        id="missing-stage-id",
    ),
    pytest.param(
        lambda: (lambda p: (p["stages"][0]["jobs"][1].pop("id"), p)[1])(_two_jobs()),
        "$.stages[0].jobs[1].id",
        "missing",
        id="missing-second-job-id",
    ),
    pytest.param(
        lambda: _set(fixture("latest-jobs-200.json"), ("id",), None),
        "$.id",
        "ID",
        id="null-run-id",
    ),
    pytest.param(
        lambda: _set(fixture("latest-jobs-200.json"), ("id",), True),
        "$.id",
        "ID",
        id="boolean-run-id",
    ),
    pytest.param(
        lambda: _set(fixture("latest-jobs-200.json"), ("stages", 0, "jobs", 0, "id"), ""),
        "$.stages[0].jobs[0].id",
        "ID",
        id="empty-job-id",
    ),
    pytest.param(
        lambda: _set(fixture("latest-jobs-200.json"), ("stages", 0, "id"), -5),
        "$.stages[0].id",
        "ID",
        id="negative-stage-id",
    ),
    pytest.param(
        lambda: _set(fixture("latest-jobs-200.json"), ("stages", 0, "jobs", 0, "ref"), ["dev"]),
        "$.stages[0].jobs[0].ref",
        "string",
        id="list-for-ref",
    ),
]


@pytest.mark.parametrize(("make", "path", "words"), BAD_LATEST)
def test_bad_latest_jobs_payload(make: Any, path: str, words: str) -> None:
    """A payload of the wrong shape raises ResponseError whose path and message name the field."""
    with pytest.raises(ResponseError) as info:
        parse_latest_jobs(make())
    error = info.value
    assert error.vendor == "codearts_repo"
    assert error.path == path
    assert f"@ {path}" in str(error)
    assert words in str(error)


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        pytest.param({"id": 1}, "$", id="object-for-array"),
        pytest.param([{"id": 1}, {"name": "x"}], "$[1].id", id="missing-second-id"),
        pytest.param([{"id": 1, "stage_id": []}], "$[0].stage_id", id="list-for-stage-id"),
        pytest.param([{"id": 1, "stage": 5}], "$[0].stage", id="number-for-stage-name"),
        pytest.param([[]], "$[0]", id="list-for-item"),
    ],
)
def test_bad_jobs_page(payload: Any, path: str) -> None:
    """A bad job-list page raises ResponseError naming the item and field."""
    with pytest.raises(ResponseError) as info:
        parse_jobs_page(payload)
    assert (info.value.vendor, info.value.path) == ("codearts_repo", path)


def test_bad_single_job() -> None:
    """parse_job on a list raises ResponseError at the root."""
    with pytest.raises(ResponseError) as info:
        parse_job([doc_job()])
    assert info.value.path == "$"


# --- times -------------------------------------------------------------------------------------


def test_unparseable_times_become_none(
    fresh_time_log: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Unreadable times become None with a log line; the run is still read."""
    with caplog.at_level(logging.WARNING):
        run = parse_latest_jobs(fixture("latest-jobs-bad-times-200.json"))
    job = run.jobs[0]
    assert (job.started_at, job.finished_at) == (None, None)
    assert (run.started_at, run.finished_at) == (None, None)
    assert run.status is Status.SUCCESS
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "job.started_at" in messages
    assert "job.finished_at" in messages


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("2025-05-17T11:02:25+08:00", JOB_START, id="no-fraction"),
        pytest.param("2025-05-17T03:02:25Z", JOB_START, id="zulu"),
        pytest.param("2025-05-17T11:02:25.000+0800", JOB_START, id="compact-offset"),
        pytest.param("2025-05-17 11:02:25", JOB_START, id="naive-is-cst"),
        pytest.param(1747450945000, JOB_START, id="epoch-ms"),
        pytest.param("", None, id="empty"),
    ],
)
def test_job_time_encodings(value: Any, expected: datetime | None) -> None:
    """Job times in any encoding a vendor uses read as the same UTC instant."""
    payload = fixture("latest-jobs-200.json")
    payload["stages"][0]["jobs"][0]["started_at"] = value
    assert parse_latest_jobs(payload).jobs[0].started_at == expected


# --- the target_url quirk ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param('https://e.com/a"', "https://e.com/a", id="one-stray-quote"),
        pytest.param("https://e.com/a", "https://e.com/a", id="no-quote"),
        pytest.param('https://e.com/a""', "https://e.com/a", id="two-quotes"),
        pytest.param(' https://e.com/a" ', "https://e.com/a", id="padded"),
        pytest.param('https://e.com/?q="x"&y=1', 'https://e.com/?q="x"&y=1', id="inner-quotes"),
        pytest.param('"', None, id="only-a-quote"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="null"),
    ],
)
def test_target_url_quirk(raw: str | None, expected: str | None) -> None:
    """Only the stray trailing quotes of target_url are removed; nothing left reads as None."""
    payload = fixture("latest-jobs-200.json")
    payload["stages"][0]["jobs"][0]["target_url"] = raw
    assert parse_latest_jobs(payload).jobs[0].url == expected


def test_target_url_of_quotes_is_linear() -> None:
    """A megabyte of trailing quotes is stripped in linear time (it once took ~20 s)."""
    payload = fixture("jobs-200.json")
    payload[0]["target_url"] = "https://e.com/" + '"' * 1_000_000
    start = time.perf_counter()
    (job,) = parse_jobs_page(payload)
    assert time.perf_counter() - start < 2.0
    assert job.url == "https://e.com/"
