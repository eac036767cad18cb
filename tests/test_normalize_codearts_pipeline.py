"""CodeArts Pipeline v5 normalizers: recorded batch answers -> Run / BatchResult, by hand."""

from __future__ import annotations

import itertools
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import load_fixture

from pipestatus import _time
from pipestatus._logonce import LogOnce
from pipestatus.errors import ResponseError
from pipestatus.model import Run, Stage
from pipestatus.status import Status
from pipestatus.vendors import codearts_pipeline
from pipestatus.vendors.codearts_pipeline import BatchResult, parse_batch, parse_run

VENDOR = "codearts_pipeline"
PIPELINE = "d19799d619424b2bb2625ec2d93ea087"
RUN_START = datetime(2023, 3, 4, 8, 48, 8, tzinfo=UTC)  # epoch 1677919688000
RUN_END = datetime(2023, 3, 4, 8, 50, 11, tzinfo=UTC)  # epoch 1677919811000
STAGE_START = datetime(2023, 3, 4, 8, 48, 9, tzinfo=UTC)  # "2023-03-04 16:48:09" in CST
STAGE_END = datetime(2023, 3, 4, 8, 50, 11, tzinfo=UTC)  # "2023-03-04 16:50:11" in CST

#: The v5 words (vendor SDK models), worked out by hand: what each means to a watcher.
WORDS = {
    "COMPLETED": Status.SUCCESS,
    "RUNNING": Status.RUNNING,
    "FAILED": Status.FAILED,
    "CANCELED": Status.CANCELED,
    "PAUSED": Status.RUNNING,
    "SUSPEND": Status.RUNNING,
    "IGNORED": Status.SKIPPED,
    "INIT": Status.PENDING,
    "QUEUED": Status.PENDING,
    "SKIPPED": Status.SKIPPED,
    "ASYNC_RUNNING": Status.RUNNING,
    "ASYNC_FAILED": Status.FAILED,
    "UNSELECTED": Status.SKIPPED,
    "REDISPATCH": Status.PENDING,
}

_unique = itertools.count()


def fixture(name: str) -> Any:
    return load_fixture(VENDOR, name)


def doc_item() -> dict[str, Any]:
    """A fresh copy of the documented ``PipelineLatestRun``."""
    item: dict[str, Any] = fixture("batch-status-200.json")[0]
    return item


@pytest.fixture
def fresh_time_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad times are logged once per (vendor, field) per process: start from a clean memory."""
    monkeypatch.setattr(_time, "_bad_times", LogOnce(_time.logger))


# --- the documented example, field by field ---------------------------------------------------


def test_doc_example_run_fields() -> None:
    """The documented item gives a run with epoch-ms times, the target branch and the commit."""
    run = parse_run(doc_item())

    assert run.vendor == "codearts_pipeline"
    assert run.pipeline_id == PIPELINE
    assert run.run_id == "ad6b7f66283a45be9c1f82b06c831e59"
    assert run.number == 2
    assert run.status is Status.FAILED
    assert run.raw_status == "FAILED"
    assert run.started_at == RUN_START
    assert run.finished_at == RUN_END
    assert run.duration is not None
    assert run.duration.total_seconds() == 123
    assert run.ref == "test-lbdsb11"
    assert run.sha == "fc93c34f906aeb1cc031e3f6f8b2baeac078ae4b"
    assert run.trigger == "Manual"
    assert run.url is None  # the example has no detail_url
    assert run.jobs == ()


def test_doc_example_stage_fields() -> None:
    """The documented stage's naive CST times read as UTC; its ID is its sequence."""
    (stage,) = parse_run(doc_item()).stages
    assert stage == Stage(
        id="0",
        name="Phase_1",
        order=0,
        status=Status.FAILED,
        raw_status="FAILED",
        started_at=STAGE_START,
        finished_at=STAGE_END,
        jobs=(),
    )


def test_doc_example_batch() -> None:
    """The documented batch answer maps its one pipeline ID to its run, nothing unattributed."""
    result = parse_batch(fixture("batch-status-200.json"))
    assert isinstance(result, BatchResult)
    assert result.results == {PIPELINE: parse_run(doc_item())}
    assert result.unattributed == ()


