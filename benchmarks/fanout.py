"""Fan-out benchmark: ``client.poll`` against raw aiohttp + ``gather``, on a server that is not
the bottleneck; a 10,000-target watch's memory; v5 batching.

Run it from the repository root::

    python benchmarks/fanout.py            # full run: about 4-6 minutes
    python benchmarks/fanout.py --quick    # about a minute and a half: fewer repetitions,
                                           # no tracemalloc runs

**The server** is ``benchmarks/_server.py`` in its own process: it records every answer once
from ``pipestatus.testing`` (v4 repository 1000, pipelines 1..10000; Yunxiao "1".."10000"; v5
project "proj", "p0001".."p10000", the real payload shapes with their ``ETag``) and then serves
those prepared bytes from a bare ``asyncio.Protocol``, at a small fraction of either client's
CPU per request. It counts its own CPU (``time.process_time`` in its process, read through
``GET /stats`` before and after each timed run), and every ratio below is printed with the
server's CPU per request beside it, so a reader can see that the server is not the limit.

**The floor** is raw aiohttp with ``asyncio.gather`` under the same limit: the session
``pipestatus.http`` opens, setting for setting (``TCPConnector(limit=64)``, the same
``ClientTimeout``, ``trust_env=False``, aiohttp's hidden retry off), an
``asyncio.Semaphore(64)``, the same requests (same URLs, headers and bodies; checked by tracing
a small poll of each workload; the server's own request count is checked on every run), each
body read and ``json.loads``-decoded: the least any client must do. Nothing is normalized.

Printed, as it goes:

1. **Watch** (first, so that its RSS growth is not hidden by memory freed by earlier runs):
   ``client.watcher`` over 10,000 *mix* targets (half v4, half Yunxiao), interval 2 s, until
   every target has been answered twice (counted per URL with an aiohttp ``TraceConfig``; the
   second round is answered 304, as a real vendor would) or a cap (60 s; 30 s with
   ``--quick``). Prints the RSS growth: the peak RSS while watching (``VmHWM``, reset through
   ``/proc/self/clear_refs`` just before; Linux only, else n/a) over the RSS before the client
   was made. The full run repeats the watch under ``tracemalloc``. Goal: under 100 MB.
2. **Poll**: ``Client(max_concurrency=64).poll(targets)`` over 1,000 and 10,000 targets of each
   workload (v4, Yunxiao, the mix: one GET per target; v5: batched POSTs of 100) against the
   floor. Each repetition opens a fresh session on each side (so pipestatus's conditional cache
   never turns answers into 304s); the sides alternate (pipestatus, floor, floor, pipestatus,
   ...); only the fan-out is timed. Per side: the median wall time (every repetition in
   brackets), this process's CPU time per HTTP request (``time.process_time``, median), the RSS
   growth and, in the full run, the ``tracemalloc`` peak of one extra untimed 10,000-target run.
   Then the ratios pipestatus/floor of the medians, and the server's CPU per request.
3. **v5 batching**: the HTTP requests one ``client.poll`` of 10,000 v5 targets sends, counted
   with a ``TraceConfig``, against ``ceil(10000 / BATCH_SIZE)``. Goal: at most 100.
4. A summary table with the goals (issue 16): wall ratio <= 1.1 and client CPU per request
   <= 1.2 for the one-request workloads; v5 client CPU <= 2 times the floor's.

Exit status 0; 1 with a traceback only if a run fails outright (the server does not start, a
request errors, the requests differ from the floor's).

How to read it: the machine this was written on has 2 cores shared with other jobs, so absolute
figures drift from run to run; compare the ratios of one run. The server takes one core at a
fraction of its capacity, the client the other: both sides are client-bound, so the wall ratio
tracks the CPU ratio. Under outside load the wall figures get noisier first; the CPU per request
is the steadier measure of what the client costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import (
    REPO_ID,
    V5_PATH,
    BenchServer,
    v4_path,
    v5_bodies,
    v5_ids,
    yunxiao_path,
)
from _support import RequestCounter, RssWindow, mb

from pipestatus import Client, Target
from pipestatus.errors import PipestatusError
from pipestatus.http import USER_AGENT
from pipestatus.vendors.codearts_pipeline import BATCH_SIZE
from pipestatus.watch import Watcher

TOKEN = "bench-token"
CONCURRENCY = 64
TIMEOUT = 10.0  # Client's default: the session's sock_connect
SERVED = 10_000  # pipelines served per vendor
GOAL_WALL = 1.1
GOAL_CPU = 1.2
GOAL_V5_CPU = 2.0
GOAL_WATCH_MB = 100.0
GOAL_V5_REQUESTS = 100


# --- workloads -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Req:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None


def _headers(auth_header: str, *, post: bool = False) -> dict[str, str]:
    # What pipestatus sends (checked by tracing, see check_same_requests).
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT, auth_header: TOKEN}
    if post:
        headers["Content-Type"] = "application/json"
    return headers


def v4_targets(client: Client, base: str, n: int) -> list[Target]:
    repo = client.codearts_repo(base, token=TOKEN)
    return [repo.target(REPO_ID, i) for i in range(1, n + 1)]


def v4_requests(base: str, n: int) -> list[Req]:
    headers = _headers("X-Auth-Token")
    return [Req("GET", base + v4_path(i), headers) for i in range(1, n + 1)]


def yunxiao_targets(client: Client, base: str, n: int) -> list[Target]:
    flow = client.yunxiao(base, token=TOKEN)
    return [flow.target(str(i)) for i in range(1, n + 1)]


def yunxiao_requests(base: str, n: int) -> list[Req]:
    headers = _headers("x-yunxiao-token")
    return [Req("GET", base + yunxiao_path(i), headers) for i in range(1, n + 1)]


def mix_targets(client: Client, base: str, n: int) -> list[Target]:
    """``n`` targets: the first half v4 (pipelines 1..), the rest Yunxiao ("1"..)."""
    return v4_targets(client, base, n // 2) + yunxiao_targets(client, base, n - n // 2)


def mix_requests(base: str, n: int) -> list[Req]:
    return v4_requests(base, n // 2) + yunxiao_requests(base, n - n // 2)


def v5_targets(client: Client, base: str, n: int) -> list[Target]:
    pipe = client.codearts_pipeline(base, project_id="proj", token=TOKEN)
    return [pipe.target(pid) for pid in v5_ids(n)]


def v5_requests(base: str, n: int) -> list[Req]:
    headers = _headers("X-Auth-Token", post=True)
    return [Req("POST", base + V5_PATH, headers, body) for body in v5_bodies(n)]


@dataclass(frozen=True)
class Workload:
    name: str
    targets: Callable[[Client, str, int], list[Target]]
    requests: Callable[[str, int], list[Req]]
    batched: bool = False


V4 = Workload("v4", v4_targets, v4_requests)
YUNXIAO = Workload("yunxiao", yunxiao_targets, yunxiao_requests)
MIX = Workload("mix", mix_targets, mix_requests)
V5 = Workload("v5 batched", v5_targets, v5_requests, batched=True)
WORKLOADS = (V4, YUNXIAO, MIX, V5)


# --- one run of each side ------------------------------------------------------------------------


@dataclass
class Sample:
    seconds: float
    requests: int
    cpu: float  # this process's CPU seconds (user + system) during the fan-out
    server_cpu: float  # the server process's, over the same window
    rss_growth: int | None = None
    traced_peak: int | None = None


class Window:
    """The timed window: wall and CPU here, CPU and requests answered at the server."""

    def __init__(self, server: BenchServer, expected: int, traced: bool) -> None:
        self.server = server
        self.expected = expected
        self.traced = traced

    async def __aenter__(self) -> Window:
        gc.collect()
        self.rss = RssWindow()
        if self.traced:
            tracemalloc.start()
        self.server0 = await self.server.stats()
        self.cpu0, self.started = time.process_time(), time.perf_counter()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started
        self.cpu = time.process_time() - self.cpu0
        self.peak = tracemalloc.get_traced_memory()[1] if self.traced else None
        if self.traced:
            tracemalloc.stop()
        self.growth = self.rss.growth()
        cpu1, requests1 = await self.server.stats()
        self.server_cpu = cpu1 - self.server0[0]
        answered = requests1 - self.server0[1] - 1  # less the second /stats itself
        if exc[0] is None and answered != self.expected:
            raise RuntimeError(f"the server answered {answered} requests, {self.expected} expected")

    def sample(self) -> Sample:
        return Sample(
            self.seconds, self.expected, self.cpu, self.server_cpu, self.growth, self.peak
        )


async def pipestatus_run(
    server: BenchServer, work: Workload, n: int, *, traced: bool = False
) -> Sample:
    # The Client's own session, exactly as users get it.
    expected = len(work.requests(server.url, n))
    async with Client(max_concurrency=CONCURRENCY) as client:
        targets = work.targets(client, server.url, n)
        async with Window(server, expected, traced) as window:
            results = await client.poll(targets)
        errors = [r for r in results.values() if isinstance(r, PipestatusError)]
        if len(results) != n or errors:
            raise RuntimeError(f"pipestatus {work.name} {n}: {len(errors)} errors: {errors[:1]}")
        del results
    return window.sample()


def floor_session() -> aiohttp.ClientSession:
    """The session ``pipestatus.http`` opens, setting for setting."""
    connector = aiohttp.TCPConnector(limit=CONCURRENCY, limit_per_host=0, ssl=True)
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=TIMEOUT),
        trust_env=False,
    )
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False
    return session


async def floor_run(server: BenchServer, work: Workload, n: int, *, traced: bool = False) -> Sample:
    requests = work.requests(server.url, n)
    semaphore = asyncio.Semaphore(CONCURRENCY)
    async with floor_session() as session:

        async def one(req: Req) -> Any:
            async with (
                semaphore,
                session.request(
                    req.method, req.url, headers=req.headers, data=req.body, allow_redirects=False
                ) as resp,
            ):
                body = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"floor: {req.method} {req.url} -> {resp.status}")
                return json.loads(body)

        async with Window(server, len(requests), traced) as window:
            payloads = await asyncio.gather(*(one(req) for req in requests))
        del payloads
    return window.sample()


# --- the poll measurement ------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


@dataclass
class PollRow:
    work: Workload
    n: int
    ps: list[Sample] = field(default_factory=list)
    floor: list[Sample] = field(default_factory=list)
    ps_traced: int | None = None
    floor_traced: int | None = None

    @staticmethod
    def wall(samples: Sequence[Sample]) -> float:
        return _median([s.seconds for s in samples])

    @staticmethod
    def cpu(samples: Sequence[Sample]) -> float:
        """Median client CPU microseconds per HTTP request."""
        return _median([s.cpu / s.requests for s in samples]) * 1e6

    @staticmethod
    def server_cpu(samples: Sequence[Sample]) -> float:
        """Median server CPU microseconds per HTTP request."""
        return _median([s.server_cpu / s.requests for s in samples]) * 1e6

    @staticmethod
    def rss(samples: Sequence[Sample]) -> int | None:
        values = [s.rss_growth for s in samples if s.rss_growth is not None]
        return int(statistics.median(values)) if values else None

    @property
    def wall_ratio(self) -> float:
        return self.wall(self.ps) / self.wall(self.floor)

    @property
    def cpu_ratio(self) -> float:
        return self.cpu(self.ps) / self.cpu(self.floor)

    @property
    def goal_met(self) -> bool:
        if self.work.batched:
            return self.cpu_ratio <= GOAL_V5_CPU
        return self.wall_ratio <= GOAL_WALL and self.cpu_ratio <= GOAL_CPU


async def measure_poll(
    server: BenchServer, work: Workload, n: int, reps: int, traced: bool
) -> PollRow:
    row = PollRow(work, n)
    sides: list[tuple[Callable[..., Awaitable[Sample]], list[Sample]]] = [
        (pipestatus_run, row.ps),
        (floor_run, row.floor),
    ]
    for rep in range(reps):
        for run, samples in sides if rep % 2 == 0 else sides[::-1]:
            samples.append(await run(server, work, n))
    if traced:
        row.ps_traced = (await pipestatus_run(server, work, n, traced=True)).traced_peak
        row.floor_traced = (await floor_run(server, work, n, traced=True)).traced_peak
    requests = row.ps[0].requests
    print(f"  {work.name} x {n:,}: {requests:,} requests per poll, {reps} reps alternating")
    for name, samples, peak in (
        ("pipestatus", row.ps, row.ps_traced),
        ("floor", row.floor, row.floor_traced),
    ):
        every = " ".join(f"{s.seconds:.3f}" for s in samples)
        cpus = " ".join(f"{s.cpu / s.requests * 1e6:.0f}" for s in samples)
        memory = f", tracemalloc peak {mb(peak)} MB" if peak is not None else ""
        print(
            f"    {name:<10} wall {row.wall(samples):6.3f} s [{every}]\n"
            f"    {'':<10} client CPU {row.cpu(samples):6.1f} us/req [{cpus}]"
            f"  server CPU {row.server_cpu(samples):5.1f} us/req"
            f"  RSS growth {mb(row.rss(samples))} MB{memory}"
        )
    print(
        f"    ratio pipestatus/floor: wall {row.wall_ratio:.2f}, client CPU per request"
        f" {row.cpu_ratio:.2f}"
    )
    return row


async def check_same_requests(base: str) -> str:
    """Trace which requests pipestatus sends for a small poll; compare with the floor's list."""
    lines = []
    for work in WORKLOADS:
        n = 300 if work.batched else 200
        counter = RequestCounter()
        async with (
            aiohttp.ClientSession(trace_configs=[counter.config()]) as session,
            Client(max_concurrency=CONCURRENCY, session=session) as client,
        ):
            await client.poll(work.targets(client, base, n))
        floor = work.requests(base, n)
        expected = {(r.method, r.url) for r in floor}
        if counter.methods != expected or counter.started != len(floor):
            raise RuntimeError(
                f"{work.name}: pipestatus sent {sorted(counter.methods - expected)[:3]}, "
                f"the floor {sorted(expected - counter.methods)[:3]}"
            )
        lines.append(f"{work.name} {counter.started}")
    return "the same requests as the floor's (traced): " + ", ".join(lines)


