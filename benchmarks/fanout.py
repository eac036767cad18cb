"""Fan-out benchmark: ``client.poll`` against a raw aiohttp floor, a 10k-target watch, v5 batching.

Run it from the repository root::

    python benchmarks/fanout.py            # full run: about 2-4 minutes
    python benchmarks/fanout.py --quick    # under a minute: fewer repetitions, no tracemalloc runs

It starts ``python -m pipestatus.testing`` in a separate process (static pipelines: v4 repository
1000, pipelines 1..5000; Yunxiao "1".."5000"; v5 project "proj", "p0001".."p10000"), reads its
URL from the first stdout line, and terminates it at the end whatever happens. Then, printing as
it goes:

1. **Watch** (first, so that its RSS growth is not hidden by memory freed by earlier runs):
   ``client.watcher`` over 10,000 *mix* targets (half CodeArts Repo v4, half Yunxiao), interval
   2 s, until every target has been answered twice (counted per URL with an aiohttp
   ``TraceConfig`` on a session passed as ``Client(session=...)``) or a cap (60 s; 30 s with
   ``--quick``). Prints the RSS growth: the peak RSS while watching (``VmHWM``, reset through
   ``/proc/self/clear_refs`` just before; Linux only, else n/a) over the RSS before the client
   was made. The full run repeats the watch under ``tracemalloc`` (peak and current Python
   allocations after rounds 1 and 2; that run is slower and its RSS is inflated by tracemalloc's
   own bookkeeping). Goal: under 100 MB.
2. **Poll**: ``Client(max_concurrency=64).poll(targets)`` over 1,000 and 10,000 mix targets (one
   GET each) and 1,000 and 10,000 v5 targets (batched POSTs), against the **floor**: raw aiohttp
   with ``asyncio.gather`` under the same limit (``TCPConnector(limit=64)`` plus
   ``asyncio.Semaphore(64)``) sending the same requests (same URLs, headers and bodies; checked by
   tracing a small poll) and ``json.loads``-decoding each body, with no normalization (the decoded
   payloads are kept, as pipestatus keeps its runs). Each repetition opens a fresh session on
   each side (so pipestatus's conditional-request cache never turns answers into 304s); the sides
   alternate; only the fan-out is timed. Per side: median wall time (every repetition in
   brackets), requests/s, targets/s, this process's CPU time per request (``time.process_time``),
   the RSS growth over the run (as above) and, in the full run, the ``tracemalloc`` peak of one
   extra untimed run. Then the ratios pipestatus/floor of the median wall times (goal <= 1.3)
   and of the CPU per request.
3. **v5 batching**: the HTTP requests that one ``client.poll`` of 10,000 v5 targets sends,
   counted with a ``TraceConfig``, against ``ceil(10000 / BATCH_SIZE)``. Goal: at most 100.
4. A summary table with the goals. Exit status 0; 1 with a traceback only if a run fails outright
   (the server does not start, a request errors, the requests differ from the floor's).

How to read it: the machine this was written on has 2 cores shared with other jobs, so absolute
figures drift a lot from run to run; compare medians and ratios. The server is one Python process
and, on a quiet machine, is the bottleneck of the mix polls: it serves both sides alike, so the
wall ratio stays fair, but it hides client cost (a wall ratio near 1 means "the client is not what
limits this"). The client-CPU-per-request ratio does not depend on that: it is the client's own
overhead over raw aiohttp (transport rules plus normalization). When other jobs load the cores,
the wall ratio moves toward the CPU ratio. Server and client also compete for the same 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import re
import select
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp

from pipestatus import Client, Target
from pipestatus.errors import PipestatusError
from pipestatus.http import USER_AGENT
from pipestatus.vendors.codearts_pipeline import BATCH_SIZE
from pipestatus.watch import Watcher

TOKEN = "bench-token"
CONCURRENCY = 64
REPO_ID = 1000
V5_PROJECT = "proj"
MIX_MAX = 10_000  # mix targets served: MIX_MAX // 2 v4 pipelines and as many Yunxiao ones
V5_MAX = 10_000
GOAL_RATIO = 1.3
GOAL_WATCH_MB = 100.0
GOAL_V5_REQUESTS = 100
MB = 1024 * 1024


# --- the server, in its own process --------------------------------------------------------------


class Server:
    """``python -m pipestatus.testing`` in a subprocess; always terminated by ``close``."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, timeout: float = 60.0) -> str:
        cmd = [
            sys.executable,
            "-m",
            "pipestatus.testing",
            "--repo",
            str(MIX_MAX // 2),
            "--yunxiao",
            str(MIX_MAX // 2),
            "--v5",
            str(V5_MAX),
            "--token",
            TOKEN,
            "--port",
            "0",
        ]
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().strip() if ready else ""
        if not line.startswith("http"):
            raise RuntimeError(f"the server did not print its URL within {timeout:g} s: {line!r}")
        self.url = line
        return line

    def close(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


# --- memory --------------------------------------------------------------------------------------

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(key: str) -> int | None:
    try:
        found = re.search(rf"^{key}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(found.group(1)) if found else None


def rss() -> int | None:
    """Current resident set size in bytes (Linux), else None."""
    kb = _status_kb("VmRSS")
    return None if kb is None else kb * 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (``VmHWM``) to the current RSS (Linux >= 4.0)."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_rss() -> int | None:
    kb = _status_kb("VmHWM")
    return None if kb is None else kb * 1024


class RssWindow:
    """Peak RSS above the RSS at ``start``, through a reset ``VmHWM``."""

    def __init__(self) -> None:
        gc.collect()
        self.ok = reset_peak_rss()
        self.before = rss()

    def growth(self) -> int | None:
        peak = peak_rss()
        if not self.ok or peak is None or self.before is None:
            return None
        return max(0, peak - self.before)


# --- workloads -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Req:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None


def _headers(auth_header: str, *, post: bool = False) -> dict[str, str]:
    # What pipestatus.http.Transport._send sends (checked once by tracing, see check_same_urls).
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT, auth_header: TOKEN}
    if post:
        headers["Content-Type"] = "application/json"
    return headers


def _v5_ids(n: int) -> list[str]:
    return [f"p{i:04d}" for i in range(1, n + 1)]


def mix_targets(client: Client, base: str, n: int) -> list[Target]:
    """``n`` targets: the first half v4 (repository 1000, pipelines 1..), the rest Yunxiao."""
    repo = client.codearts_repo(base, token=TOKEN)
    flow = client.yunxiao(base, token=TOKEN)
    half = n // 2
    return [repo.target(REPO_ID, i) for i in range(1, half + 1)] + [
        flow.target(str(i)) for i in range(1, n - half + 1)
    ]


def mix_requests(base: str, n: int) -> list[Req]:
    half = n // 2
    v4 = _headers("X-Auth-Token")
    yx = _headers("x-yunxiao-token")
    return [
        Req("GET", f"{base}/v4/repositories/{REPO_ID}/pipelines/{i}/latest-jobs", v4)
        for i in range(1, half + 1)
    ] + [
        Req("GET", f"{base}/oapi/v1/flow/organizations/pipelines/{i}/runs/latestPipelineRun", yx)
        for i in range(1, n - half + 1)
    ]


def v5_targets(client: Client, base: str, n: int) -> list[Target]:
    pipe = client.codearts_pipeline(base, project_id=V5_PROJECT, token=TOKEN)
    return [pipe.target(pid) for pid in _v5_ids(n)]


def v5_requests(base: str, n: int) -> list[Req]:
    ids = _v5_ids(n)
    headers = _headers("X-Auth-Token", post=True)
    url = f"{base}/v5/{V5_PROJECT}/api/pipelines/status"
    return [
        Req("POST", url, headers, json.dumps(ids[i : i + BATCH_SIZE]).encode())
        for i in range(0, n, BATCH_SIZE)
    ]


@dataclass(frozen=True)
class Workload:
    name: str
    targets: Callable[[Client, str, int], list[Target]]
    requests: Callable[[str, int], list[Req]]


MIX = Workload("mix v4+yunxiao", mix_targets, mix_requests)
V5 = Workload("v5 batched", v5_targets, v5_requests)


# --- one run of each side ------------------------------------------------------------------------


@dataclass
class Sample:
    seconds: float
    requests: int
    cpu: float = 0.0  # this process's CPU seconds (user + system) during the fan-out
    rss_growth: int | None = None
    traced_peak: int | None = None


async def pipestatus_run(base: str, work: Workload, n: int, *, traced: bool = False) -> Sample:
    # The Client's own session, exactly as users get it; the request count is the floor's,
    # which check_same_requests and measure_v5_requests verify by tracing.
    async with Client(max_concurrency=CONCURRENCY) as client:
        targets = work.targets(client, base, n)
        window = RssWindow()
        if traced:
            tracemalloc.start()
        cpu0, started = time.process_time(), time.perf_counter()
        results = await client.poll(targets)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu0
        peak = tracemalloc.get_traced_memory()[1] if traced else None
        if traced:
            tracemalloc.stop()
        growth = window.growth()
        errors = [r for r in results.values() if isinstance(r, PipestatusError)]
        if len(results) != n or errors:
            raise RuntimeError(
                f"pipestatus {work.name} {n}: {len(errors)} errors, e.g. {errors[:1]}"
            )
        del results
    return Sample(seconds, len(work.requests(base, n)), cpu, growth, peak)


async def floor_run(base: str, work: Workload, n: int, *, traced: bool = False) -> Sample:
    requests = work.requests(base, n)
    semaphore = asyncio.Semaphore(CONCURRENCY)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

        async def one(req: Req) -> Any:
            async with (
                semaphore,
                session.request(req.method, req.url, headers=req.headers, data=req.body) as resp,
            ):
                body = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"floor: {req.method} {req.url} -> {resp.status}")
                return json.loads(body)

        window = RssWindow()
        if traced:
            tracemalloc.start()
        cpu0, started = time.process_time(), time.perf_counter()
        payloads = await asyncio.gather(*(one(req) for req in requests))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu0
        peak = tracemalloc.get_traced_memory()[1] if traced else None
        if traced:
            tracemalloc.stop()
        growth = window.growth()
        del payloads
    return Sample(seconds, len(requests), cpu, growth, peak)


class RequestCounter:
    """Counts requests sent and answers per URL path, through an aiohttp ``TraceConfig``."""

    def __init__(self) -> None:
        self.started = 0
        self.answered: dict[str, int] = {}
        self.methods: set[tuple[str, str]] = set()
        self.on_answer: Callable[[str, int], None] | None = None

    def config(self) -> aiohttp.TraceConfig:
        config = aiohttp.TraceConfig()
        config.on_request_start.append(self._start)
        config.on_request_end.append(self._end)
        return config

    async def _start(
        self, _s: aiohttp.ClientSession, _c: SimpleNamespace, p: aiohttp.TraceRequestStartParams
    ) -> None:
        self.started += 1
        self.methods.add((p.method, str(p.url)))

    async def _end(
        self, _s: aiohttp.ClientSession, _c: SimpleNamespace, p: aiohttp.TraceRequestEndParams
    ) -> None:
        path = p.url.raw_path
        count = self.answered[path] = self.answered.get(path, 0) + 1
        if self.on_answer is not None:
            self.on_answer(path, count)


# --- the measurements ----------------------------------------------------------------------------


@dataclass
class PollRow:
    work: Workload
    n: int
    ps: list[Sample] = field(default_factory=list)
    floor: list[Sample] = field(default_factory=list)
    ps_traced: int | None = None
    floor_traced: int | None = None

    @staticmethod
    def median(samples: Sequence[Sample]) -> float:
        return statistics.median(s.seconds for s in samples)

    @staticmethod
    def cpu_per_request(samples: Sequence[Sample]) -> float:
        """Median client CPU microseconds per HTTP request."""
        return statistics.median(s.cpu / s.requests for s in samples) * 1e6

    @staticmethod
    def median_rss(samples: Sequence[Sample]) -> int | None:
        values = [s.rss_growth for s in samples if s.rss_growth is not None]
        return int(statistics.median(values)) if values else None

    @property
    def ratio(self) -> float:
        """Wall-time ratio of the medians (the goal's measure)."""
        return self.median(self.ps) / self.median(self.floor)

    @property
    def cpu_ratio(self) -> float:
        return self.cpu_per_request(self.ps) / self.cpu_per_request(self.floor)

    def ratios(self) -> list[float]:
        return [p.seconds / f.seconds for p, f in zip(self.ps, self.floor, strict=True)]


def _mb(value: int | float | None) -> str:
    return "n/a" if value is None else f"{value / MB:.1f}"


async def measure_poll(base: str, work: Workload, n: int, reps: int, traced: bool) -> PollRow:
    row = PollRow(work, n)
    sides: list[tuple[Callable[..., Awaitable[Sample]], list[Sample]]] = [
        (pipestatus_run, row.ps),
        (floor_run, row.floor),
    ]
    for rep in range(reps):
        for run, samples in sides if rep % 2 == 0 else sides[::-1]:
            gc.collect()
            samples.append(await run(base, work, n))
    if traced:
        gc.collect()
        row.ps_traced = (await pipestatus_run(base, work, n, traced=True)).traced_peak
        gc.collect()
        row.floor_traced = (await floor_run(base, work, n, traced=True)).traced_peak
    print(
        f"  {work.name} x {n:,}: {row.ps[0].requests:,} requests per poll on each side"
        f" (floor {row.floor[0].requests:,}); {reps} rep(s) each, alternating"
    )
    for name, samples, peak in (
        ("pipestatus", row.ps, row.ps_traced),
        ("floor", row.floor, row.floor_traced),
    ):
        med = row.median(samples)
        every = " ".join(f"{s.seconds:.2f}" for s in samples)
        memory = f"tracemalloc peak {_mb(peak)} MB, " if traced else ""
        print(
            f"    {name:<10} median {med:6.2f} s [{every}]  {samples[0].requests / med:6.0f} req/s"
            f"  {n / med:6.0f} targets/s  client CPU {row.cpu_per_request(samples):5.0f} us/req"
            f"  ({memory}RSS growth {_mb(row.median_rss(samples))} MB)"
        )
    per_rep = " ".join(f"{r:.2f}" for r in row.ratios())
    print(
        f"    ratio pipestatus/floor: wall {row.ratio:.2f} (per rep: {per_rep}),"
        f" client CPU per request {row.cpu_ratio:.2f}"
    )
    return row


async def check_same_requests(base: str) -> str:
    """Trace which requests pipestatus sends for a small poll; compare with the floor's list."""
    lines = []
    for work, n in ((MIX, 200), (V5, 300)):
        counter = RequestCounter()
        async with (
            aiohttp.ClientSession(trace_configs=[counter.config()]) as session,
            Client(max_concurrency=CONCURRENCY, session=session) as client,
        ):
            await client.poll(work.targets(client, base, n))
        expected = {(r.method, r.url) for r in work.requests(base, n)}
        if counter.methods != expected or counter.started != len(work.requests(base, n)):
            raise RuntimeError(
                f"{work.name}: pipestatus sent {sorted(counter.methods - expected)[:3]}, "
                f"the floor {sorted(expected - counter.methods)[:3]}"
            )
        lines.append(f"{work.name}: the same {counter.started} requests as the floor")
    return "; ".join(lines)


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
    gc.collect()
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
            f"    tracemalloc peak {_mb(watch.traced_peak)} MB; current after round 1"
            f" {_mb(watch.traced_round1)} MB, after round 2 {_mb(watch.traced_round2)} MB,"
            f" after aclose (client still open) {_mb(watch.traced_end)} MB"
        )
    label = "(inflated by tracemalloc's own bookkeeping)" if watch.traced else ""
    print(
        f"    RSS growth, peak while watching over RSS before: {_mb(watch.rss_growth)} MB {label}"
    )


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


async def bench(base: str, quick: bool) -> None:
    # (targets, repetitions) per workload; tracemalloc runs and the traced watch: full run only.
    mix_plan = [(1_000, 3), (10_000, 3)] if quick else [(1_000, 5), (10_000, 3)]
    v5_plan = [(1_000, 3), (10_000, 3)] if quick else [(1_000, 7), (10_000, 5)]
    traced = not quick
    watch_cap = 30.0 if quick else 60.0
    print(
        f"server {base} (separate process); {os.cpu_count()} CPUs;"
        f" mode {'quick' if quick else 'full'}"
    )
    print(await check_same_requests(base))

    # The untraced watch runs first, so that its RSS growth is not hidden by memory that earlier
    # runs freed inside the process (freed memory is reused before the RSS grows).
    print(f"\n== watch: {MIX_MAX:,} mix targets, interval 2 s, until each is answered twice ==")
    watches = [await measure_watch(base, MIX_MAX, interval=2.0, cap=watch_cap, traced=False)]
    print_watch(watches[0], watch_cap)
    if traced:
        watches.append(await measure_watch(base, MIX_MAX, interval=2.0, cap=90.0, traced=True))
        print_watch(watches[1], 90.0)

    for work in (MIX, V5):  # warm up
        await floor_run(base, work, 1000)
        await pipestatus_run(base, work, 1000)
    print(f"\n== poll, Client(max_concurrency={CONCURRENCY}).poll vs raw aiohttp floor ==")
    rows = [await measure_poll(base, MIX, n, reps, traced) for n, reps in mix_plan]
    rows += [await measure_poll(base, V5, n, reps, traced) for n, reps in v5_plan]

    print("\n== v5 batching: HTTP requests for one poll of 10,000 v5 targets ==")
    v5_sent, v5_expected, v5_runs = await measure_v5_requests(base, V5_MAX)
    print(
        f"  {v5_sent} requests sent (traced with a TraceConfig); ceil(10000 / BATCH_SIZE"
        f" {BATCH_SIZE}) = {v5_expected}; {v5_runs:,} runs returned"
    )

    print("\n== summary (medians; compare ratios, not absolute times: shared 2-core machine) ==")
    head = (
        f"{'measurement':<28} {'pipestatus':>10} {'floor':>8} {'wall ratio':>10}"
        f" {'CPU/req ratio':>13} {'goal':>9}  ok"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        print(
            f"{f'poll {row.work.name} {row.n:,}':<28} {row.median(row.ps):>8.2f} s"
            f" {row.median(row.floor):>6.2f} s {row.ratio:>10.2f} {row.cpu_ratio:>13.2f}"
            f" {f'<= {GOAL_RATIO}':>9}  {_ok(row.ratio <= GOAL_RATIO)}"
        )
    if traced:
        for row in rows:
            print(
                f"{f'  tracemalloc peak {row.n:,} {row.work.name.split()[0]}':<28}"
                f" {_mb(row.ps_traced):>7} MB {_mb(row.floor_traced):>5} MB"
            )
    for watch in watches:
        measure, value = (
            ("traced peak", watch.traced_peak) if watch.traced else ("RSS growth", watch.rss_growth)
        )
        good = value is not None and value < GOAL_WATCH_MB * MB and watch.complete
        print(
            f"{f'watch {watch.n:,}: {measure}':<28} {_mb(value):>7} MB {'':>8} {'':>10}"
            f" {'':>13} {f'< {GOAL_WATCH_MB:g} MB':>9}  {_ok(good)}"
        )
    print(
        f"{'v5 10,000: HTTP requests':<28} {v5_sent:>10} {'':>8} {'':>10} {'':>13}"
        f" {f'<= {GOAL_V5_REQUESTS}':>9}  {_ok(v5_sent <= GOAL_V5_REQUESTS)}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="fewer repetitions, no tracemalloc runs (< 60 s)"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    server = Server()
    try:
        base = server.start()
        asyncio.run(bench(base, args.quick))
    finally:
        server.close()
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