def test_empty_batch() -> None:
    """An empty batch answer (no pipeline has runs) is an empty result."""
    assert parse_batch(fixture("batch-status-empty-200.json")) == BatchResult(results={})


def test_detail_url_and_tag() -> None:
    """detail_url becomes the run's url and a tag build's ref is its tag."""
    run = parse_run(fixture("batch-status-tag-200.json")[0])
    assert run.url == f"https://example.com/pipelines/{PIPELINE}/detail"
    assert run.ref == "v1.2.3"
    assert (run.status, run.finished_at) == (Status.RUNNING, None)
    assert run.stages[0].finished_at is None


def test_source_branch_wins_over_target_branch() -> None:
    """A merge-request build reports its source branch as ref."""
    item = doc_item()
    item["build_params"]["source_branch"] = "feature/x"
    assert parse_run(item).ref == "feature/x"


# --- variants -------------------------------------------------------------------------------


def test_nulls_everywhere_optional() -> None:
    """Null in every optional field gives None fields and a pending run and stage."""
    run = parse_run(fixture("batch-status-nulls-200.json")[0])
    assert run == Run(
        vendor=VENDOR,
        pipeline_id=PIPELINE,
        run_id=None,
        number=None,
        status=Status.PENDING,
        raw_status=None,
        stages=(Stage(id="0", name=None, order=0, status=Status.PENDING, raw_status=None),),
    )


def test_optional_fields_missing() -> None:
    """Items with only a pipeline_id (and an empty stage) read as runs with nothing known."""
    result = parse_batch(fixture("batch-status-missing-200.json"))
    assert set(result.results) == {PIPELINE, "e2"}
    first, second = result.results[PIPELINE], result.results["e2"]
    assert isinstance(first, Run)
    assert isinstance(second, Run)
    assert (first.stages, first.status, first.trigger, first.ref, first.sha) == (
        (),
        Status.PENDING,
        None,
        None,
        None,
    )
    assert second.stages == (
        Stage(id="0", name=None, order=0, status=Status.PENDING, raw_status=None),
    )


def test_integer_ids_become_str() -> None:
    """Integer pipeline, run and merge IDs become strings."""
    result = parse_batch(fixture("batch-status-int-ids-200.json"))
    run = result.results["1234567"]
    assert isinstance(run, Run)
    assert (run.pipeline_id, run.run_id) == ("1234567", "89")


def test_chinese_names_kept() -> None:
    """Chinese stage names, trigger and branch pass through unchanged."""
    run = parse_run(fixture("batch-status-chinese-200.json")[0])
    assert [stage.name for stage in run.stages] == ["构建", "部署"]
    assert run.trigger == "手动触发"
    assert run.ref == "特性/登录"
    assert (run.status, run.finished_at) == (Status.RUNNING, None)
    assert run.stages[1].started_at == datetime(2023, 3, 4, 8, 50, 12, tzinfo=UTC)


def test_large_run() -> None:
    """The 50-stage run keeps every stage in sequence order with its CST times."""
    run = parse_run(fixture("batch-status-large-200.json")[0])
    assert len(run.stages) == 50
    assert [stage.id for stage in run.stages] == [str(n) for n in range(50)]
    assert run.stages[0].started_at == datetime(2025, 5, 17, 3, 0, 0, tzinfo=UTC)
    assert run.stages[25].status is Status.FAILED
    assert run.stages[49].status is Status.RUNNING


# --- status words ------------------------------------------------------------------------------


def test_word_table_matches() -> None:
    """The v5 table holds exactly the words worked out here."""
    assert dict(codearts_pipeline.STATUS.words) == WORDS


@pytest.mark.parametrize(("word", "expected"), WORDS.items(), ids=list(WORDS))
def test_status_word(word: str, expected: Status) -> None:
    """Each v5 word maps to its status for the run and its stages, kept verbatim."""
    item = doc_item()
    item["status"] = item["stage_status_list"][0]["status"] = word
    run = parse_run(item)
    assert (run.status, run.raw_status) == (expected, word)
    assert (run.stages[0].status, run.stages[0].raw_status) == (expected, word)


def test_statuses_fixture() -> None:
    """The fixture with one item per word maps every run and stage by the table."""
    result = parse_batch(fixture("batch-status-statuses-200.json"))
    assert len(result.results) == len(WORDS)
    for word, expected in WORDS.items():
        run = result.results[f"pipeline-{word.lower()}"]
        assert isinstance(run, Run)
        assert (run.status, run.raw_status) == (expected, word)
        assert (run.stages[0].status, run.stages[0].raw_status) == (expected, word)


