"""Checked by mypy --strict (see .ci/run), never run: the public API types as users see them."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

from pipestatus import Change, Client, Job, Pipeline, Run, Stage, Status, Target
from pipestatus.auth import HuaweiAKSK, HuaweiIAM
from pipestatus.errors import NotFoundError, PipestatusError, RateLimitedError
from pipestatus.model import ChangeKind, Scope


async def api() -> None:
    async with Client(timeout=10.0, max_concurrency=64, retries=3) as client:
        repo = client.codearts_repo("https://h", token="t")
        run: Run = await repo.latest_run(2111976239, 6)
        jobs: list[Job] = await repo.jobs("2111976239", "6", max_jobs=10)
        pipe = client.codearts_pipeline("https://h", project_id="p", token="t")
        runs: dict[str, Run] = await pipe.latest_runs(["a", "b"])
        each: dict[str, Run | PipestatusError] = await pipe.latest_results(["a"])
        aksk = HuaweiAKSK(ak="a", sk="s", project_id=None, security_token=None)
        aksk = HuaweiAKSK.from_env()
        iam = HuaweiIAM(user="u", password="p", domain="d", project="cn-north-4", iam_url=None)
        repo = client.codearts_repo("https://h", credentials=aksk)
        repo = client.codearts_repo(region="cn-north-4", credentials=iam)
        pipe = client.codearts_pipeline(region="cn-north-4", project_id="p", credentials=aksk)
        pipe = client.codearts_pipeline(
            region="cn-north-4", project_id="p", credentials=iam.temporary_aksk(3600)
        )
        repo = client.codearts_repo(region="cn-north-4", credentials=iam.assume("a", domain="d"))

        async def token() -> str:
            return "fresh"

        flow = client.yunxiao("https://h", token=token, organization_id=None)
        run = await flow.latest_run("123")
        targets: list[Target] = [repo.target(1, 2), pipe.target("x"), flow.target("123")]
        results: dict[Target, Run | PipestatusError] = await client.poll(targets)
        finished: Run = await client.wait(targets[0], timeout=60)
        async with contextlib.aclosing(client.watch(targets, interval=30.0)) as changes:
            async for change in changes:
                named: Change = change
                current: Run | PipestatusError = change.current
                previous: Run | PipestatusError | None = change.previous
        stage: Stage = run.stages[0]
        status: Status = stage.status
        terminal: bool = status.is_terminal
        started: datetime | None = run.started_at
        took: timedelta | None = run.duration
        all_jobs: tuple[Job, ...] = run.jobs
        error = results[targets[0]]
        if isinstance(error, RateLimitedError):
            wait: float | None = error.retry_after
        if isinstance(error, NotFoundError):
            code: str | None = error.code


async def discovery() -> None:
    """v0.2: whole projects, run detail, history and logs, as DESIGN.md names them."""
    async with Client() as client:
        pipe = client.codearts_pipeline("https://h", project_id="p", token="t")
        flow = client.yunxiao("https://h", token="t", organization_id="org")
        found: list[Pipeline] = await pipe.pipelines(name=None)
        found = await flow.pipelines(name="release-*")
        first: Pipeline = found[0]
        target: Target = first.target
        latest: Run | None = first.latest
        scope: Scope = pipe.scope(name=None)
        other: Scope = flow.scope("web*")
        results: dict[Target, Run | PipestatusError] = await client.poll(
            [scope, other, pipe.target("x")]
        )
        detail: Run = await pipe.run("x", run_id=None)
        detail = await pipe.run(12, 34)
        detail = await flow.run("123", "7")
        as_of: datetime | None = detail.as_of
        elapsed: timedelta | None = detail.elapsed
        since = datetime(2025, 1, 1, tzinfo=UTC)
        async for past in pipe.runs("x", since=since, status=Status.FAILED):
            one: Run = past
        async for past in flow.runs(123, since=None, status=None):
            one = past
        text: str = await pipe.log("x", "r", "j", max_bytes=65536)
        text = await flow.log(1, 2, 3)
        async for change in client.watch([scope], interval=30.0):
            gone: bool = change.kind is ChangeKind.REMOVED


async def durable() -> None:
    from pipestatus.errors import StoreError, StoreUnavailableError
    from pipestatus.store import MemoryStore, RedisStore, SQLiteStore, Store
    from pipestatus.stream import RedisStream, StreamEvent

    async with Client() as client:
        targets = [client.yunxiao("https://h", token="t").target("1")]
        sqlite: Store = SQLiteStore("pipestatus.db")
        memory: Store = MemoryStore()
        async for change in client.watch(targets, store=sqlite):
            kind: str = change.kind.value
        stream = RedisStream("redis://127.0.0.1:6379/0", stream="pipestatus:changes")
        redis = RedisStore("redis://127.0.0.1:6379/0", heartbeat=10.0)
        async with client.watcher(targets, store=redis, publish=stream) as watcher:
            async for _ in watcher:
                event_id: str | None = watcher.last_event_id
                mine: frozenset[Target] = watcher.owned
        async for event in stream.consume(group="bots", consumer="bot-1"):
            read: StreamEvent = event
            stable: str = event.id
            what: Change = event.change
            await event.ack()
        try:
            await memory.open()
        except StoreUnavailableError as exc:
            broad: StoreError = exc
