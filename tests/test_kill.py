"""Crashes for real: watch processes killed with SIGKILL at seeded random points while the
simulated server moves 50 pipelines through several runs.

* SQLite: one watch process, killed 20 times and started again on the same file: every final
  status of every run is announced exactly once (a change yielded again after a kill has the
  change's own ID, comes first in the next life, and is only ever the one that was in hand).
* Redis: three replica processes and a consumer process (``pipestatus events``); one replica
  and the consumer are killed: every change is published once, the dead replica's pipelines are
  covered again within one heartbeat period, and the consumer's unacknowledged batch is taken
  over by another consumer, so the group loses nothing.

The server's pipelines are moved by the test (a clock of ticks, not of seconds): each tick
moves some pipelines one step (pending, running, a final status, the next run), and a final
status stays until it has been announced, so every final is there to be seen; how many
pipelines move and when the kills strike are drawn from a seeded generator.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import json
import random
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from redisproc import RedisProcess
from watchkit import TOKEN, adapter

from pipestatus import Client
from pipestatus.store import RedisStore
from pipestatus.testing import SimJob, SimRun, SimStage, VendorServer
from pipestatus.vendors import REGISTRY
from pipestatus.watch.codec import decode_event
from pipestatus.watch.keys import target_key

WATCH = str(Path(__file__).parent / "watch_proc.py")
SEED = 20250517
KILLS = 20
RUNS = 3
COUNTS = {"codearts_repo": 17, "codearts_pipeline": 17, "yunxiao": 16}  # 50 pipelines
FINALS = ("success", "failed", "canceled")
INTERVAL = 0.02
TICK = 0.02
#: Steps the fleet takes during each life but the last (it needs 8 * 50 = 400 in all).
STEPS_PER_LIFE = 15
#: Guards against a hang; none is a performance assertion.
GUARD = 60.0


def a_run(number: int, word: str) -> SimRun:
    """Run ``number``; its job is named after it (v4 runs have no number of their own)."""
    return SimRun(number, word, [SimStage("build", [SimJob(f"run{number}", word)])])


class Fleet:
    """The 50 pipelines and where each stands: the steps of its runs, in order."""

    def __init__(self, server: VendorServer, keys: dict[str, str], rng: random.Random) -> None:
        self.rng = rng
        self.steps: dict[str, list[tuple[int, str]]] = {}
        self.position: dict[str, int] = {}
        self.announced: set[tuple[str, int]] = set()
        self.polls: Counter[str] = Counter()
        self.keys = keys  # pipeline name -> target key
        self.budget: int | None = None  # steps left to take (None: no limit)
        for name in keys:
            steps = []
            for number in range(1, RUNS + 1):
                final = rng.choice(FINALS)
                steps += [(number, "pending"), (number, "running"), (number, final)]
            self.steps[name] = steps
            self.position[name] = 0

    def source(self, name: str) -> Callable[[float], SimRun]:
        def current(_: float) -> SimRun:
            self.polls[name] += 1
            return a_run(*self.steps[name][self.position[name]])

        return current

    def final(self, name: str, number: int) -> str:
        return self.steps[name][3 * number - 1][1]

    def tick(self) -> None:
        for name, steps in self.steps.items():
            at = self.position[name]
            if at + 1 >= len(steps) or self.rng.random() > 0.3 or self.budget == 0:
                continue
            number, word = steps[at]
            if word in FINALS and (self.keys[name], number) not in self.announced:
                continue  # a final stays until it has been announced
            self.position[name] = at + 1
            if self.budget is not None:
                self.budget -= 1

    def saw(self, key: str, number: int, status: str | None) -> None:
        if status in FINALS:
            self.announced.add((key, number))

    @property
    def done(self) -> bool:
        return len(self.announced) == len(self.steps) * RUNS


def number_of(value: object) -> int:
    return int(str(value).removeprefix("run"))


async def make_fleet(server: VendorServer, rng: random.Random) -> tuple[Fleet, list[list[Any]]]:
    """Serve the pipelines; the fleet, and the targets as the watch process is told them."""
    names: dict[str, tuple[str, tuple[str, ...]]] = {}
    for vendor, count in COUNTS.items():
        for n in range(1, count + 1):
            ids = REGISTRY[vendor].demo.ids(n)
            names[f"{vendor}/{'/'.join(ids)}"] = (vendor, ids)
    async with Client() as client:
        keys = {
            name: target_key(adapter(client, server, vendor).target(*ids))
            for name, (vendor, ids) in names.items()
        }
    fleet = Fleet(server, keys, rng)
    for name, (vendor, ids) in names.items():
        server.add_pipeline(vendor, ids, fleet.source(name), **REGISTRY[vendor].demo.options)
    return fleet, [[vendor, list(ids)] for vendor, ids in names.values()]


@contextlib.asynccontextmanager
async def ticking(fleet: Fleet) -> AsyncIterator[None]:
    async def run() -> None:
        while True:
            fleet.tick()
            await asyncio.sleep(TICK)

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Proc:
    """A child process whose standard output is read line by line as JSON."""

    def __init__(self, proc: asyncio.subprocess.Process, on_line: Callable[[dict], None]) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self.on_line = on_line
        self.reading = asyncio.Event()  # cleared: its output is left in the pipe
        self.reading.set()
        self.signalled = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls, *args: str, on_line: Callable[[dict], None] = lambda _: None, small: bool = False
    ) -> Proc:
        """Start it; ``small``: its output pipe holds 4 KiB, so it blocks printing soon after
        its output is no longer read."""
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=2**14 if small else 2**16,  # lines of runs read in detail pass 1 KiB
        )
        if small:
            assert proc.stdout is not None
            transport = proc.stdout._transport  # type: ignore[attr-defined]
            pipe = transport.get_extra_info("pipe")
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, 4096)
        return cls(proc, on_line)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            if not self.reading.is_set():
                # Left in the pipe until it is read again, or the process is signalled (the
                # pipe must be drained for the process to be reaped).
                resumed = asyncio.ensure_future(self.reading.wait())
                signalled = asyncio.ensure_future(self.signalled.wait())
                await asyncio.wait([resumed, signalled], return_when=asyncio.FIRST_COMPLETED)
                resumed.cancel()
                signalled.cancel()
            line = await self.proc.stdout.readline()
            if not line:
                return
            record = json.loads(line)
            self.lines.append(record)
            self.on_line(record)

    async def kill(self, sig: int = signal.SIGKILL) -> str:
        """Signal it, wait for it, and return what it wrote on standard error."""
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        self.signalled.set()
        assert self.proc.stderr is not None
        async with asyncio.timeout(GUARD):
            err = await self.proc.stderr.read()
            await self.proc.wait()
            await self.reader
        return err.decode()


async def until(condition: Callable[[], bool], *, guard: float = GUARD) -> None:
    async with asyncio.timeout(guard):
        while not condition():  # noqa: ASYNC110 - state kept by the readers
            await asyncio.sleep(0.01)


async def test_sqlite_watch_killed_20_times_announces_every_final_once(tmp_path: Path) -> None:
    """20 SIGKILLs at seeded random points, restarts on the same file: each final status of
    each of the 150 runs is announced exactly once (repeats are only ever the one change in
    hand at a kill, with its own ID, first in the next life) and nothing is announced as
    first again."""
    rng = random.Random(SEED)
    async with VendorServer(token=TOKEN) as server:
        fleet, targets = await make_fleet(server, rng)
        settings = {
            "url": server.url,
            "token": TOKEN,
            "targets": targets,
            "store": {"sqlite": str(tmp_path / "state.db")},
            "interval": INTERVAL,
        }

        def heard(record: dict[str, Any]) -> None:
            fleet.saw(record["key"], number_of(record["number"]), record["status"])

        lives: list[list[dict[str, Any]]] = []
        busy: list[bool] = []  # whether the fleet was still moving at each kill
        async with ticking(fleet):
            for life in range(KILLS + 1):
                # A few steps a life, so the kills strike all along the runs; then the rest.
                fleet.budget = STEPS_PER_LIFE if life < KILLS else None
                proc = await Proc.start(sys.executable, WATCH, json.dumps(settings), on_line=heard)
                if life < KILLS:
                    if rng.random() < 0.2:  # while starting: opening, loading, first polls
                        await asyncio.sleep(rng.uniform(0.02, 0.4))
                    else:  # right after its quota of changes: one is in hand
                        quota = rng.randint(1, 8)
                        await until(lambda: len(proc.lines) >= quota)  # noqa: B023
                        await asyncio.sleep(rng.uniform(0, 0.01))
                    busy.append(not fleet.done)
                else:
                    await until(lambda: fleet.done)
                err = await proc.kill()
                assert "Traceback" not in err, err
                lives.append(proc.lines)

    changes = [(life, record) for life, lines in enumerate(lives) for record in lines]
    # Every final of every run, once: one ID each, the planned status.
    finals: dict[tuple[str, int], set[tuple[str, str]]] = {}
    for _, record in changes:
        if record["terminal"]:
            key = (record["key"], number_of(record["number"]))
            finals.setdefault(key, set()).add((record["id"], record["status"]))
    expected = {
        (fleet.keys[name], number): fleet.final(name, number)
        for name in fleet.steps
        for number in range(1, RUNS + 1)
    }
    assert set(finals) == set(expected)
    for run, announced in finals.items():
        assert len(announced) == 1, (run, announced)
        ((_, status),) = announced
        assert status == expected[run]
    # A change comes again only after a kill found it in hand (the last line of its life),
    # and first in the next life that says anything.
    seen = Counter(record["id"] for _, record in changes)
    repeated = {change_id for change_id, n in seen.items() if n > 1}
    said = [lines for lines in lives if lines]
    for change_id in repeated:
        places = [
            (i, j)
            for i, lines in enumerate(said)
            for j, r in enumerate(lines)
            if r["id"] == change_id
        ]
        for (life, line), (later, again) in itertools.pairwise(places):
            assert line == len(said[life]) - 1, "a change came again that was not in hand"
            assert (later, again) == (life + 1, 0), "a change in hand came again, but not first"
    assert sum(seen[change_id] - 1 for change_id in repeated) <= KILLS
    assert all(busy), "the fleet was done before the last kill: slow it down"
    # Nothing is announced as first again once anything was announced for it.
    announced_before: set[str] = set()
    for life_lines in lives:
        for record in life_lines:
            if record["kind"] == "first" and record["id"] not in repeated:
                assert record["key"] not in announced_before, record
        announced_before |= {record["key"] for record in life_lines}
    print(
        f"\n{sum(map(len, lives))} changes over {len(lives)} lives, {len(repeated)} yielded "
        f"again after a kill, {sum(fleet.polls.values())} pipeline reads"
    )


HEARTBEAT = 1.5
#: A loaded two-core machine runs four Python processes and a server here.
SLACK = 1.0


async def test_redis_replicas_and_a_consumer_killed_lose_nothing_and_repeat_nothing(
    tmp_path: Path,
) -> None:
    """Three replicas on one Redis and a consumer: one replica killed mid-run, the consumer
    killed mid-batch. Every change is published once; the dead replica's pipelines are
    covered again within one heartbeat period; another consumer takes over the unacknowledged
    batch, and the group ends with every change acknowledged."""
    rng = random.Random(SEED + 1)
    redis = RedisProcess(tmp_path / "redis")
    redis.directory.mkdir()
    redis.start()
    procs: list[Proc] = []
    try:
        async with VendorServer(token=TOKEN) as server, RedisStore(redis.url) as probe:
            fleet, targets = await make_fleet(server, rng)
            everything = set(fleet.keys.values())
            published: dict[str, dict[str, Any]] = {}  # stream ID -> event
            await probe.call("XGROUP", "CREATE", "changes", "bots", "$", "MKSTREAM")

            async def follow_stream() -> None:
                last = "0-0"
                while True:
                    for entry_id, fields in await probe.call("XRANGE", "changes", f"({last}", "+"):
                        last = entry_id
                        event = decode_event(fields["change"])
                        run = event.current
                        number = number_of(
                            run.number if run.number is not None else run.jobs[0].name
                        )  # type: ignore[union-attr]
                        status = run.status.value  # type: ignore[union-attr]
                        published[entry_id] = {
                            "id": event.id,
                            "key": event.key,
                            "number": number,
                            "status": status,
                            "kind": event.kind.value,
                            "seq": event.seq,
                        }
                        fleet.saw(event.key, number, status)
                    await asyncio.sleep(0.02)

            def replica(name: str) -> list[str]:
                settings = {
                    "url": server.url,
                    "token": TOKEN,
                    "targets": targets,
                    "interval": INTERVAL,
                    "store": {
                        "redis": redis.url,
                        "member": name,
                        "heartbeat": HEARTBEAT,
                        "stream": "changes",
                    },
                }
                return [sys.executable, WATCH, json.dumps(settings)]

            def consumer(name: str) -> list[str]:
                return [sys.executable, "-m", "pipestatus", "events", "--redis", redis.url,
                        "--group", "bots", "--consumer", name, "--stream", "changes",
                        "--count", "25", "--claim-idle", "0.5"]  # fmt: skip

            reading = asyncio.create_task(follow_stream())
            try:
                async with ticking(fleet):
                    replicas = {
                        name: await Proc.start(*replica(name)) for name in ("r1", "r2", "r3")
                    }
                    procs += replicas.values()
                    first_reader = await Proc.start(*consumer("c1"), small=True)
                    procs.append(first_reader)

                    def share(proc: Proc) -> set[str]:
                        owned = [line for line in proc.lines if "owned" in line]
                        return set(owned[-1]["owned"]) if owned else set()

                    def covered(members: list[Proc]) -> bool:
                        shares = [share(p) for p in members]
                        return set().union(*shares) == everything and sum(map(len, shares)) == len(
                            everything
                        )

                    # all three in (before one's first beat, two may split everything)
                    await until(
                        lambda: (
                            covered(list(replicas.values()))
                            and all(share(p) for p in replicas.values())
                        )
                    )

                    # The consumer dies mid-batch: its output is no longer read, so it blocks
                    # printing a batch once the pipe is full, with the rest of the batch read
                    # and not acknowledged; then it is killed.
                    await until(lambda: len(first_reader.lines) >= 10)
                    first_reader.reading.clear()
                    unacked: list[int] = []

                    async def stuck() -> bool:
                        summary = await probe.call("XPENDING", "changes", "bots")
                        mine = [
                            int(c["pending"]) for c in summary["consumers"] if c["name"] == "c1"
                        ]
                        unacked.append(mine[0] if mine else 0)
                        return len(unacked) >= 3 and min(unacked[-3:]) > 0

                    async with asyncio.timeout(GUARD):
                        while not await stuck():  # noqa: ASYNC110 - Redis's state, polled
                            await asyncio.sleep(0.05)
                    await first_reader.kill()
                    summary = await probe.call("XPENDING", "changes", "bots")
                    left_in_hand = {c["name"]: int(c["pending"]) for c in summary["consumers"]}
                    heir = await Proc.start(*consumer("c2"))
                    procs.append(heir)

                    await until(lambda: len(fleet.announced) >= 60)
                    victim_name = max(replicas, key=lambda n: len(share(replicas[n])))
                    victim = replicas.pop(victim_name)
                    orphans = share(victim)
                    loop = asyncio.get_running_loop()
                    await victim.kill()
                    killed = loop.time()
                    survivors = list(replicas.values())
                    await until(lambda: covered(survivors))
                    takeover = loop.time() - killed

                    await until(lambda: fleet.done)
                await until(
                    lambda: (
                        len(published) > 0
                        and {line["id"] for p in (first_reader, heir) for line in p.lines}
                        >= {e["id"] for e in published.values()}
                    )
                )
                pending = await probe.call("XPENDING", "changes", "bots")
            finally:
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reading
    finally:
        errs: list[str | None] = []
        try:
            for proc in procs:
                try:
                    errs.append(await proc.kill(signal.SIGTERM))
                except TimeoutError:  # it did not end: kill it, and say so below
                    errs.append(None)
                    if proc.proc.returncode is None:
                        proc.proc.kill()
                        await proc.proc.wait()
        finally:
            redis.stop()  # whatever happened: no redis-server is left behind
    for err in errs:
        assert err is not None, "a process did not end on SIGTERM"
        assert "Traceback" not in err, err

    assert orphans
    assert takeover <= HEARTBEAT + SLACK, takeover
    ids = [event["id"] for event in published.values()]
    assert len(ids) == len(set(ids)), "a change was published twice"
    finals = Counter((e["key"], e["number"]) for e in published.values() if e["status"] in FINALS)
    assert set(finals) == {(fleet.keys[n], k) for n in fleet.steps for k in range(1, RUNS + 1)}
    twice = {run for run, n in finals.items() if n > 1}
    assert not twice, "\n".join(
        f"{e['key'][-30:]} run {e['number']} seq {e['seq']} {e['kind']} {e['status']}"
        for e in published.values()
        if e["key"] in {key for key, _ in twice}
    )
    assert left_in_hand.get("c1", 0) > 0, "the consumer was not killed mid-batch"
    printed = [line["id"] for line in first_reader.lines + heir.lines]
    assert set(printed) == set(ids)
    assert pending["pending"] == 0
    print(
        f"\n{len(ids)} changes published once each; takeover {takeover:.2f} s "
        f"(heartbeat {HEARTBEAT} s); the consumer died with {left_in_hand['c1']} unacknowledged, "
        f"{len(printed) - len(set(printed))} printed twice"
    )