# --- the watch measurement -----------------------------------------------------------------------


@dataclass
class WatchResult:
    n: int
    traced: bool
    seconds: float
    complete: bool
    twice: int
    requests: int
    changes: int
    rss_growth: int | None
    traced_peak: int | None = None
    traced_round1: int | None = None
    traced_round2: int | None = None
    traced_end: int | None = None


async def measure_watch(
    base: str, n: int, *, interval: float, cap: float, traced: bool
) -> WatchResult:
    """Watch ``n`` mix targets until each has been answered twice (or ``cap`` seconds)."""
    window = RssWindow()
    if traced:
        tracemalloc.start()
    counter = RequestCounter()
    once = twice = 0
    round1: int | None = None
    round2: int | None = None
    done = asyncio.Event()

    def on_answer(_path: str, count: int) -> None:
        nonlocal once, twice, round1, round2
        if count == 1:
            once += 1
            if once == n and traced:
                round1 = tracemalloc.get_traced_memory()[0]
        elif count == 2:
            twice += 1
            if twice == n:
                if traced:
                    round2 = tracemalloc.get_traced_memory()[0]
                done.set()

    counter.on_answer = on_answer
    changes = 0

    async def consume(watcher: Watcher) -> None:
        nonlocal changes
        async for _change in watcher:
            changes += 1

    started = time.perf_counter()
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=CONCURRENCY), trace_configs=[counter.config()]
    )
    try:
        async with session, Client(max_concurrency=CONCURRENCY, session=session) as client:
            watcher = client.watcher(mix_targets(client, base, n), interval=interval)
            consumer = asyncio.create_task(consume(watcher))
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), cap)
            finally:
                consumer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await consumer
                await watcher.aclose()
            seconds = time.perf_counter() - started
            growth = window.growth()
            current, peak = tracemalloc.get_traced_memory() if traced else (None, None)
    finally:
        if traced:
            tracemalloc.stop()
    return WatchResult(
        n=n,
        traced=traced,
        seconds=seconds,
        complete=done.is_set(),
        twice=twice,
        requests=counter.started,
        changes=changes,
        rss_growth=growth,
        traced_peak=peak,
        traced_round1=round1,
        traced_round2=round2,
        traced_end=current,
    )


