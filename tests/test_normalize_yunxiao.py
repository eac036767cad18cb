"""Yunxiao Flow normalizer: recorded latestPipelineRun answers -> Run, worked out by hand."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import load_fixture

from pipestatus import _time
from pipestatus._logonce import LogOnce
from pipestatus.errors import ResponseError
from pipestatus.model import Job, Run, Stage
from pipestatus.status import Status
from pipestatus.vendors import yunxiao
from pipestatus.vendors.yunxiao import parse_latest_run

VENDOR = "yunxiao"
CREATED = datetime(2020, 5, 29, 5, 33, 20, tzinfo=UTC)  # createTime 1590730400000
STAGE_TIME = datetime(2024, 10, 17, 15, 14, 0, tzinfo=UTC)  # 1729178040000

#: Yunxiao's words, worked out by hand from the document and the run-list filter.
WORDS = {
    "FAIL": Status.FAILED,
    "SUCCESS": Status.SUCCESS,
    "RUNNING": Status.RUNNING,
    "CANCELED": Status.CANCELED,
    "WAITING": Status.PENDING,
    "INIT": Status.PENDING,
    "SKIPPED": Status.SKIPPED,
    "TIMEOUT": Status.TIMEDOUT,
}
#: The webhook plugin's words (vendor-docs/yunxiao-flow-more.md section 11), read as suggested.
WEBHOOK_WORDS = {
    "CANCELLING": Status.RUNNING,
    "FINISH": Status.SUCCESS,
    "UNKOWN": Status.PENDING,
    "SKIP": Status.SKIPPED,
}

_unique = itertools.count()


def fixture(name: str) -> Any:
    return load_fixture(VENDOR, name)


@pytest.fixture
def fresh_time_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad times are logged once per (vendor, field) per process: start from a clean memory."""
    monkeypatch.setattr(_time, "_bad_times", LogOnce(_time.logger))


# --- the documented example, field by field ---------------------------------------------------


def test_doc_example_run_fields() -> None:
    """The documented run: IDs 123/1, branch master from its source, manual trigger, no end."""
    run = parse_latest_run(fixture("latest-run-200.json"))

    assert run.vendor == "yunxiao"
    assert run.pipeline_id == "123"
    assert run.run_id == "1"
    assert run.number == 1
    assert run.status is Status.RUNNING
    assert run.raw_status == "RUNNING"
    assert run.started_at == CREATED
    assert run.finished_at is None  # running: no end yet
    assert run.duration is None
    assert run.ref == "master"
    assert run.sha is None
    assert run.trigger == "manual"
    assert run.url is None
    assert len(run.stages) == 1


def test_doc_example_stage_fields() -> None:
    """The documented stage: its index is its ID, its stageInfo gives word and times."""
    (stage,) = parse_latest_run(fixture("latest-run-200.json")).stages
    assert (stage.id, stage.name, stage.order) == ("Group0-Stage0", "Java build", 0)
    assert (stage.status, stage.raw_status) == (Status.RUNNING, "RUNNING")
    # The vendor's own times win, even an end time on a running stage.
    assert (stage.started_at, stage.finished_at) == (STAGE_TIME, STAGE_TIME)
    assert len(stage.jobs) == 1


def test_doc_example_job_fields() -> None:
    """The documented job: ID, name, word, epoch-ms times, jobSign as build ID, its stage."""
    run = parse_latest_run(fixture("latest-run-200.json"))
    assert run.jobs == (
        Job(
            id="21212",
            name="Java build",
            status=Status.RUNNING,
            raw_status="RUNNING",
            started_at=STAGE_TIME,
            finished_at=STAGE_TIME,
            url=None,
            ref="master",
            sha=None,
            build_id="job-1",
            stage_id="Group0-Stage0",
            stage_name="Java build",
        ),
    )


def test_corrected_result_is_a_string() -> None:
    """The fixture holds the corrected example: ``result`` is an escaped JSON string."""
    job = fixture("latest-run-200.json")["stages"][0]["stageInfo"]["jobs"][0]
    assert isinstance(job["result"], str)
    assert job["result"].startswith('{"data":')


# --- variants -------------------------------------------------------------------------------


