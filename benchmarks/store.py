"""Store benchmark: a watch with a state store (SQLite; Redis, publishing to a stream) beside
the in-memory default, in one run: changes per second and client CPU per change.

Run it from the repository root (about a minute; the second line: a few seconds)::

    python benchmarks/store.py               # 300 pipelines, 5,000 changes per watch, 7 reps
    python benchmarks/store.py --pipelines 60 --changes 1000 --repeat 3

**The server**: ``pipestatus.testing.VendorServer`` in its own process (this script with
``--serve N``), N pipelines of the vendors of ``REGISTRY`` in turn (demo IDs and options), each
flipping on every request (run k running, run k success, run k+1 running...): every poll is a
change. Asked on stdin, it reports its CPU time and request count before and after each run.

**The sides**, on the same targets: ``client.watcher(targets, interval=0.001)`` (faster than
a watch can go: it polls flat out; its "cannot keep its pace" warnings are counted, not shown)
taking ``--changes`` changes with ``memory``: no ``store=`` (the baseline); ``sqlite``:
``SQLiteStore(path)``, a new temporary file per run; ``redis``: ``RedisStore(url, prefix=...)``
(default heartbeat) and ``publish=RedisStream(url, stream=...)``, new keys per run, on a
``redis-server`` started here (127.0.0.1, a free port, its own temporary directory, no
persistence; without one the Redis rows are skipped, and said so).

Timed per run, from entering the watcher to the last change taken: wall time and this process's
CPU time (the client, its SQLite thread and redis client; not ``redis-server``). Printed per
side: the medians of wall time, changes per second and client CPU per change, and the ratios
store/memory of the medians; then every repetition in brackets, how busy the client was (CPU /
wall), HTTP requests per change, the server's CPU per request, store commits per change, and the
store's contents after each run. Fair: same targets, server, interval and number of changes,
same process and run; the sides alternate (memory, sqlite, redis, then reversed), each run with
a fresh client; only ``store=`` and ``publish=`` differ.

Exit status 1 if a check fails (never a timed one): each change's ``previous`` is the
``current`` of the change before it for that target (none lost or repeated); the store has one
record per target; what it committed (SQLite: the records' versions; Redis: ``XLEN``) less what
is left in its outbox is exactly the changes taken. Else 0. The machine this was written on has
2 cores shared with other jobs, and the server takes one: compare CPU per change and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from pipestatus import Change, Client, Target
from pipestatus.store import RedisStore, SQLiteStore, Store
from pipestatus.stream import RedisStream
from pipestatus.testing import SimJob, SimRun, SimStage, VendorServer
from pipestatus.vendors import REGISTRY

TOKEN = "bench-token"
VENDORS = tuple(REGISTRY)


def layout(n: int) -> list[tuple[str, tuple[str, ...]]]:
    """The n pipelines: (vendor, IDs), the vendors in turn."""
    vendors = [VENDORS[i % len(VENDORS)] for i in range(n)]
    return [(v, REGISTRY[v].demo.ids(i // len(VENDORS) + 1)) for i, v in enumerate(vendors)]


# --- the server, in its own process ----------------------------------------------------------


def flipping() -> Callable[[float], SimRun]:
    """A run source that changes on every request: run k running, run k success, run k+1..."""
    calls = 0

    def current(_elapsed: float) -> SimRun:
        nonlocal calls
        calls += 1
        status = "running" if calls % 2 else "success"
        return SimRun((calls + 1) // 2, status, [SimStage("build", [SimJob("make", status)])])

    return current


async def serve(n: int) -> None:
    async with VendorServer(token=TOKEN, record=False) as server:
        for vendor, ids in layout(n):
            server.add_pipeline(vendor, ids, flipping(), **REGISTRY[vendor].demo.options)
        loop, done = asyncio.get_running_loop(), asyncio.Event()

        def answer() -> None:  # one stdin line -> "<cpu seconds> <requests>"; EOF stops
            for _line in sys.stdin:
                print(f"{time.process_time()} {server.request_count}", flush=True)
            loop.call_soon_threadsafe(done.set)

        threading.Thread(target=answer, daemon=True).start()
        print(server.url, flush=True)
        await done.wait()


def stop(proc: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(OSError):
        if proc.stdin is not None:
            proc.stdin.close()  # the server stops at EOF
        proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class ServerProcess:
    def __init__(self, n: int) -> None:
        cmd = [sys.executable, __file__, "--serve", str(n)]
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.url = self.proc.stdout.readline().strip() if self.proc.stdout else ""
        if not self.url.startswith("http"):
            stop(self.proc)
            raise RuntimeError(f"the server did not start: {self.url!r}")

    def stats(self) -> tuple[float, int]:
        """The server process's CPU seconds so far and the requests it has answered."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        cpu, requests = self.proc.stdout.readline().split()
        return float(cpu), int(requests)