def print_watch(watch: WatchResult, cap: float) -> None:
    state = "complete" if watch.complete else f"CAP of {cap:g} s REACHED"
    print(
        f"  {'with' if watch.traced else 'without'} tracemalloc: {state} after"
        f" {watch.seconds:.1f} s; {watch.twice:,}/{watch.n:,} targets answered twice,"
        f" {watch.requests:,} requests, {watch.changes:,} changes yielded"
    )
    if watch.traced:
        print(
            f"    tracemalloc peak {mb(watch.traced_peak)} MB; current after round 1"
            f" {mb(watch.traced_round1)} MB, after round 2 {mb(watch.traced_round2)} MB,"
            f" after aclose (client still open) {mb(watch.traced_end)} MB"
        )
    label = "(inflated by tracemalloc's own bookkeeping)" if watch.traced else ""
    print(f"    RSS growth, peak while watching over RSS before: {mb(watch.rss_growth)} MB {label}")


async def measure_v5_requests(base: str, n: int) -> tuple[int, int, int]:
    """(requests sent, expected ceil(n / BATCH_SIZE), runs returned) for one poll of n v5."""
    counter = RequestCounter()
    async with (
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=CONCURRENCY), trace_configs=[counter.config()]
        ) as session,
        Client(max_concurrency=CONCURRENCY, session=session) as client,
    ):
        results = await client.poll(v5_targets(client, base, n))
    runs = sum(not isinstance(r, PipestatusError) for r in results.values())
    return counter.started, math.ceil(n / BATCH_SIZE), runs