def test_nulls_everywhere_optional() -> None:
    """Null in every optional field gives None fields and statuses derived as pending."""
    run = parse_latest_run(fixture("latest-run-nulls-200.json"))
    assert run == Run(
        vendor=VENDOR,
        pipeline_id="123",
        run_id=None,
        number=None,
        status=Status.PENDING,
        raw_status=None,
        stages=(
            Stage(
                id="0",
                name=None,
                order=0,
                status=Status.PENDING,
                raw_status=None,
                jobs=(
                    Job(
                        id="21212", name=None, status=Status.PENDING, raw_status=None, stage_id="0"
                    ),
                ),
            ),
        ),
    )


def test_optional_fields_missing() -> None:
    """Stages without stageInfo or jobs read as empty pending stages, IDs from positions."""
    run = parse_latest_run(fixture("latest-run-missing-200.json"))
    assert [stage.id for stage in run.stages] == ["0", "1", "2"]
    assert [stage.status for stage in run.stages] == [Status.PENDING] * 3
    assert run.stages[2].jobs == (
        Job(id="1", name=None, status=Status.PENDING, raw_status=None, stage_id="2"),
    )
    assert (run.run_id, run.number, run.trigger, run.ref, run.started_at) == (None,) * 5


def test_string_ids_equal_integer_ids() -> None:
    """IDs sent as strings give the same run as IDs sent as integers."""
    assert parse_latest_run(fixture("latest-run-string-ids-200.json")) == parse_latest_run(
        fixture("latest-run-200.json")
    )


def test_chinese_names_kept() -> None:
    """Chinese stage, job and branch names pass through unchanged."""
    run = parse_latest_run(fixture("latest-run-chinese-200.json"))
    assert [stage.name for stage in run.stages] == ["构建", "部署"]
    assert [job.name for job in run.jobs] == ["Java 构建", "主机部署"]
    assert [job.stage_name for job in run.jobs] == ["构建", "部署"]
    assert run.ref == "特性/登录"
    assert all(job.ref == "特性/登录" for job in run.jobs)


def test_stages_keep_payload_order() -> None:
    """Yunxiao has no sequence field: stages keep their payload order."""
    run = parse_latest_run(fixture("latest-run-chinese-200.json"))
    assert [(s.order, s.id) for s in run.stages] == [(0, "Group0-Stage0"), (1, "Group1-Stage0")]


def test_odd_trigger_and_run_id() -> None:
    """An undocumented triggerMode is kept as its number; a non-numeric run ID has no number."""
    run = parse_latest_run(fixture("latest-run-odd-trigger-200.json"))
    assert (run.trigger, run.run_id, run.number) == ("4", "run-abc", None)


@pytest.mark.parametrize(
    ("mode", "trigger"),
    [(1, "manual"), (2, "scheduled"), (3, "commit"), (5, "pipeline"), (6, "webhook")],
    ids=["manual", "scheduled", "commit", "pipeline", "webhook"],
)
def test_trigger_modes(mode: int, trigger: str) -> None:
    """Each documented triggerMode has its name."""
    payload = fixture("latest-run-200.json")
    payload["triggerMode"] = mode
    assert parse_latest_run(payload).trigger == trigger


def test_large_run() -> None:
    """The 50-stage, 500-job run keeps every stage and job in payload order."""
    run = parse_latest_run(fixture("latest-run-large-200.json"))
    assert len(run.stages) == 50
    assert len(run.jobs) == 500
    assert [s.id for s in run.stages[:2]] == ["Group0-Stage0", "Group1-Stage0"]
    assert run.stages[25].status is Status.FAILED
    assert (run.status, run.trigger, run.number) == (Status.RUNNING, "commit", 50)


# --- status words ------------------------------------------------------------------------------


def test_word_table_matches() -> None:
    """The Yunxiao table holds exactly the words worked out here."""
    assert dict(yunxiao.STATUS.words) == {**WORDS, **WEBHOOK_WORDS}


@pytest.mark.parametrize(
    ("word", "expected"),
    [*WORDS.items(), *WEBHOOK_WORDS.items()],
    ids=[*WORDS, *WEBHOOK_WORDS],
)
def test_status_word(word: str, expected: Status) -> None:
    """Each Yunxiao word maps to its status at every level, kept verbatim."""
    payload = fixture("latest-run-200.json")
    info = payload["stages"][0]["stageInfo"]
    payload["status"] = info["status"] = info["jobs"][0]["status"] = word
    run = parse_latest_run(payload)
    assert (run.status, run.raw_status) == (expected, word)
    assert (run.stages[0].status, run.stages[0].raw_status) == (expected, word)
    assert (run.jobs[0].status, run.jobs[0].raw_status) == (expected, word)