def test_mixed_case_words() -> None:
    """Words match whatever their case; raw_status keeps the case as sent."""
    run = parse_run(fixture("batch-status-mixed-case-200.json")[0])
    assert (run.status, run.raw_status) == (Status.SUCCESS, "Completed")
    assert (run.stages[0].status, run.stages[0].raw_status) == (Status.SUCCESS, "completed")


def test_unknown_words_fixture() -> None:
    """Unknown words become pending with the word kept verbatim."""
    run = parse_run(fixture("batch-status-unknown-status-200.json")[0])
    assert (run.status, run.raw_status) == (Status.PENDING, "WAITING_FOR_APPROVAL")
    assert (run.stages[0].status, run.stages[0].raw_status) == (Status.PENDING, "BLOCKED")
    assert not run.status.is_terminal


def test_unknown_word_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """An unknown word is logged once per (vendor, word), however often it appears."""
    word = f"MYSTERY_{next(_unique)}_{id(caplog)}"
    item = doc_item()
    item["status"] = item["stage_status_list"][0]["status"] = word
    with caplog.at_level(logging.WARNING):
        parse_batch([item, item])
    lines = [r for r in caplog.records if word in r.getMessage()]
    assert len(lines) == 1
    assert "codearts_pipeline" in lines[0].getMessage()


# --- derivation and ordering -----------------------------------------------------------------


def test_run_status_derived_from_stages() -> None:
    """A run without a status word takes its stages' aggregate."""
    item = fixture("batch-status-chinese-200.json")[0]
    item["status"] = None
    run = parse_run(item)
    assert (run.status, run.raw_status) == (Status.RUNNING, None)


def test_run_times_derived_when_missing() -> None:
    """A terminal run without times takes its stages' earliest start and latest end."""
    item = doc_item()
    item["start_time"] = item["end_time"] = None
    run = parse_run(item)
    assert (run.started_at, run.finished_at) == (STAGE_START, STAGE_END)


def test_vendor_times_win() -> None:
    """The run's own epoch times win over its stages' times."""
    run = parse_run(doc_item())
    assert run.started_at == RUN_START != run.stages[0].started_at


def test_stage_order_by_sequence_nulls_last() -> None:
    """Stages sort by sequence, nulls last in payload order; a null-sequence ID is its position."""
    run = parse_run(fixture("batch-status-sort-order-200.json")[0])
    # payload: sequence 2, null, 0, null, 1
    assert [stage.name for stage in run.stages] == [
        "payload 2",
        "payload 4",
        "payload 0",
        "payload 1",
        "payload 3",
    ]
    assert [stage.order for stage in run.stages] == [0, 1, 2, 3, 4]
    assert [stage.id for stage in run.stages] == ["0", "1", "2", "3", "4"]


def test_datetimes_aware_utc_and_ids_str() -> None:
    """Every datetime is aware UTC and every ID a str."""
    for name in (
        "batch-status-200.json",
        "batch-status-chinese-200.json",
        "batch-status-int-ids-200.json",
        "batch-status-large-200.json",
    ):
        for run in parse_batch(fixture(name)).results.values():
            assert isinstance(run, Run)
            times = [run.started_at, run.finished_at]
            times += [t for s in run.stages for t in (s.started_at, s.finished_at)]
            for value in times:
                assert value is None or value.utcoffset() == UTC.utcoffset(None)
            assert all(type(v) is str for v in [run.pipeline_id, run.run_id])
            assert all(type(s.id) is str for s in run.stages)


