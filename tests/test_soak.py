"""The chaos soak: 500 pipelines of three vendors watched to their end through 30 % faults.

Every pipeline's run moves pending -> running -> a final status known in advance, while the
simulated server damages about a third of the answers (5xx with HTML bodies, 429 with
``Retry-After``, resets mid-body, hangs, truncated and malformed JSON, unknown status words,
slow trickles, and a hostile server's: huge arrays of wrong items, validators no client can
send back, control characters and lone surrogates in every string, answers that are not HTTP,
cycling pages). The watch must report each final status, correctly, raise nothing, and leave no
task, session, warning or memory behind. Run it alone with ``pytest -m soak -s`` to see the
numbers it prints.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import random
import time
import tracemalloc

import pytest

from pipestatus import Client, Run, Status, Target
from pipestatus.errors import PipestatusError
from pipestatus.model import ChangeKind
from pipestatus.testing import (
    CHAOS_KINDS,
    V4_STATUS,
    V5_RUN_STATUS,
    YUNXIAO_STATUS,
    SimJob,
    SimRun,
    SimStage,
    VendorServer,
)

pytestmark = pytest.mark.soak

TOKEN = "soak-secret-token-0123456789"
SEED = 20250517
#: Pipelines per vendor (500 in all).
COUNTS = {"codearts_repo": 170, "codearts_pipeline": 165, "yunxiao": 165}
CHAOS_RATE = 0.3
#: A chaos hang holds a request this long; the client's attempt timeout is shorter.
CHAOS_HANG = 1.0
CLIENT_TIMEOUT = 0.75
INTERVAL = 0.2
#: A guard against a hang, not a performance assertion (the soak takes ~15-30 s here).
OVERALL_TIMEOUT = 90.0
#: Traced memory still allocated after the watch, the client and the server are gone, minus
#: what was allocated before: 500 pipelines of state are well under 1 MB, so 20 MB catches any
#: leak that grows with the requests served (thousands) without flaking on allocator noise.
MAX_MEMORY_GROWTH = 20 * 1024 * 1024
FINALS = ("success", "failed", "canceled", "skipped", "timedout")
#: What the client reads for each canonical final word, per vendor (v5 has no timeout word).
EXPECTED: dict[str, dict[str, tuple[Status, str]]] = {
    "codearts_repo": {word: (Status(word), V4_STATUS[word]) for word in FINALS},
    "codearts_pipeline": {
        word: (Status.FAILED if word == "timedout" else Status(word), V5_RUN_STATUS[word])
        for word in FINALS
    },
    "yunxiao": {word: (Status(word), YUNXIAO_STATUS[word]) for word in FINALS},
}


def _script(rng: random.Random, number: int, final: str) -> list[SimRun]:
    """[pending]*a + [running]*b + [final]: one element per request, the last one repeats."""
    words = ["pending"] * rng.randint(1, 3) + ["running"] * rng.randint(1, 3) + [final]
    return [SimRun(number, word, [SimStage("build", [SimJob("make", word)])]) for word in words]


def _scripted_fleet(server: VendorServer, client: Client) -> dict[Target, tuple[str, Status, str]]:
    """Add every pipeline to ``server``; each target's (vendor, final status, final word)."""
    rng = random.Random(SEED)
    repo = client.codearts_repo(server.url, token=TOKEN)
    pipe = client.codearts_pipeline(server.url, project_id="soak", token=TOKEN)
    flow = client.yunxiao(server.url, token=TOKEN)
    expected: dict[Target, tuple[str, Status, str]] = {}
    for vendor, count in COUNTS.items():
        for index in range(1, count + 1):
            final = FINALS[index % len(FINALS)]
            script = _script(rng, index, final)
            if vendor == "codearts_repo":
                server.add_repo_pipeline(4000, index, script)
                target = repo.target(4000, index)
            elif vendor == "codearts_pipeline":
                server.add_v5_pipeline("soak", f"v5-{index:04d}", script)
                target = pipe.target(f"v5-{index:04d}")
            else:
                server.add_yunxiao_pipeline(str(index), script)
                target = flow.target(index)
            expected[target] = (vendor, *EXPECTED[vendor][final])
    return expected


async def test_soak_500_pipelines_under_chaos() -> None:
    """Watching 500 pipelines through 30 % injected faults reports every final status
    correctly, raises nothing, and leaves no task, open session or memory behind."""
    gc.collect()
    tasks_before = asyncio.all_tasks()
    tracemalloc.start()
    memory_before, _ = tracemalloc.get_traced_memory()
    started = time.monotonic()

    finals: dict[Target, Run] = {}
    wrong: list[tuple[Target, Run]] = []
    kinds: collections.Counter[str] = collections.Counter()
    changes = repeated = 0
    async with VendorServer(token=TOKEN, seed=SEED, record_limit=1_000_000) as server:
        server.chaos(CHAOS_RATE, seed=SEED, hang=CHAOS_HANG)
        client = Client(
            timeout=CLIENT_TIMEOUT, retries=2, backoff_base=0.05, backoff_max=0.5, max_retry_wait=2
        )
        async with client:
            expected = _scripted_fleet(server, client)
            async with asyncio.timeout(OVERALL_TIMEOUT):
                watch = client.watch(expected, interval=INTERVAL, errors=True)
                async with contextlib.aclosing(watch):
                    async for change in watch:
                        changes += 1
                        kinds[change.kind.value] += 1
                        current = change.current
                        if isinstance(current, PipestatusError):
                            assert change.kind is ChangeKind.ERROR
                            continue
                        assert isinstance(current, Run)
                        if not current.status.is_terminal:
                            continue
                        _, status, word = expected[change.target]
                        if (current.status, current.raw_status) != (status, word):
                            wrong.append((change.target, current))
                        if change.target in finals:
                            repeated += 1  # the same final again, after a chaos status word
                        finals.setdefault(change.target, current)
                        if len(finals) == len(expected):
                            break
        wall = time.monotonic() - started
        served = server.request_count
        faults = collections.Counter(r.fault for r in server.requests if r.fault is not None)
        peak = server.peak_in_flight
        # The records are the server's, not the client's: drop them before measuring (aiohttp's
        # bounded middleware cache keeps the last closed server, and its scripts, alive).
        server.reset_stats()
        assert client._transport.closed
    reported = len(finals)
    del server, client, watch, change, current, finals, expected
    # Let the event loop finish the callbacks of the closed server and session.
    for _ in range(3):
        await asyncio.sleep(0)
    gc.collect()
    memory_after, memory_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    growth = memory_after - memory_before
    leftover = asyncio.all_tasks() - tasks_before
    print(
        f"\nsoak: {sum(COUNTS.values())} pipelines, chaos {CHAOS_RATE:.0%}, wall {wall:.1f} s, "
        f"{served} requests served, {sum(faults.values())} faults injected "
        f"({', '.join(f'{k[6:]} {v}' for k, v in sorted(faults.items()))}), "
        f"peak in flight {peak}, {changes} changes ({dict(sorted(kinds.items()))}), "
        f"{repeated} finals reported again after a chaos status word, "
        f"memory growth {growth / 1024:.0f} KiB (traced peak {memory_peak / 2**20:.1f} MiB)"
    )
    assert reported == sum(COUNTS.values())
    assert not wrong, wrong[:5]
    assert not leftover, leftover
    assert sum(faults.values()) > 0
    assert {f"chaos:{kind}" for kind in CHAOS_KINDS} <= set(faults)  # every kind, hostile too
    assert growth < MAX_MEMORY_GROWTH