def test_statuses_fixture() -> None:
    """The fixture with one stage per word maps every stage and job by the table."""
    run = parse_latest_run(fixture("latest-run-statuses-200.json"))
    assert [s.raw_status for s in run.stages] == list(WORDS)
    assert [s.status for s in run.stages] == list(WORDS.values())
    assert [j.status for j in run.jobs] == list(WORDS.values())


def test_mixed_case_words() -> None:
    """Words match whatever their case; raw_status keeps the case as sent."""
    run = parse_latest_run(fixture("latest-run-mixed-case-200.json"))
    assert [run.status, run.stages[0].status, run.jobs[0].status] == [Status.SUCCESS] * 3
    assert run.jobs[0].raw_status == "sUcCeSs"


def test_unknown_words_fixture() -> None:
    """Unknown words become pending with the word kept verbatim."""
    run = parse_latest_run(fixture("latest-run-unknown-status-200.json"))
    assert (run.status, run.raw_status) == (Status.PENDING, "PAUSED_BY_ADMIN")
    assert (run.stages[0].status, run.stages[0].raw_status) == (Status.PENDING, "NEED_APPROVAL")
    assert (run.jobs[0].status, run.jobs[0].raw_status) == (Status.PENDING, "UNKNOWN_JOB_STATE")


def test_unknown_word_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """An unknown word is logged once per (vendor, word), however often it appears."""
    word = f"MYSTERY_{next(_unique)}_{id(caplog)}"
    payload = fixture("latest-run-200.json")
    info = payload["stages"][0]["stageInfo"]
    payload["status"] = info["status"] = info["jobs"][0]["status"] = word
    with caplog.at_level(logging.WARNING):
        parse_latest_run(payload)
        parse_latest_run(payload)
    lines = [r for r in caplog.records if word in r.getMessage()]
    assert len(lines) == 1
    assert "yunxiao" in lines[0].getMessage()


# --- derivation --------------------------------------------------------------------------------


def test_stage_without_status_derived_from_jobs() -> None:
    """A stage without a word or times takes the worst job status and the jobs' span."""
    run = parse_latest_run(fixture("latest-run-derived-200.json"))
    (stage,) = run.stages
    # jobs: SUCCESS, FAIL, CANCELED -> failed
    assert (stage.status, stage.raw_status) == (Status.FAILED, None)
    assert stage.started_at == datetime(2024, 10, 17, 15, 13, 20, tzinfo=UTC)
    assert stage.finished_at == datetime(2024, 10, 17, 15, 15, 0, tzinfo=UTC)
    assert (run.status, run.raw_status) == (Status.FAILED, None)
    assert run.started_at == CREATED  # createTime wins
    assert run.finished_at == datetime(2024, 10, 17, 15, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        pytest.param(["SUCCESS", "SKIPPED"], Status.SUCCESS, id="success-over-skipped"),
        pytest.param(["SKIPPED", "SKIPPED"], Status.SKIPPED, id="all-skipped"),
        pytest.param(["CANCELED", "TIMEOUT"], Status.TIMEDOUT, id="timedout-over-canceled"),
        pytest.param(["SUCCESS", "RUNNING"], Status.RUNNING, id="one-running"),
        pytest.param(["SUCCESS", "WAITING"], Status.RUNNING, id="terminal-and-pending"),
        pytest.param(["WAITING", "INIT"], Status.PENDING, id="all-pending"),
    ],
)
def test_stage_derivation_rule(words: list[str], expected: Status) -> None:
    """A stage without a word follows the aggregation rule over its jobs."""
    payload = fixture("latest-run-derived-200.json")
    jobs = payload["stages"][0]["stageInfo"]["jobs"][: len(words)]
    for job, word in zip(jobs, words, strict=True):
        job["status"] = word
    payload["stages"][0]["stageInfo"]["jobs"] = jobs
    stage = parse_latest_run(payload).stages[0]
    assert stage.status is expected
    assert (stage.finished_at is None) is not expected.is_terminal


