"""`pipestatus serve` with 1,000 pipelines: memory, CPU per refresh, and the time a change
takes to reach the page.

Run it from the repository root::

    python benchmarks/serve.py            # about two minutes
    python benchmarks/serve.py --quick    # under a minute

This process runs the simulated vendor server (``pipestatus.testing``) with the time-driven demo
fleet, 333 pipelines of each of the three vendors (runs start, move stage by stage and finish all
the time, at ``--speed``), plus one pipeline, ``flip``, whose run this script changes. The real
command, ``python -m pipestatus serve``, runs in a separate process on that configuration
(interval ``--interval`` seconds), so its memory and CPU are its own, read from ``/proc``
(Linux). Then, printing as it goes:

1. **First read**: seconds from start until ``/api/v1/runs`` has no pipeline left ``reading``.
2. **Steady state** over a window: the service's CPU seconds (user + system, ``/proc/PID/stat``)
   and its requests (``pipestatus_requests_total`` from its own ``/metrics``). A *refresh* is one
   read of every pipeline; the one-request vendors (CodeArts Repo v4 and Yunxiao) send one
   request per pipeline read, so refreshes = their requests / their pipelines, and CPU per
   refresh = CPU seconds / refreshes (the batched v5 reads ride along in the same seconds). Its
   RSS at the end and its peak (``VmHWM``).
3. **Change to page**: a page's event stream (``/events``) is open; the ``flip`` run moves to a
   new stage, and the time until the page's stream carries that row is measured, several times.
   A running run is polled every interval, so the figure is bounded by the interval plus the
   service's own work: it is reported beside the interval.
4. **Faces**: the time and size of ``/`` (the whole page for 1,000 pipelines), ``/metrics`` and
   ``/api/v1/runs``, median of five.

The machine has 2 shared cores: the simulated server, this script and the service compete for
them, so absolute CPU figures drift between runs; the simulator's own CPU per request (about
200 us) is part of the same machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import attrs

from pipestatus.cli.demo import demo_config
from pipestatus.testing import SimJob, SimRun, SimStage, VendorServer, make_fleet
from pipestatus.vendors import REGISTRY

TOKEN = "bench-serve-token"
ENV = "PIPESTATUS_DEMO_TOKEN"
PER_VENDOR = 333
FLIP = list(REGISTRY.values())[-1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@attrs.define
class Flip:
    """The run source of ``flip``: it notes when the server first answers each new run."""

    run: SimRun
    answered: SimRun | None = None
    answered_at: float = 0.0

    def __call__(self, elapsed: float) -> SimRun:
        if self.answered is not self.run:
            self.answered, self.answered_at = self.run, time.perf_counter()
        return self.run


def running(step: int) -> SimRun:
    """Run 1 at stage ``stage-{step}``, the stages before it done (each step is a change: a
    stage's status moved)."""
    stages = [SimStage(f"stage-{n}", [SimJob("step", "success")]) for n in range(step)]
    stages.append(SimStage(f"stage-{step}", [SimJob("step", "running")]))
    return SimRun(1, "running", stages)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory(pid: int) -> dict[str, float]:
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024
    return found


def requests_by_vendor(text: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("pipestatus_requests_total{"):
            labels, value = line.rsplit(" ", 1)
            vendor = labels.split('vendor="', 1)[1].split('"', 1)[0]
            counts[vendor] = counts.get(vendor, 0.0) + float(value)
    return counts


async def timed(get: Callable[[], Awaitable[bytes]], times: int = 5) -> tuple[float, int]:
    spent, size = [], 0
    for _ in range(times):
        started = time.perf_counter()
        size = len(await get())
        spent.append(time.perf_counter() - started)
    return statistics.median(spent), size


async def main(quick: bool, interval: float, speed: float) -> None:
    window = 10.0 if quick else 40.0
    flips = 5 if quick else 12
    async with VendorServer(token=TOKEN) as server:
        make_fleet(server, PER_VENDOR, speed=speed)
        flip = Flip(running(0))
        server.add_pipeline(FLIP.key, FLIP.demo.ids(PER_VENDOR + 1), flip, **FLIP.demo.options)
        ids = dict(zip(FLIP.id_names, FLIP.demo.ids(PER_VENDOR + 1), strict=True))
        extra = "\n[[pipelines]]\n" + f'account = "{FLIP.key}"\nname = "flip"\n'
        extra += "".join(f"{key} = {json.dumps(value)}\n" for key, value in ids.items())
        with tempfile.TemporaryDirectory() as folder:
            config = Path(folder) / "pipestatus.toml"
            config.write_text(demo_config(server.url, PER_VENDOR) + extra, encoding="utf-8")
            await bench(server, config, interval, window, flips, flip)


async def bench(
    server: VendorServer, config: Path, interval: float, window: float, flips: int, flip: Flip
) -> None:
    pipelines = PER_VENDOR * len(REGISTRY) + 1
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pipestatus",
        "serve",
        "-c",
        str(config),
        "--listen",
        "127.0.0.1:0",
        "--interval",
        str(interval),
        "--heartbeat",
        "5",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, ENV: TOKEN},
    )
    try:
        assert proc.stdout is not None
        started = time.perf_counter()
        async with asyncio.timeout(60):
            line = (await proc.stdout.readline()).decode().strip()
        url = line.removeprefix("serving ").rstrip("/")
        print(f"service: {url} (pid {proc.pid}), {pipelines} pipelines, interval {interval:g} s")
        async with aiohttp.ClientSession() as http:

            async def get(path: str) -> bytes:
                async with http.get(url + path) as response:
                    return await response.read()

            while True:
                document = json.loads(await get("/api/v1/runs"))
                waiting = [p for p in document["pipelines"] if p["status"] is None]
                if not waiting and not any(p["error"] for p in document["pipelines"]):
                    break
                await asyncio.sleep(0.2)
            print(f"1. first read of every pipeline: {time.perf_counter() - started:.1f} s")

            cpu0, requests0 = (
                cpu_seconds(proc.pid),
                requests_by_vendor((await get("/metrics")).decode()),
            )
            await asyncio.sleep(window)
            cpu1, requests1 = (
                cpu_seconds(proc.pid),
                requests_by_vendor((await get("/metrics")).decode()),
            )
            one_request = [spec.key for spec in REGISTRY.values() if not spec.adapter.batches]
            sent = sum(requests1.get(k, 0) - requests0.get(k, 0) for k in one_request)
            refreshes = sent / (PER_VENDOR * len(one_request))
            cpu = cpu1 - cpu0
            mem = memory(proc.pid)
            all_sent = sum(requests1.values()) - sum(requests0.values())
            print(
                f"2. steady {window:g} s: {cpu:.2f} CPU s ({100 * cpu / window:.0f} % of a core), "
                f"{all_sent:.0f} requests, {refreshes:.1f} refreshes of every pipeline -> "
                f"{cpu / refreshes * 1000:.0f} ms CPU per refresh; "
                f"RSS {mem['VmRSS']:.0f} MB (peak {mem['VmHWM']:.0f} MB)"
                if refreshes
                else "2. no refresh in the window"
            )

            delays, own = await change_to_page(http, url, flip, flips, interval)
            print(
                f"3. change to page ({len(delays)} changes): median {statistics.median(delays):.2f}"
                f" s, max {max(delays):.2f} s (poll interval {interval:g} s); from the vendor's "
                f"answer: median {statistics.median(own) * 1000:.0f} ms, "
                f"max {max(own) * 1000:.0f} ms"
            )
            faces = {}
            for path in ("/", "/metrics", "/api/v1/runs"):
                faces[path] = await timed(lambda path=path: get(path))
            print(
                "4. faces: "
                + ", ".join(
                    f"{path} {seconds * 1000:.0f} ms / {size / 1024:.0f} KiB"
                    for path, (seconds, size) in faces.items()
                )
            )
    finally:
        proc.terminate()
        await proc.wait()