def start_redis(binary: str, directory: str) -> tuple[subprocess.Popen[bytes], str]:
    """``redis-server`` on 127.0.0.1, a free port, its own directory, no persistence."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", directory]
    args += ["--save", "", "--appendonly", "no", "--loglevel", "warning"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)  # noqa: S603
    deadline = time.monotonic() + 10
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(64).startswith(b"+PONG"):
                return proc, f"redis://127.0.0.1:{port}/0"
        time.sleep(0.01)
    stop(proc)
    raise RuntimeError("redis-server did not answer PING")


# --- one timed watch -----------------------------------------------------------------------------

PACE_WARNINGS = [0]


def drop_pace_warning(record: logging.LogRecord) -> bool:
    """Counts and drops the watch's "cannot keep its pace" warnings (expected here)."""
    if record.getMessage().startswith("the watch cannot keep its"):
        PACE_WARNINGS[0] += 1
        return False
    return True


@dataclass
class Sample:
    seconds: float
    cpu: float
    changes: int
    lost: int
    commits: int
    writes: int
    server_cpu: float = 0.0
    requests: int = 0
    contents: str = ""
    ok: bool = True


async def one_watch(
    url: str, n: int, changes: int, interval: float, store: Store | None, publish: Any
) -> Sample:
    commits = [0, 0]  # the store's commits and writes (one frame more per commit: < 1 µs)
    if store is not None:
        commit = store.commit

        async def counting(writes: Any, **options: Any) -> Any:
            commits[0] += 1
            commits[1] += len(writes)
            return await commit(writes, **options)

        store.commit = counting  # type: ignore[method-assign]
    async with Client() as client:
        targets: list[Target] = []
        for vendor, ids in layout(n):
            source = getattr(client, vendor)(url, token=TOKEN, **REGISTRY[vendor].demo.options)
            targets.append(source.target(*ids))
        last: dict[Target, Change] = {}
        taken = lost = 0
        watcher = client.watcher(targets, interval=interval, store=store, publish=publish)
        gc.collect()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        async with watcher:
            async for change in watcher:
                before = last.get(change.target)
                if (before.current if before is not None else None) != change.previous:
                    lost += 1
                last[change.target] = change
                taken += 1
                if taken == changes:
                    break
            seconds, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return Sample(seconds, cpu, taken, lost, commits[0], commits[1])


async def redis_contents(url: str, prefix: str, stream: str) -> tuple[int, int, int]:
    """(XLEN of the stream, targets in the state hash, changes left in the outbox)."""
    async with RedisStore(url, prefix=prefix, heartbeat=None) as check:
        xlen = int(await check.call("XLEN", stream))
        state = int(await check.call("HLEN", f"{prefix}:state"))
        outbox = int(await check.call("HLEN", f"{prefix}:outbox"))
    return xlen, state, outbox


def run_side(
    side: str, args: argparse.Namespace, server: ServerProcess, ctx: dict[str, Any], rep: int
) -> Sample:
    store: Store | None = None
    publish: RedisStream | None = None
    path = Path(ctx["tmp"]) / f"state-{rep}.db"
    prefix, stream = f"bench{rep}", f"bench{rep}:changes"
    if side == "sqlite":
        store = SQLiteStore(path)
    elif side == "redis":
        store = RedisStore(ctx["redis"], prefix=prefix)
        publish = RedisStream(ctx["redis"], stream=stream)
    cpu0, requests0 = server.stats()
    coro = one_watch(server.url, args.pipelines, args.changes, args.interval, store, publish)
    sample = asyncio.run(coro)
    cpu1, requests1 = server.stats()
    sample.server_cpu, sample.requests = cpu1 - cpu0, requests1 - requests0
    sample.ok = sample.lost == 0 and sample.changes == args.changes
    # Committed - still in the outbox = acknowledged: each change taken, once.
    if side == "sqlite":
        with contextlib.closing(sqlite3.connect(path)) as db:
            targets, committed = db.execute("SELECT count(*), sum(version) FROM targets").fetchone()
            (outbox,) = db.execute("SELECT count(*) FROM outbox").fetchone()
        sample.contents = f"{targets} targets, {committed} writes, {outbox} left in outbox"
        path.unlink()
    elif side == "redis":
        committed, targets, outbox = asyncio.run(redis_contents(ctx["redis"], prefix, stream))
        sample.contents = f"XLEN {committed}, {targets} targets, {outbox} left in outbox"
    else:
        return sample
    sample.ok &= targets == args.pipelines and committed - outbox == sample.changes
    return sample


