"""Property tests: every normalizer returns a model or raises ResponseError, whatever it is fed."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import json_paths, load_fixture
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipestatus._wire import Structurer
from pipestatus.errors import ResponseError
from pipestatus.model import Job, Run
from pipestatus.status import Status
from pipestatus.vendors import codearts_pipeline, codearts_repo, yunxiao
from pipestatus.vendors._codearts_pipeline_detail import (
    parse_detail,
    parse_log_chunk,
    parse_pipelines_page,
    parse_runs_page,
)
from pipestatus.vendors._yunxiao_history import WireRunItem, parse_runs

FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: Keys the vendors use, so that arbitrary objects often look a little like real payloads.
KEYS = sorted(
    {
        "id",
        "status",
        "stages",
        "jobs",
        "name",
        "sort_id",
        "sha",
        "ref",
        "target_url",
        "started_at",
        "finished_at",
        "created_at",
        "updated_at",
        'updated_at"',
        "third_build_id",
        "stage_id",
        "stage",
        "pipeline_id",
        "pipeline_run_id",
        "stage_status_list",
        "sequence",
        "start_time",
        "end_time",
        "run_number",
        "trigger_type",
        "build_params",
        "commit_id",
        "build_type",
        "tag",
        "source_branch",
        "target_branch",
        "merge_id",
        "detail_url",
        "pipelineId",
        "pipelineRunId",
        "stageInfo",
        "startTime",
        "endTime",
        "createTime",
        "triggerMode",
        "sources",
        "data",
        "branch",
        "index",
        "jobSign",
        # the v0.2 payloads: lists, run detail, history, logs
        "pipelines",
        "latest_run",
        "pipeline_runs",
        "total",
        "offset",
        "limit",
        "steps",
        "exec_id",
        "current_system_time",
        "has_more",
        "end_offset",
        "log",
        "pipelineName",
    }
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)  # json.loads accepts NaN and Infinity
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "RUNNING",
            "success",
            "FAIL",
            "COMPLETED",
            "2023-03-04 16:48:09",
            "1677919688000",
            "",
            " ",
            "\ud800",
            "构建",
        ]
    )
)
keys = st.sampled_from(KEYS) | st.text(max_size=10)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=6),
    max_leaves=40,
)


def _nest(value: Any, depth: int) -> Any:
    for level in range(depth):
        value = [value] if level % 2 else {"stages": value}
    return value


def _retype(value: Any) -> Any:
    match value:
        case dict():
            return list(value.values())
        case list():
            return {str(i): v for i, v in enumerate(value)}
        case str():
            return [value]
        case bool() | None:
            return str(value)
        case _:
            return str(value)


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """``base`` with a few nested values replaced, deleted, retyped, made huge or deep."""
    payload = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = json_paths(payload)
        path = draw(st.sampled_from(paths))
        action = draw(
            st.sampled_from(["replace", "delete", "retype", "huge", "deep", "null", "empty"])
        )
        if not path:
            if action in ("delete", "null"):
                payload = None
            elif action == "replace":
                payload = draw(json_values)
            elif action == "retype":
                payload = _retype(payload)
            continue
        parent = payload
        for key in path[:-1]:
            parent = parent[key]
        last = path[-1]
        current = parent[last]
        if action == "delete":
            del parent[last]
        elif action == "replace":
            parent[last] = draw(json_values)
        elif action == "retype":
            parent[last] = _retype(current)
        elif action == "huge":
            parent[last] = draw(st.sampled_from(["x", "9", "构", '"'])) * 1_000_000
        elif action == "deep":
            parent[last] = _nest(current, draw(st.integers(10, 300)))
        elif action == "null":
            parent[last] = None
        else:
            parent[last] = type(current)() if isinstance(current, list | dict | str) else 0
    return payload


# --- what a normalizer may hand back ---------------------------------------------------------


def _check_times(*values: datetime | None) -> None:
    for value in values:
        assert value is None or value.utcoffset() == UTC.utcoffset(None)


def _check_job(job: Any) -> None:
    assert isinstance(job, Job)
    assert isinstance(job.id, str)
    assert isinstance(job.status, Status)
    assert job.stage_id is None or isinstance(job.stage_id, str)
    _check_times(job.started_at, job.finished_at)


def _check_run(run: Any, vendor: str) -> None:
    assert isinstance(run, Run)
    assert run.vendor == vendor
    assert isinstance(run.pipeline_id, str)
    assert run.run_id is None or isinstance(run.run_id, str)
    assert isinstance(run.status, Status)
    _check_times(run.started_at, run.finished_at)
    for order, stage in enumerate(run.stages):
        assert stage.order == order
        assert isinstance(stage.id, str)
        assert isinstance(stage.status, Status)
        _check_times(stage.started_at, stage.finished_at)
        for job in stage.jobs:
            _check_job(job)


def _check_jobs(jobs: Any) -> None:
    assert isinstance(jobs, list)
    for job in jobs:
        _check_job(job)


def _check_batch(result: Any) -> None:
    assert isinstance(result, codearts_pipeline.BatchResult)
    for pipeline_id, value in result.results.items():
        assert isinstance(pipeline_id, str)
        if isinstance(value, ResponseError):
            assert value.vendor == "codearts_pipeline"
        else:
            _check_run(value, "codearts_pipeline")
    assert all(isinstance(error, ResponseError) for error in result.unattributed)


def _check_items(items: Any, vendor: str) -> None:
    for item in items:
        if isinstance(item, ResponseError):
            assert item.vendor == vendor
        else:
            _check_run(item, vendor)


def _check_page(page: Any, vendor: str) -> None:
    assert page.total is None or isinstance(page.total, int)
    for item in page.items:
        if isinstance(item, Run | ResponseError):
            _check_items([item], vendor)
        else:  # a listed pipeline: its ID, and its run or the error reading it, or None
            assert isinstance(item.pipeline_id, str)
            assert item.pipeline_id
            if item.latest is not None:
                _check_items([item.latest], vendor)
    assert all(isinstance(error, ResponseError) for error in page.unattributed)


def _check_chunk(chunk: Any) -> None:
    assert isinstance(chunk.text, str)
    assert isinstance(chunk.has_more, bool)
    assert chunk.end_offset is None or isinstance(chunk.end_offset, int)


NORMALIZERS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], None], Callable[[], Any]]] = {
    "codearts_repo.parse_latest_jobs": (
        codearts_repo.parse_latest_jobs,
        lambda run: _check_run(run, "codearts_repo"),
        lambda: load_fixture("codearts_repo", "latest-jobs-derived-200.json"),
    ),
    "codearts_repo.parse_job": (
        codearts_repo.parse_job,
        _check_job,
        lambda: load_fixture("codearts_repo", "jobs-200.json")[0],
    ),
    "codearts_repo.parse_jobs_page": (
        codearts_repo.parse_jobs_page,
        _check_jobs,
        lambda: load_fixture("codearts_repo", "jobs-200.json") * 2,
    ),
    "codearts_pipeline.parse_run": (
        codearts_pipeline.parse_run,
        lambda run: _check_run(run, "codearts_pipeline"),
        lambda: load_fixture("codearts_pipeline", "batch-status-chinese-200.json")[0],
    ),
    "codearts_pipeline.parse_batch": (
        codearts_pipeline.parse_batch,
        _check_batch,
        lambda: (
            load_fixture("codearts_pipeline", "batch-status-200.json")
            + load_fixture("codearts_pipeline", "batch-status-int-ids-200.json")
        ),
    ),
    "codearts_pipeline.parse_detail": (
        lambda payload: parse_detail(payload, codearts_pipeline.STATUS, "x"),
        lambda run: _check_run(run, "codearts_pipeline"),
        lambda: load_fixture("codearts_pipeline", "run-detail-failed-200.json"),
    ),
    "codearts_pipeline.parse_pipelines_page": (
        lambda payload: parse_pipelines_page(
            payload, codearts_pipeline.parse_run, "codearts_pipeline"
        ),
        lambda page: _check_page(page, "codearts_pipeline"),
        lambda: load_fixture("codearts_pipeline", "pipelines-list-200.json"),
    ),
    "codearts_pipeline.parse_runs_page": (
        lambda payload: parse_runs_page(
            payload, codearts_pipeline.parse_run, "codearts_pipeline", "p"
        ),
        lambda page: _check_page(page, "codearts_pipeline"),
        lambda: load_fixture("codearts_pipeline", "pipeline-runs-200.json"),
    ),
    "codearts_pipeline.parse_log_chunk": (
        parse_log_chunk,
        lambda chunk: _check_chunk(chunk),
        lambda: load_fixture("codearts_pipeline", "step-log-200.json"),
    ),
    "yunxiao.parse_runs": (
        lambda payload: parse_runs(
            payload,
            "124",
            Structurer(yunxiao.converters, WireRunItem, vendor="yunxiao"),
            yunxiao.STATUS,
            yunxiao.TRIGGER_MODES,
        ),
        lambda runs: _check_items(runs, "yunxiao"),
        lambda: load_fixture("yunxiao", "runs-200.json"),
    ),
    "yunxiao.parse_latest_run": (
        yunxiao.parse_latest_run,
        lambda run: _check_run(run, "yunxiao"),
        lambda: load_fixture("yunxiao", "latest-run-derived-200.json"),
    ),
}


def _feed(name: str, payload: Any) -> None:
    normalize, check, _ = NORMALIZERS[name]
    error: ResponseError | None = None
    try:
        result = normalize(payload)
    except ResponseError as exc:
        error = exc
    if error is None:
        check(result)
        return
    assert error.vendor == name.partition(".")[0]
    assert error.path is not None
    assert error.path.startswith("$")


@pytest.mark.parametrize("name", list(NORMALIZERS))
@FUZZ
@given(payload=json_values)
def test_arbitrary_json(name: str, payload: Any) -> None:
    """Any JSON value gives a model or a ResponseError with a path, nothing else."""
    _feed(name, payload)


@pytest.mark.parametrize("name", list(NORMALIZERS))
@FUZZ
@given(data=st.data())
def test_mutated_fixture(name: str, data: st.DataObject) -> None:
    """A recorded payload with values replaced, deleted, retyped, huge or deep still gives a
    model or a ResponseError, nothing else."""
    payload = data.draw(mutated(NORMALIZERS[name][2]()))
    _feed(name, payload)


@pytest.mark.parametrize("name", list(NORMALIZERS))
def test_unmutated_fixture_is_a_model(name: str) -> None:
    """The fuzzers' starting payloads normalize to models (so mutations start from valid)."""
    normalize, check, base = NORMALIZERS[name]
    check(normalize(base()))