def test_datetimes_aware_utc_and_ids_str() -> None:
    """Every datetime is aware UTC and every ID a str."""
    for name in (
        "latest-run-200.json",
        "latest-run-large-200.json",
        "latest-run-derived-200.json",
        "latest-run-string-ids-200.json",
    ):
        run = parse_latest_run(fixture(name))
        times = [run.started_at, run.finished_at]
        times += [t for s in run.stages for t in (s.started_at, s.finished_at)]
        times += [t for j in run.jobs for t in (j.started_at, j.finished_at)]
        assert all(t is None or t.utcoffset() == UTC.utcoffset(None) for t in times)
        ids = [run.pipeline_id, run.run_id] + [s.id for s in run.stages]
        ids += [v for j in run.jobs for v in (j.id, j.stage_id)]
        assert all(type(v) is str for v in ids)


# --- bad payloads -----------------------------------------------------------------------------


JOB = ("stages", 0, "stageInfo", "jobs", 0)


def _with(path: tuple[Any, ...], value: Any) -> Callable[[Any], Any]:
    """A mutation that sets the value at ``path`` (the root when empty)."""

    def mutate(payload: Any) -> Any:
        if not path:
            return value
        target = payload
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return payload

    return mutate


def _without(path: tuple[Any, ...]) -> Callable[[Any], Any]:
    """A mutation that deletes the key at ``path``."""

    def mutate(payload: Any) -> Any:
        target = payload
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
        return payload

    return mutate


BAD: list[Any] = [
    pytest.param(lambda p: [p], "$", "object", id="list-for-object"),
    pytest.param(_with(("stages",), "x"), "$.stages", "array", id="string-stages"),
    pytest.param(_with(("status",), 1), "$.status", "string", id="number-status"),
    pytest.param(_with(("pipelineId",), None), "$.pipelineId", "ID", id="null-id"),
    pytest.param(_without(("pipelineId",)), "$.pipelineId", "missing", id="no-id"),
    pytest.param(_with(("sources",), {"data": {}}), "$.sources", "array", id="object-sources"),
    pytest.param(
        _without((*JOB, "id")), "$.stages[0].stageInfo.jobs[0].id", "missing", id="no-job-id"
    ),
    pytest.param(
        _with((*JOB, "status"), ["RUNNING"]),
        "$.stages[0].stageInfo.jobs[0].status",
        "string",
        id="list-job-status",
    ),
    pytest.param(
        _with(("stages", 0, "stageInfo"), []), "$.stages[0].stageInfo", "object", id="list-info"
    ),
    pytest.param(_with(("triggerMode",), "1"), "$.triggerMode", "integer", id="string-trigger"),
    pytest.param(_with(("pipelineRunId",), 1.5), "$.pipelineRunId", "ID", id="float-run-id"),
    pytest.param(
        _with(("sources", 0, "data", "branch"), 7),
        "$.sources[0].data.branch",
        "string",
        id="number-branch",
    ),
]


@pytest.mark.parametrize(("mutate", "path", "words"), BAD)
def test_bad_payload(mutate: Any, path: str, words: str) -> None:
    """A payload of the wrong shape raises ResponseError naming the field by its JSON key path."""
    with pytest.raises(ResponseError) as info:
        parse_latest_run(mutate(fixture("latest-run-200.json")))
    assert (info.value.vendor, info.value.path) == (VENDOR, path)
    assert f"@ {path}" in str(info.value)
    assert words in str(info.value)


# --- times -------------------------------------------------------------------------------------


def test_unparseable_times_become_none(
    fresh_time_log: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Unreadable times become None with a log line; the run is still read."""
    with caplog.at_level(logging.WARNING):
        run = parse_latest_run(fixture("latest-run-bad-times-200.json"))
    job = run.jobs[0]
    assert (job.started_at, job.finished_at) == (None, None)
    # createTime unreadable: the start falls back to the stage's; its startTime is an object,
    # so that too comes from its jobs, which have none.
    assert run.stages[0].started_at is None
    assert run.started_at is None
    assert run.stages[0].finished_at == STAGE_TIME
    messages = " ".join(r.getMessage() for r in caplog.records)
    for field in ("createTime", "stageInfo.startTime", "job.startTime", "job.endTime"):
        assert field in messages
