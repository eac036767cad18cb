"""Normalizer throughput vs a hand-written dict baseline; run: python benchmarks/normalize.py

Two kinds of payload: the small answers a poll really gets (the simulated server's latest run
of each vendor, two stages and three jobs: what ``benchmarks/fanout.py`` polls, rendered here by
``pipestatus.testing`` over loopback), and the 500-job fixtures under ``tests/fixtures``. The
baseline builds the same model objects with plain dict access and the same helpers, without
validating types. A tight loop keeps everything in the CPU caches: inside a real poll the same
work costs more (see ``benchmarks/fanout.py`` for that).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipestatus._normalize import (  # noqa: E402
    derive_span,
    first_set,
    ordered,
    strip_quote,
)
from pipestatus._time import parse_time  # noqa: E402
from pipestatus.model import Job, Run, Stage  # noqa: E402
from pipestatus.status import Status, StatusTable, aggregate  # noqa: E402
from pipestatus.testing import SimJob, SimRun, SimStage, VendorServer  # noqa: E402
from pipestatus.vendors import codearts_pipeline, codearts_repo, yunxiao  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
GOAL = 2.0  # the normalizer may cost at most twice the hand-written baseline
SMALL_LOOPS = 200  # a small payload takes microseconds: more calls per timed repeat


def load(vendor: str, name: str) -> Any:
    return json.loads((FIXTURES / vendor / name).read_text(encoding="utf-8"))


def _status(table: StatusTable, word: str | None, derived: Status) -> tuple[Status, str | None]:
    return (derived, None) if word is None else (table(word), word)


def _id(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


# --- baselines: the same models, the same helpers, plain dict access instead of cattrs ----------


def v4_job(d: dict[str, Any], stage_id: str | None, stage_name: str | None) -> Job:
    V = codearts_repo.VENDOR
    status, raw = _status(codearts_repo.STATUS, d.get("status"), Status.PENDING)
    return Job(
        id=_id(d["id"]),
        name=d.get("name"),
        status=status,
        raw_status=raw,
        started_at=parse_time(d.get("started_at"), vendor=V, field="job.started_at"),
        finished_at=parse_time(d.get("finished_at"), vendor=V, field="job.finished_at"),
        url=strip_quote(d.get("target_url")),
        ref=d.get("ref"),
        sha=d.get("sha"),
        build_id=d.get("third_build_id"),
        stage_id=stage_id,
        stage_name=stage_name,
    )


def v4_baseline(payload: dict[str, Any]) -> Run:
    stages = []
    for order, s in enumerate(ordered(payload.get("stages") or [], lambda s: s.get("sort_id"))):
        sid, sname = _id(s["id"]), s.get("name")
        jobs = tuple(v4_job(j, sid, sname) for j in s.get("jobs") or ())
        status, raw = _status(
            codearts_repo.STATUS, s.get("status"), aggregate(j.status for j in jobs)
        )
        start, end = derive_span(status, jobs)
        stages.append(
            Stage(
                id=sid,
                name=sname,
                order=order,
                status=status,
                raw_status=raw,
                started_at=start,
                finished_at=end,
                jobs=jobs,
            )
        )
    status, raw = _status(
        codearts_repo.STATUS, payload.get("status"), aggregate(s.status for s in stages)
    )
    start, end = derive_span(status, stages)
    all_jobs = [j for s in stages for j in s.jobs]
    return Run(
        vendor=codearts_repo.VENDOR,
        pipeline_id=_id(payload["id"]),
        run_id=None,
        number=None,
        status=status,
        raw_status=raw,
        started_at=start,
        finished_at=end,
        ref=first_set(j.ref for j in all_jobs),
        sha=first_set(j.sha for j in all_jobs),
        stages=tuple(stages),
    )


def v4_page_baseline(payload: list[dict[str, Any]]) -> list[Job]:
    return [
        v4_job(d, None if d.get("stage_id") is None else _id(d["stage_id"]), d.get("stage"))
        for d in payload
    ]


def v5_baseline(item: dict[str, Any]) -> Run:
    V = codearts_pipeline.VENDOR
    table = codearts_pipeline.STATUS
    stages = []
    for order, s in enumerate(
        ordered(item.get("stage_status_list") or [], lambda s: s.get("sequence"))
    ):
        status, raw = _status(table, s.get("status"), Status.PENDING)
        seq = s.get("sequence")
        stages.append(
            Stage(
                id=str(seq if seq is not None else order),
                name=s.get("name"),
                order=order,
                status=status,
                raw_status=raw,
                started_at=parse_time(s.get("start_time"), vendor=V, field="stage.start_time"),
                finished_at=parse_time(s.get("end_time"), vendor=V, field="stage.end_time"),
            )
        )
    status, raw = _status(table, item.get("status"), aggregate(s.status for s in stages))
    start = parse_time(item.get("start_time"), vendor=V, field="start_time")
    end = parse_time(item.get("end_time"), vendor=V, field="end_time")
    if start is None or (end is None and status.is_terminal):
        d_start, d_end = derive_span(status, stages)
        start, end = start or d_start, end or d_end
    params = item.get("build_params") or {}
    if params.get("build_type") == "tag" and params.get("tag"):
        ref = params["tag"]
    else:
        ref = params.get("source_branch") or params.get("target_branch") or params.get("tag")
    run_id = item.get("pipeline_run_id")
    return Run(
        vendor=V,
        pipeline_id=_id(item["pipeline_id"]),
        run_id=None if run_id is None else _id(run_id),
        number=item.get("run_number"),
        status=status,
        raw_status=raw,
        started_at=start,
        finished_at=end,
        ref=ref,
        sha=params.get("commit_id"),
        trigger=item.get("trigger_type"),
        url=item.get("detail_url"),
        stages=tuple(stages),
    )


def yunxiao_baseline(payload: dict[str, Any]) -> Run:
    V = yunxiao.VENDOR
    table = yunxiao.STATUS
    ref = first_set((src.get("data") or {}).get("branch") for src in payload.get("sources") or ())
    stages = []
    for order, s in enumerate(payload.get("stages") or ()):
        info = s.get("stageInfo") or {}
        sid = s.get("index") or str(order)
        name = s.get("name") or info.get("name")
        jobs = []
        for j in info.get("jobs") or ():
            status, raw = _status(table, j.get("status"), Status.PENDING)
            jobs.append(
                Job(
                    id=_id(j["id"]),
                    name=j.get("name"),
                    status=status,
                    raw_status=raw,
                    started_at=parse_time(j.get("startTime"), vendor=V, field="job.startTime"),
                    finished_at=parse_time(j.get("endTime"), vendor=V, field="job.endTime"),
                    ref=ref,
                    build_id=j.get("jobSign"),
                    stage_id=sid,
                    stage_name=name,
                )
            )
        status, raw = _status(table, info.get("status"), aggregate(j.status for j in jobs))
        start = parse_time(info.get("startTime"), vendor=V, field="stageInfo.startTime")
        end = parse_time(info.get("endTime"), vendor=V, field="stageInfo.endTime")
        d_start, d_end = derive_span(status, jobs)
        stages.append(
            Stage(
                id=sid,
                name=name,
                order=order,
                status=status,
                raw_status=raw,
                started_at=start or d_start,
                finished_at=end or d_end,
                jobs=tuple(jobs),
            )
        )
    status, raw = _status(table, payload.get("status"), aggregate(s.status for s in stages))
    _, d_end = derive_span(status, stages)
    mode = payload.get("triggerMode")
    run_id = payload.get("pipelineRunId")
    run_id = None if run_id is None else _id(run_id)
    number = int(run_id) if run_id and run_id.isascii() and run_id.isdigit() else None
    return Run(
        vendor=V,
        pipeline_id=_id(payload["pipelineId"]),
        run_id=run_id,
        number=number,
        status=status,
        raw_status=raw,
        started_at=parse_time(payload.get("createTime"), vendor=V, field="createTime"),
        finished_at=d_end,
        ref=ref,
        trigger=None if mode is None else yunxiao.TRIGGER_MODES.get(mode, str(mode)),
        stages=tuple(stages),
    )


# --- the small payloads a poll gets ------------------------------------------------------------


def _poll_run() -> SimRun:
    """The run every pipeline of ``benchmarks/fanout.py`` serves (pipestatus.testing's static
    shape): two stages, three jobs, finished."""
    return SimRun(
        number=3,
        status="success",
        stages=[
            SimStage("build", [SimJob("compile", "success"), SimJob("lint", "success")]),
            SimStage("test", [SimJob("unit", "success")]),
        ],
    )


async def _fetch_small() -> dict[str, Any]:
    import aiohttp

    async with VendorServer(token="bench") as server:
        server.add_repo_pipeline(1000, 3, _poll_run())
        server.add_yunxiao_pipeline("3", _poll_run())
        server.add_v5_pipeline("proj", "p0003", _poll_run())
        out: dict[str, Any] = {}
        async with aiohttp.ClientSession(server.url) as session:
            for key, method, path, header, body in (
                (
                    "v4",
                    "GET",
                    "/v4/repositories/1000/pipelines/3/latest-jobs",
                    "X-Auth-Token",
                    None,
                ),
                ("v4 page", "GET", "/v4/repositories/1000/pipelines/3/jobs", "X-Auth-Token", None),
                ("v5", "POST", "/v5/proj/api/pipelines/status", "X-Auth-Token", ["p0003"]),
                (
                    "yunxiao",
                    "GET",
                    "/oapi/v1/flow/organizations/pipelines/3/runs/latestPipelineRun",
                    "x-yunxiao-token",
                    None,
                ),
            ):
                async with session.request(
                    method, path, headers={header: "bench"}, json=body
                ) as resp:
                    resp.raise_for_status()
                    out[key] = await resp.json()
    out["v5"] = out["v5"][0]
    return out


# --- measuring -----------------------------------------------------------------------------


def _mean_call(fn: Callable[[Any], Any], payload: Any, loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        fn(payload)
    return (time.perf_counter() - start) / loops


def medians(
    ours: Callable[[Any], Any],
    base: Callable[[Any], Any],
    payload: Any,
    *,
    loops: int,
    repeats: int,
) -> tuple[float, float]:
    """Median seconds per call of each function; repeats alternate so load hits both alike."""
    ours(payload)  # warm up (cattrs builds its hooks on first use)
    base(payload)
    ours_samples, base_samples = [], []
    for _ in range(repeats):
        ours_samples.append(_mean_call(ours, payload, loops))
        base_samples.append(_mean_call(base, payload, loops))
    return statistics.median(ours_samples), statistics.median(base_samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--loops", type=int, default=5)
    args = parser.parse_args()

    small = asyncio.run(_fetch_small())
    large_v4 = load("codearts_repo", "latest-jobs-large-200.json")
    page_v4 = [
        dict(job, stage_id=stage["id"], stage=stage["name"])
        for stage in large_v4["stages"]
        for job in stage["jobs"]
    ]
    large_v5 = load("codearts_pipeline", "batch-status-large-200.json")[0]
    large_yx = load("yunxiao", "latest-run-large-200.json")
    cases: list[tuple[str, Callable[[Any], Any], Callable[[Any], Any], Any, int, str]] = [
        (
            "small: codearts_repo latest-jobs",
            codearts_repo.parse_latest_jobs,
            v4_baseline,
            small["v4"],
            1,
            "runs",
        ),
        (
            "small: codearts_repo job list",
            codearts_repo.parse_jobs_page,
            v4_page_baseline,
            small["v4 page"],
            1,
            "pages",
        ),
        (
            "small: codearts_pipeline item",
            codearts_pipeline.parse_run,
            v5_baseline,
            small["v5"],
            1,
            "runs",
        ),
        (
            "small: yunxiao latest run",
            yunxiao.parse_latest_run,
            yunxiao_baseline,
            small["yunxiao"],
            1,
            "runs",
        ),
        (
            "codearts_repo.parse_latest_jobs",
            codearts_repo.parse_latest_jobs,
            v4_baseline,
            large_v4,
            500,
            "jobs",
        ),
        (
            "codearts_repo.parse_jobs_page",
            codearts_repo.parse_jobs_page,
            v4_page_baseline,
            page_v4,
            500,
            "jobs",
        ),
        (
            "codearts_pipeline.parse_run",
            codearts_pipeline.parse_run,
            v5_baseline,
            large_v5,
            50,
            "stages",
        ),
        (
            "yunxiao.parse_latest_run",
            yunxiao.parse_latest_run,
            yunxiao_baseline,
            large_yx,
            500,
            "jobs",
        ),
    ]

    header = (
        f"{'normalizer':34} {'unit':>6} {'normalizer/s':>13} {'baseline/s':>13}"
        f" {'us/call':>8} {'ratio':>6}"
    )
    print(
        f"Python {sys.version.split()[0]}, median of {args.repeats} repeats x {args.loops} calls"
        f" ({args.loops * SMALL_LOOPS} for the small payloads)"
    )
    print(header)
    print("-" * len(header))
    worst = 0.0
    for name, normalize, baseline, payload, count, unit in cases:
        if normalize(payload) != baseline(payload):
            print(f"{name}: baseline and normalizer disagree; fix the baseline", file=sys.stderr)
            return 2
        loops = args.loops * (SMALL_LOOPS if count == 1 else 1)
        ours, base = medians(normalize, baseline, payload, loops=loops, repeats=args.repeats)
        ratio = ours / base
        worst = max(worst, ratio)
        print(
            f"{name:34} {unit:>6} {count / ours:13,.0f} {count / base:13,.0f}"
            f" {ours * 1e6:8.1f} {ratio:5.2f}x"
        )
    verdict = "met" if worst <= GOAL else "MISSED"
    print(f"worst ratio {worst:.2f}x: goal <= {GOAL:.1f}x {verdict}")
    return 0 if worst <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