# --- main ----------------------------------------------------------------------------------------


def cpu_us(ss: list[Sample]) -> float:
    """Median client CPU microseconds per change."""
    return median(s.cpu / s.changes for s in ss) * 1e6


def report(rows: dict[str, list[Sample]], changes: int) -> None:
    print(
        f"\n{'store':<7} {'changes':>7} {'wall s':>7} {'changes/s':>9} {'CPU µs/change':>13}"
        f" {'CPU ratio':>9} {'wall ratio':>10}  (medians; ratios vs memory)"
    )
    base = rows["memory"]
    for side, ss in rows.items():
        wall, rate = median(s.seconds for s in ss), median(s.changes / s.seconds for s in ss)
        print(
            f"{side:<7} {changes:>7} {wall:>7.2f} {rate:>9.0f} {cpu_us(ss):>13.0f}"
            f" {cpu_us(ss) / cpu_us(base):>9.2f} {wall / median(s.seconds for s in base):>10.2f}"
        )
    for side, ss in rows.items():
        commits = median(s.commits / s.changes for s in ss)
        writes = median(s.writes / max(1, s.commits) for s in ss)
        stored = f"; {commits:.3f} store commits/change, {writes:.2f} writes/commit"
        print(
            f"\n  {side}: wall [{' '.join(f'{s.seconds:.2f}' for s in ss)}] s,"
            f" CPU [{' '.join(f'{s.cpu / s.changes * 1e6:.0f}' for s in ss)}] µs/change;"
            f" client busy {median(s.cpu / s.seconds for s in ss):.0%};"
            f" {median(s.requests / s.changes for s in ss):.2f} requests/change, server CPU"
            f" {median(s.server_cpu / s.requests * 1e6 for s in ss):.0f} µs/request"
            + (stored if commits else "")
        )
        for s in ss:
            if s.contents or not s.ok:
                lost = f"; {s.lost} changes not following their previous" if s.lost else ""
                print(f"    {s.contents}{lost}{'' if s.ok else '  FAILED'}")
    busy = median(s.server_cpu / s.seconds for ss in rows.values() for s in ss)
    verdict = "it sets the wall figures" if busy > 0.85 else "not the limit"
    print(f"\nserver busy at most {busy:.0%} of the wall time (median): {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pipelines", type=int, default=300)
    parser.add_argument("--changes", type=int, default=5_000, help="changes per watch")
    parser.add_argument("--repeat", type=int, default=7, help="repetitions per side")
    parser.add_argument("--interval", type=float, default=0.001)
    parser.add_argument("--serve", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(serve(args.serve))
        return 0
    if args.changes < args.pipelines:
        parser.error("--changes must be at least --pipelines (one first change per target)")
    logging.getLogger("pipestatus.client").addFilter(drop_pace_warning)
    started = time.perf_counter()
    binary = shutil.which("redis-server")
    sides = ["memory", "sqlite"] + (["redis"] if binary else [])
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores; {args.pipelines} pipelines"
        f" ({', '.join(VENDORS)} in turn), {args.changes} changes per watch, interval"
        f" {args.interval:g} s, {args.repeat} repetitions per side, alternating"
    )
    if not binary:
        print("redis-server is not on PATH: the Redis rows are skipped")
    rows: dict[str, list[Sample]] = {side: [] for side in sides}
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="pipestatus-bench-"))
        server = ServerProcess(args.pipelines)
        stack.callback(stop, server.proc)
        ctx: dict[str, Any] = {"tmp": tmp}
        if binary:
            redis, ctx["redis"] = start_redis(binary, tmp)
            stack.callback(stop, redis)
        print(
            f"server {server.url} (VendorServer, own process); redis {ctx.get('redis', 'skipped')}"
        )
        warm = argparse.Namespace(**{**vars(args), "changes": 300})
        for side in sides:  # imports, connections, the server's first answers
            run_side(side, warm, server, ctx, -1)
        for rep in range(args.repeat):
            for side in sides if rep % 2 == 0 else sides[::-1]:
                rows[side].append(run_side(side, args, server, ctx, rep))
    report(rows, args.changes)
    ok = all(s.ok for ss in rows.values() for s in ss)
    print(f"pace warnings dropped: {PACE_WARNINGS[0]}; total {time.perf_counter() - started:.0f} s")
    print("all checks passed" if ok else "CHECK FAILED: see the runs marked FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
