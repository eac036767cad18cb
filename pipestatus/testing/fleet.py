"""The demo fleet: time-driven pipelines for every registered vendor.

:func:`make_fleet` serves, for each vendor spec of :data:`pipestatus.vendors.REGISTRY`, the
pipelines ``spec.demo.ids(n)`` for n in 1..N under the account options ``spec.demo.options``,
so the demo's IDs live in the vendor modules alone (:func:`fleet_table` lists them). Each
pipeline queues, runs stage by stage, ends in success, failure, cancellation or timeout, rests,
and starts again with the next run number, deterministically for a seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import attrs

from pipestatus.testing._sim import SimJob, SimRun, SimStage, stable_hex
from pipestatus.vendors import REGISTRY, VendorSpec

if TYPE_CHECKING:
    from pipestatus.testing._server import VendorServer

__all__ = ["fleet_table", "make_fleet"]

_STAGE_PLANS: Final = (
    ("checkout", ("clone",)),
    ("build", ("compile", "lint", "package")),
    ("test", ("unit", "integration")),
    ("scan", ("sast",)),
    ("deploy", ("staging",)),
)


@attrs.frozen
class _RunPlan:
    """One run of a fleet pipeline, in simulated seconds from the run's start."""

    number: int
    queue: float
    stages: tuple[tuple[str, tuple[tuple[str, float], ...]], ...]  # (stage, ((job, secs),))
    outcome: str
    stop_stage: int  # where failure, cancel or timeout strike
    stop_job: int
    idle: float

    @property
    def active(self) -> float:
        stop = len(self.stages) if self.outcome == "success" else self.stop_stage + 1
        stages = self.stages[:stop]
        return sum(max(d for _, d in jobs) for _, jobs in stages)

    @property
    def length(self) -> float:
        return self.queue + self.active + self.idle


def _plan(seed: int, key: str, number: int) -> _RunPlan:
    rng = random.Random(f"{seed}/{key}/{number}")
    chosen = [plan for plan in _STAGE_PLANS if plan[0] in ("build", "test") or rng.random() < 0.6]
    stages = tuple(
        (name, tuple((job, rng.uniform(3, 15)) for job in jobs[: rng.randint(1, len(jobs))]))
        for name, jobs in chosen
    )
    outcome = rng.choices(("success", "failed", "canceled", "timedout"), (70, 18, 6, 6))[0]
    stop_stage = rng.randrange(len(stages))
    return _RunPlan(
        number=number,
        queue=rng.uniform(1, 6),
        stages=stages,
        outcome=outcome,
        stop_stage=stop_stage,
        stop_job=rng.randrange(len(stages[stop_stage][1])),
        idle=rng.uniform(5, 20),
    )


def _plan_at(plan: _RunPlan, t: float, run_start: datetime, speed: float) -> SimRun:
    """The state of ``plan`` at ``t`` simulated seconds after it was queued."""

    def wall(seconds: float) -> datetime:
        return run_start + timedelta(seconds=seconds / speed)

    sha = stable_hex("fleet-sha", plan.number, plan.queue, length=40)
    if t < plan.queue:
        stages = [
            SimStage(name, [SimJob(j, "pending") for j, _ in jobs]) for name, jobs in plan.stages
        ]
        return SimRun(
            number=plan.number, status="pending", stages=stages, sha=sha, created_at=run_start
        )
    clock = plan.queue
    out: list[SimStage] = []
    run_status = "running"
    run_end: datetime | None = None
    stopped = False
    for s_index, (name, jobs) in enumerate(plan.stages):
        sim_jobs: list[SimJob] = []
        stage_len = max(d for _, d in jobs)
        is_stop = plan.outcome != "success" and s_index == plan.stop_stage
        for j_index, (job, duration) in enumerate(jobs):
            if stopped:
                sim_jobs.append(SimJob(job, "skipped"))
                continue
            begin = clock
            end = clock + (stage_len if is_stop and j_index == plan.stop_job else duration)
            if t < begin:
                sim_jobs.append(SimJob(job, "pending"))
            elif t < end:
                sim_jobs.append(SimJob(job, "running", started_at=wall(begin)))
            else:
                status = "success"
                if is_stop:
                    status = plan.outcome if j_index == plan.stop_job else "success"
                    if plan.outcome == "canceled" and j_index != plan.stop_job:
                        status = "canceled" if duration >= stage_len else "success"
                sim_jobs.append(SimJob(job, status, started_at=wall(begin), finished_at=wall(end)))
        out.append(SimStage(name, sim_jobs))
        if not stopped:
            clock += stage_len
            if is_stop and t >= clock:
                stopped = True
    if t >= plan.queue + plan.active:
        run_status = plan.outcome
        run_end = wall(plan.queue + plan.active)
    return SimRun(
        number=plan.number,
        status=run_status,
        stages=out,
        sha=sha,
        ref="main" if plan.number % 3 else "release",
        started_at=wall(plan.queue),
        finished_at=run_end,
        created_at=run_start,
    )


def _fleet_source(seed: int, key: str, speed: float, origin: datetime) -> Callable[[float], SimRun]:
    """A time-driven run source cycling through runs 1, 2, 3, ... deterministically."""
    # Pipelines start out of phase; the cursor caches the run under way (number, start).
    cursor = [_plan(seed, key, 1), -random.Random(f"{seed}/{key}/offset").uniform(0, 30)]

    def source(elapsed: float) -> SimRun:
        t = elapsed * speed
        plan, start = cursor
        assert isinstance(plan, _RunPlan)
        assert isinstance(start, float)
        while t >= start + plan.length:
            start += plan.length
            plan = _plan(seed, key, plan.number + 1)
        cursor[:] = [plan, start]
        return _plan_at(plan, t - start, origin + timedelta(seconds=start / speed), speed)

    return source


def make_fleet(
    server: VendorServer, n_per_vendor: int = 10, seed: int = 0, speed: float = 1.0
) -> None:
    """Add ``n_per_vendor`` time-driven pipelines per registered vendor, deterministic given
    ``seed``; ``speed=10`` runs ten times faster. The IDs are each vendor spec's demo IDs
    (``spec.demo.ids(n)`` for n in 1..``n_per_vendor``, under ``spec.demo.options``): see
    :func:`fleet_table`."""
    origin = datetime.now(UTC)
    for spec in REGISTRY.values():
        for n in range(1, n_per_vendor + 1):
            source = _fleet_source(seed, f"{spec.key}/{n}", speed, origin)
            server.add_pipeline(spec.key, spec.demo.ids(n), source, **spec.demo.options)


def _named(spec: VendorSpec[Any, Any], n: int) -> str:
    """The n-th demo pipeline's IDs as ``name="value"`` pairs."""
    pairs = zip(spec.id_names, spec.demo.ids(n), strict=True)
    return ", ".join(f'{name}="{value}"' for name, value in pairs)


def fleet_table(n_per_vendor: int = 10) -> str:
    """The fleet's IDs per vendor as a Markdown table (the README's is this text)."""
    lines = [f"| vendor | account options | IDs of pipelines 1..{n_per_vendor} |", "|---|---|---|"]
    for spec in REGISTRY.values():
        options = ", ".join(f'{name}="{value}"' for name, value in spec.demo.options.items())
        lines.append(
            f"| `{spec.key}` | {f'`{options}`' if options else '(none)'} "
            f"| `{_named(spec, 1)}` ... `{_named(spec, n_per_vendor)}` |"
        )
    return "\n".join(lines) + "\n"