# --- bad payloads and the batch ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        pytest.param(
            {"stage_status_list": "x"}, "$.stage_status_list", "array", id="string-stages"
        ),
        pytest.param({"status": 3}, "$.status", "string", id="number-status"),
        pytest.param({"run_number": "2"}, "$.run_number", "integer", id="string-run-number"),
        pytest.param({"run_number": 2.0}, "$.run_number", "integer", id="float-run-number"),
        pytest.param({"build_params": []}, "$.build_params", "object", id="list-build-params"),
        pytest.param({"pipeline_id": None}, "$.pipeline_id", "ID", id="null-pipeline-id"),
        pytest.param({"pipeline_id": ""}, "$.pipeline_id", "ID", id="empty-pipeline-id"),
        pytest.param({"pipeline_run_id": {}}, "$.pipeline_run_id", "ID", id="object-run-id"),
        pytest.param(
            {"stage_status_list": [{"sequence": "0"}]},
            "$.stage_status_list[0].sequence",
            "integer",
            id="string-sequence",
        ),
        pytest.param(
            {"stage_status_list": [{}, {"status": True}]},
            "$.stage_status_list[1].status",
            "string",
            id="boolean-stage-status",
        ),
    ],
)
def test_bad_item(change: dict[str, Any], path: str, words: str) -> None:
    """A bad item raises ResponseError whose path and message name the field."""
    item = doc_item()
    item.update(change)
    with pytest.raises(ResponseError) as info:
        parse_run(item)
    assert (info.value.vendor, info.value.path) == (VENDOR, path)
    assert f"@ {path}" in str(info.value)
    assert words in str(info.value)


def test_missing_pipeline_id() -> None:
    """An item without pipeline_id raises ResponseError naming ``$.pipeline_id``."""
    item = doc_item()
    del item["pipeline_id"]
    with pytest.raises(ResponseError) as info:
        parse_run(item)
    assert info.value.path == "$.pipeline_id"


@pytest.mark.parametrize(
    "payload",
    [{"pipeline_id": PIPELINE}, "[]", None, 7],
    ids=["object", "string", "null", "number"],
)
def test_batch_not_an_array(payload: Any) -> None:
    """A batch answer that is not an array raises ResponseError at the root."""
    with pytest.raises(ResponseError) as info:
        parse_batch(payload)
    assert (info.value.vendor, info.value.path) == (VENDOR, "$")
    assert "array" in str(info.value)


def test_bad_item_never_hides_the_others() -> None:
    """Good items are read; a bad item with an ID maps to its error; ID-less ones are apart."""
    result = parse_batch(fixture("batch-status-partial-200.json"))
    # payload: good, bad(list), no id, good2, "garbage", bad(int id 77), null id
    good = result.results[PIPELINE]
    good2 = result.results["aaaa0000000000000000000000000002"]
    assert isinstance(good, Run)
    assert isinstance(good2, Run)
    assert good == parse_run(doc_item())

    bad = result.results["bbbb0000000000000000000000000003"]
    assert isinstance(bad, ResponseError)
    assert bad.path == "$[1].stage_status_list"
    assert "@ $[1].stage_status_list" in str(bad)

    bad_int = result.results["77"]
    assert isinstance(bad_int, ResponseError)
    assert bad_int.path == "$[5].run_number"

    assert set(result.results) == {
        PIPELINE,
        "aaaa0000000000000000000000000002",
        "bbbb0000000000000000000000000003",
        "77",
    }
    assert [e.path for e in result.unattributed] == ["$[2].pipeline_id", "$[4]", "$[6].pipeline_id"]
    assert all(e.vendor == VENDOR for e in result.unattributed)


def test_good_item_wins_over_bad_item_with_same_id() -> None:
    """When an ID has one good and one bad item, the run is kept, in either order."""
    bad = doc_item()
    bad["status"] = 5
    for items in ([doc_item(), bad], [bad, doc_item()]):
        assert isinstance(parse_batch(items).results[PIPELINE], Run)


# --- times -------------------------------------------------------------------------------------


def test_unparseable_times_become_none(
    fresh_time_log: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Unreadable run and stage times become None with a log line; the run is still read."""
    with caplog.at_level(logging.WARNING):
        run = parse_run(fixture("batch-status-bad-times-200.json")[0])
    assert (run.stages[0].started_at, run.stages[0].finished_at) == (None, None)
    assert (run.started_at, run.finished_at) == (None, None)  # -1 means "not set"
    assert run.status is Status.FAILED
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "stage.start_time" in messages
    assert "stage.end_time" in messages
    assert "start_time" in messages


def test_empty_merge_id_does_not_fail_the_run() -> None:
    """An empty merge_id, which the model never uses, does not cost the run."""
    item = doc_item()
    item["build_params"]["merge_id"] = ""
    assert parse_run(item).pipeline_id == PIPELINE
