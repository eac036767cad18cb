"""Signing benchmark: the cost of Huawei AK/SK signing per request, beside the unsigned request.

Run it from the repository root::

    python benchmarks/signing.py            # about half a minute
    python benchmarks/signing.py --quick    # a few seconds

Two measurements, in one run, each side by side with its baseline:

1. **Per request, in process** (no network): the time one ``Auth.apply`` takes for the v4
   latest-jobs request and for a v5 batch POST (a 100-ID JSON body, hashed into the signature):
   ``HeaderToken`` (a static token: one header added) against ``AKSKSigner`` (a bound
   ``HuaweiAKSK``: canonical request, SHA-256 of it and of the body, HMAC-SHA256). Median of
   several repetitions of a few thousand calls, in microseconds; the difference is what signing
   adds to each request.
2. **Over HTTP**: ``client.poll`` of N v4 targets (one GET each) against ``python -m
   pipestatus.testing`` (started in a separate process, terminated at the end), once with
   ``token=`` and once with ``credentials=HuaweiAKSK(...)``; the sides alternate, each
   repetition on a fresh client (no 304s). Per side: median wall time and this process's CPU
   time per request (``time.process_time``), then the ratios signed/token. The server verifies
   every signature (recomputing it), so its own CPU per request is printed beside them: it is
   the bottleneck of the wall times (see PITFALLS.md), and the client-CPU ratio is the fair one.

Exit status 0; 1 with a traceback if a run fails (the server does not start, a poll errors).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from pipestatus import Client, Run
from pipestatus._sansio import Request
from pipestatus._transport import USER_AGENT, Transport
from pipestatus.auth import Auth, Binding, HuaweiAKSK, token_auth
from pipestatus.http import AiohttpDriver
from pipestatus.vendors import REGISTRY
from pipestatus.vendors._huawei import DEMO_AK
from pipestatus.vendors.codearts_repo import CodeArtsRepo

TOKEN = "bench-token"  # the simulated server's token, also the SK of its demo access key
HEADER = REGISTRY["codearts_repo"].header


def _requests(base: str) -> dict[str, Request]:
    body = json.dumps([f"{i:032x}" for i in range(100)]).encode()
    common = {"Accept": "application/json", "User-Agent": USER_AGENT}
    return {
        "v4 latest-jobs GET": Request(
            method="GET",
            url=f"{base}/v4/repositories/2111976239/pipelines/6/latest-jobs",
            headers=common,
        ),
        "v5 batch POST (100 IDs)": Request(
            method="POST",
            url=f"{base}/v5/0123456789abcdef0123456789abcdef/api/pipelines/status",
            headers={**common, "Content-Type": "application/json"},
            body=body,
        ),
    }


async def _per_call(auth: Auth, request: Request, sender: Transport, calls: int) -> float:
    """Microseconds per ``auth.apply(request)``."""
    started = time.perf_counter()
    for _ in range(calls):
        await auth.apply(request, sender)
    return (time.perf_counter() - started) / calls * 1e6


async def in_process(repeats: int, calls: int) -> None:
    sender = Transport(AiohttpDriver(timeout=10.0, max_concurrency=64, max_per_host=None))
    plain = token_auth(HEADER, TOKEN)
    signed = HuaweiAKSK(DEMO_AK, TOKEN).bind(Binding(token_header=HEADER, project_id="p"))
    print("1. Auth.apply per request, in process (microseconds, median)")
    print(f"   {'request':<26} {'token':>9} {'AK/SK':>9} {'added':>9} {'ratio':>7}")
    for name, request in _requests("https://codehub-ext.cn-north-4.myhuaweicloud.com").items():
        token_us = statistics.median(
            [await _per_call(plain, request, sender, calls) for _ in range(repeats)]
        )
        signed_us = statistics.median(
            [await _per_call(signed, request, sender, calls) for _ in range(repeats)]
        )
        print(
            f"   {name:<26} {token_us:>9.2f} {signed_us:>9.2f} {signed_us - token_us:>9.2f} "
            f"{signed_us / token_us:>6.1f}x"
        )


class Server:
    """``python -m pipestatus.testing --repo N`` in another process."""

    def __init__(self, pipelines: int) -> None:
        self.pipelines = pipelines
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 60.0) -> str:
        cmd = [sys.executable, "-m", "pipestatus.testing", "--repo", str(self.pipelines)]
        cmd += ["--token", TOKEN, "--port", "0"]
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().strip() if ready else ""
        if not line.startswith("http"):
            raise RuntimeError(f"the server did not print its URL within {timeout:g} s: {line!r}")
        return line

    def cpu(self) -> float:
        """The server's CPU seconds so far (Linux ``/proc``), or NaN."""
        if self.proc is None:
            return float("nan")
        try:
            with open(f"/proc/{self.proc.pid}/stat", encoding="ascii") as stream:
                fields = stream.read().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

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


async def _poll(url: str, make: Callable[[Client], CodeArtsRepo], n: int) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of one poll of ``n`` v4 targets."""
    async with Client(conditional=False, retries=0) as client:
        repo = make(client)
        targets = [repo.target(1000, i) for i in range(1, n + 1)]
        cpu, wall = time.process_time(), time.perf_counter()
        results = await client.poll(targets)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    bad = [r for r in results.values() if not isinstance(r, Run)]
    if bad:
        raise RuntimeError(f"{len(bad)} of {n} polls failed, first: {bad[0]!r}")
    return wall, cpu


async def over_http(url: str, server: Server, n: int, repeats: int) -> None:
    sides: dict[str, Callable[[Client], CodeArtsRepo]] = {
        "token": lambda c: c.codearts_repo(url, token=TOKEN),
        "AK/SK": lambda c: c.codearts_repo(url, credentials=HuaweiAKSK(DEMO_AK, TOKEN)),
    }
    walls: dict[str, list[float]] = {name: [] for name in sides}
    cpus: dict[str, list[float]] = {name: [] for name in sides}
    served: dict[str, list[float]] = {name: [] for name in sides}
    await _poll(url, sides["token"], n)  # warm-up: connections, imports, caches
    for _ in range(repeats):
        for name, make in sides.items():
            before = server.cpu()
            wall, cpu = await _poll(url, make, n)
            walls[name].append(wall)
            cpus[name].append(cpu / n * 1e6)
            served[name].append((server.cpu() - before) / n * 1e6)
    print(f"\n2. client.poll of {n} v4 targets over HTTP, {repeats} repetitions (median)")
    print(f"   {'side':<7} {'wall s':>8} {'client CPU us/req':>18} {'server CPU us/req':>18}")
    for name in sides:
        print(
            f"   {name:<7} {statistics.median(walls[name]):>8.3f} "
            f"{statistics.median(cpus[name]):>18.1f} {statistics.median(served[name]):>18.1f}"
        )
    wall_ratio = statistics.median(walls["AK/SK"]) / statistics.median(walls["token"])
    cpu_ratio = statistics.median(cpus["AK/SK"]) / statistics.median(cpus["token"])
    added = statistics.median(cpus["AK/SK"]) - statistics.median(cpus["token"])
    print(
        f"   AK/SK / token: wall {wall_ratio:.2f}x, client CPU {cpu_ratio:.2f}x "
        f"(+{added:.1f} us per request)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and targets")
    args = parser.parse_args()
    repeats, calls, n = (3, 2000, 200) if args.quick else (7, 10000, 1000)
    asyncio.run(in_process(repeats, calls))
    server = Server(n)
    try:
        url = server.start()
        asyncio.run(over_http(url, server, n, repeats))
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