# --- main ----------------------------------------------------------------------------------------


def _ok(good: bool) -> str:
    return "yes" if good else "NO"


def print_summary(rows: Sequence[PollRow], watches: Sequence[WatchResult], v5_sent: int) -> None:
    print("\n== summary (medians of alternating runs; ratios from this run) ==")
    head = (
        f"{'poll':<20} {'client CPU us/req':>19} {'CPU':>5} {'wall s':>15} {'wall':>5}"
        f" {'server CPU':>10} {'goal':>16}  ok"
    )
    sub = (
        f"{'':<20} {'pipestatus':>10} {'floor':>8} {'ratio':>5} {'pipestatus':>9} {'floor':>5}"
        f" {'ratio':>5} {'us/req':>10} {'':>16}"
    )
    print(head)
    print(sub)
    print("-" * len(head))
    for row in rows:
        goal = f"CPU <= {GOAL_V5_CPU:g}" if row.work.batched else f"{GOAL_WALL:g} / {GOAL_CPU:g}"
        server = _median([s.server_cpu / s.requests for s in row.ps + row.floor]) * 1e6
        print(
            f"{f'{row.work.name} {row.n:,}':<20} {row.cpu(row.ps):>10.1f}"
            f" {row.cpu(row.floor):>8.1f} {row.cpu_ratio:>5.2f} {row.wall(row.ps):>9.3f}"
            f" {row.wall(row.floor):>5.3f} {row.wall_ratio:>5.2f} {server:>10.1f}"
            f" {goal:>16}  {_ok(row.goal_met)}"
        )
    for row in rows:
        if row.ps_traced is not None:
            print(
                f"  tracemalloc peak, {row.work.name} {row.n:,}: pipestatus {mb(row.ps_traced)} MB,"
                f" floor {mb(row.floor_traced)} MB"
            )
    for watch in watches:
        measure, value = (
            ("traced peak", watch.traced_peak) if watch.traced else ("RSS growth", watch.rss_growth)
        )
        good = value is not None and value < GOAL_WATCH_MB * 1024 * 1024 and watch.complete
        print(
            f"watch {watch.n:,}, {measure}: {mb(value)} MB (goal < {GOAL_WATCH_MB:g} MB)"
            f"  {_ok(good)}"
        )
    if v5_sent:
        print(
            f"v5 10,000: {v5_sent} HTTP requests (goal <= {GOAL_V5_REQUESTS})"
            f"  {_ok(v5_sent <= GOAL_V5_REQUESTS)}"
        )


