"""Scope benchmark: a 10,000-pipeline CodeArts Pipeline v5 project's status through a scope
(the pipeline list, whose pages carry each pipeline's latest run) beside the same 10,000 IDs
through the batch status endpoint, in one run.

Run it from the repository root::

    python benchmarks/scope.py                  # 10,000 pipelines, 3 repetitions each
    python benchmarks/scope.py --pipelines 2000 --repeat 1

**The server** is ``python -m pipestatus.testing --v5 N`` in its own process: N static v5
pipelines ``p0001``.. in project ``proj``, served by the simulator's dialect (it renders only
the page asked for). It is the real simulator, not a prepared-bytes server: its CPU per request
is far above a vendor's, so the wall times below say more about it than about the client; the
request counts are the measure. Both sides poll the same pipelines of the same server.

Printed: per side, the HTTP requests one ``client.poll`` sent (counted with an aiohttp
``TraceConfig``) against the goal (the scope: one per page of ``LIST_PAGE``; the batch:
``ceil(N / BATCH_SIZE)``), the median wall time (each repetition in brackets), this process's
CPU time, and the runs returned; then whether both sides read the same status for every
pipeline. (The scope asks for its pages in waves of ``LIST_WAVE`` once the first page gave the
total; the batch sends all its calls at once. On loopback the simulator's CPU sets both wall
times; against a vendor with real round trips the waves are what keeps a 100-page list from
costing 100 round trips.) Each repetition opens a fresh client. Exit status 0; 1 if the sides
disagree, the counts miss their goal, or a request fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from pipestatus import Client, Run
from pipestatus.errors import PipestatusError
from pipestatus.vendors._codearts_pipeline_history import LIST_PAGE
from pipestatus.vendors.codearts_pipeline import BATCH_SIZE

TOKEN = "bench-token"


@dataclass
class Counter:
    started: int = 0

    def config(self) -> aiohttp.TraceConfig:
        trace = aiohttp.TraceConfig()

        async def on_start(*_: Any) -> None:
            self.started += 1

        trace.on_request_start.append(on_start)
        return trace


@dataclass
class Side:
    name: str
    goal: int
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)


async def one_poll(base: str, side: Side, make: Callable[[Any], list[Any]]) -> None:
    counter = Counter()
    async with (
        aiohttp.ClientSession(trace_configs=[counter.config()]) as session,
        Client(session=session, retries=0, timeout=60.0) as client,
    ):
        pipe = client.codearts_pipeline(base, project_id="proj", token=TOKEN)
        targets = make(pipe)
        cpu, wall = time.process_time(), time.perf_counter()
        results = await client.poll(targets)
        side.walls.append(time.perf_counter() - wall)
        side.cpus.append(time.process_time() - cpu)
    side.requests.append(counter.started)
    errors = [r for r in results.values() if isinstance(r, PipestatusError)]
    if errors:
        raise SystemExit(f"{side.name}: {len(errors)} errors, the first: {errors[0]}")
    side.statuses = {
        target.ids[0]: result.raw_status or ""
        for target, result in results.items()
        if isinstance(result, Run)
    }


async def start_server(n: int) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pipestatus.testing", "--v5", str(n), "--token", TOKEN,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    async with asyncio.timeout(120):
        url = (await proc.stdout.readline()).decode().strip()
    return proc, url


def show(side: Side) -> None:
    wall = statistics.median(side.walls)
    runs = ", ".join(f"{w:.2f}" for w in side.walls)
    print(
        f"  {side.name:<7} requests {side.requests[-1]:>4} (goal {side.goal}), wall median"
        f" {wall:.2f} s [{runs}], client CPU median {statistics.median(side.cpus):.2f} s,"
        f" runs {len(side.statuses)}"
    )


async def main(n: int, repeat: int) -> int:
    proc, base = await start_server(n)
    try:
        ids = [f"p{i:04d}" for i in range(1, n + 1)]
        scope = Side("scope", math.ceil(n / LIST_PAGE))
        batch = Side("batch", math.ceil(n / BATCH_SIZE))
        for _ in range(repeat):  # alternate the sides, so neither always runs on a warm server
            await one_poll(base, scope, lambda pipe: [pipe.scope()])
            await one_poll(base, batch, lambda pipe: [pipe.target(i) for i in ids])
        print(f"{n} v5 pipelines in one project, {repeat} repetitions per side:")
        show(scope)
        show(batch)
        same = scope.statuses == batch.statuses
        print(f"  both sides read the same status for every pipeline: {same}")
        ok = same and scope.requests[-1] == scope.goal and batch.requests[-1] == batch.goal
        return 0 if ok else 1
    finally:
        proc.terminate()
        with contextlib.suppress(ProcessLookupError):
            await proc.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipelines", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    sys.exit(asyncio.run(main(options.pipelines, options.repeat)))
