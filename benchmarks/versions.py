"""Two checkouts of pipestatus side by side: ``client.poll`` of the same targets on the same
cheap server, the sides alternating, so a change can show it made nothing slower.

Run it from the repository root, naming the other checkout (a ``git worktree`` of the commit
to compare with)::

    git worktree add /tmp/old b745a84
    python benchmarks/versions.py --old /tmp/old              # 1,000 targets, 7 rounds
    python benchmarks/versions.py --old /tmp/old --targets 10000 --repeat 3

**The server** is ``benchmarks/_server.py`` in its own process (answers prepared once from this
checkout's simulator; its CPU per request is printed, far below either side's). **Each side** is
a fresh interpreter with ``PYTHONPATH`` set to its checkout: it warms up with a poll of 100
targets on a client of its own (imports, first objects), then opens a fresh ``Client()`` with
the defaults and measures one poll of every target (connections opened, every answer decoded);
the rows marked ``304`` measure that client's second poll instead, whose requests are
conditional and whose answers are ``304 Not Modified``. Each side reports its wall time and
its process CPU time for the measured poll. Only the public API of
0.1 is used (``client.codearts_repo(...)``, ``client.yunxiao(...)``, ``client.poll``), so any
version runs it. Printed per workload: each side's median wall time and client CPU per request
(each round in brackets), and the ratio new/old (below 1: the new is faster). Exit status 0;
1 if a side fails or reads a target it should not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from _server import REPO_ID, BenchServer

TOKEN = "bench-token"
HERE = Path(__file__).resolve().parent.parent

CHILD = """
import asyncio, json, sys, time
from pipestatus import Client, Run

def targets_of(client, url, vendor, n):
    if vendor == "v4":
        repo = client.codearts_repo(url, token=TOKEN)
        return [repo.target(REPO_ID, i) for i in range(1, n + 1)]
    flow = client.yunxiao(url, token=TOKEN)
    return [flow.target(str(i)) for i in range(1, n + 1)]

async def main(url, vendor, n, again):
    async with Client() as client:  # warm up: imports, the first objects of every kind
        await client.poll(targets_of(client, url, vendor, min(n, 100)))
    async with Client() as client:
        targets = targets_of(client, url, vendor, n)
        if again:
            await client.poll(targets)  # measure the second poll: conditional, 304s
        cpu, wall = time.process_time(), time.perf_counter()
        results = await client.poll(targets)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    bad = sum(not isinstance(r, Run) for r in results.values())
    print(json.dumps({"cpu": cpu, "wall": wall, "bad": bad}))

TOKEN, REPO_ID = sys.argv[4], sys.argv[5]
asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[6] == "again"))
"""


def side(checkout: Path, url: str, vendor: str, n: int, again: bool) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", CHILD, url, vendor, str(n), TOKEN, str(REPO_ID), "again" * again],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{checkout}: {done.stderr.strip().splitlines()[-1:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--old", type=Path, required=True, help="the checkout to compare with")
    parser.add_argument("--new", type=Path, default=HERE, help="default: this checkout")
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7, help="rounds per side")
    args = parser.parse_args()
    n = args.targets
    server = BenchServer(token=TOKEN, repo=n, yunxiao=n, v5=1)
    url = server.start()
    failed = False
    try:
        print(f"old {args.old}\nnew {args.new}\n{n} targets, {args.repeat} rounds, alternating")
        for vendor, again in [(v, a) for a in (False, True) for v in ("v4", "yunxiao")]:
            label = f"{vendor}{' 304' if again else ''}"
            runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
            cpu0, requests0 = asyncio.run(server.stats())
            for _ in range(args.repeat):
                for name in ("old", "new"):
                    result = side(getattr(args, name), url, vendor, n, again)
                    failed |= result["bad"] > 0
                    runs[name].append(result)
            cpu1, requests1 = asyncio.run(server.stats())
            served = (cpu1 - cpu0) / max(1, requests1 - requests0) * 1e6
            medians = {}
            for name, results in runs.items():
                walls = [r["wall"] for r in results]
                cpus = [r["cpu"] / n * 1e6 for r in results]
                medians[name] = (statistics.median(walls), statistics.median(cpus))
                shown = " ".join(f"{w:.2f}" for w in walls)
                print(
                    f"  {label:11} {name}: wall {medians[name][0]:.3f} s [{shown}], "
                    f"client CPU {medians[name][1]:.0f} us/request"
                )
            wall_ratio = medians["new"][0] / medians["old"][0]
            cpu_ratio = medians["new"][1] / medians["old"][1]
            print(
                f"  {label:11} new/old: wall {wall_ratio:.2f}, client CPU {cpu_ratio:.2f}; "
                f"server CPU {served:.0f} us/request"
            )
    finally:
        server.close()
    if failed:
        print("a side read a target as an error")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