async def bench(server: BenchServer, quick: bool, only: str | None) -> None:
    # (targets, repetitions per side); tracemalloc runs and the traced watch: full run only.
    plan = [(1_000, 5), (10_000, 3)] if quick else [(1_000, 9), (10_000, 5)]
    traced = not quick
    watch_cap = 30.0 if quick else 60.0
    base = server.url
    print(
        f"server {base} (benchmarks/_server.py, separate process); {os.cpu_count()} CPUs;"
        f" Python {sys.version.split()[0]}, aiohttp {aiohttp.__version__};"
        f" mode {'quick' if quick else 'full'}"
    )
    print(await check_same_requests(base))

    watches: list[WatchResult] = []
    if only is None:
        print(f"\n== watch: {SERVED:,} mix targets, interval 2 s, until each is answered twice ==")
        watches.append(await measure_watch(base, SERVED, interval=2.0, cap=watch_cap, traced=False))
        print_watch(watches[0], watch_cap)
        if traced:
            watches.append(await measure_watch(base, SERVED, interval=2.0, cap=90.0, traced=True))
            print_watch(watches[1], 90.0)

    works = [w for w in WORKLOADS if only is None or w.name.split()[0] == only]
    for work in works:  # warm up
        await floor_run(server, work, 1000)
        await pipestatus_run(server, work, 1000)
    print(f"\n== poll: Client(max_concurrency={CONCURRENCY}).poll vs raw aiohttp + gather ==")
    rows = [
        await measure_poll(server, work, n, reps, traced and n == 10_000)
        for n, reps in plan
        for work in works
    ]

    v5_sent = 0
    if only is None:
        print("\n== v5 batching: HTTP requests for one poll of 10,000 v5 targets ==")
        v5_sent, v5_expected, v5_runs = await measure_v5_requests(base, SERVED)
        print(
            f"  {v5_sent} requests sent (traced with a TraceConfig); ceil(10000 / BATCH_SIZE"
            f" {BATCH_SIZE}) = {v5_expected}; {v5_runs:,} runs returned"
        )
    print_summary(rows, watches, v5_sent)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="fewer repetitions, no tracemalloc runs"
    )
    parser.add_argument(
        "--only",
        choices=[w.name.split()[0] for w in WORKLOADS],
        help="one workload's poll rows only (no watch, no v5 count): for quick comparisons",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    server = BenchServer(token=TOKEN, repo=SERVED, yunxiao=SERVED, v5=SERVED)
    try:
        server.start()
        print(f"server ready after {time.perf_counter() - started:.0f} s")
        asyncio.run(bench(server, args.quick, args.only))
    finally:
        server.close()
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