async def change_to_page(
    http: aiohttp.ClientSession, url: str, flip: Flip, flips: int, interval: float
) -> tuple[list[float], list[float]]:
    """Seconds from each change on the server to the page's stream, and from the server's
    first answer with it (the service's own part: read, board, event)."""
    delays: list[float] = []
    own: list[float] = []
    rng = random.Random(7)
    async with http.get(url + "/events", timeout=aiohttp.ClientTimeout(total=None)) as stream:

        async def row_with(stage: str) -> None:
            kind = ""
            while True:
                line = (await stream.content.readline()).decode().rstrip("\n")
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "row":
                    data: dict[str, Any] = json.loads(line[6:])
                    if data["name"] == "flip" and data["stage"] == stage:
                        return

        await asyncio.wait_for(row_with("stage-0"), 60)  # the snapshot, or its first read
        for number in range(1, flips + 1):
            await asyncio.sleep(rng.uniform(0, interval))  # not in step with the poll
            stage = f"stage-{number}"
            flip.run = running(number)
            began = time.perf_counter()
            await asyncio.wait_for(row_with(stage), 60)
            arrived = time.perf_counter()
            delays.append(arrived - began)
            own.append(arrived - flip.answered_at)
    return delays, own


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a shorter window, fewer changes")
    parser.add_argument("--interval", type=float, default=5.0, help="the service's poll interval")
    parser.add_argument("--speed", type=float, default=2.0, help="the fleet's time multiplier")
    options = parser.parse_args()
    asyncio.run(main(options.quick, options.interval, options.speed))
