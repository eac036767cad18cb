"""Fan-out: ``poll``, ``wait`` and ``watch`` over real HTTP against ``pipestatus.testing``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

import pytest
from watchkit import collect, draining, until

from pipestatus import Client, Run, Status, Target
from pipestatus.errors import NotFoundError, PipestatusError, ResponseError, WaitTimeout
from pipestatus.model import ChangeKind
from pipestatus.testing import SimJob, SimRun, SimStage, VendorServer

TOKEN = "fanout-secret-token"


def sim(number: int, status: str, *, stage: str = "build") -> SimRun:
    return SimRun(number, status, [SimStage(stage, [SimJob("job", status)])])


async def no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def server() -> AsyncIterator[VendorServer]:
    async with VendorServer(token=TOKEN) as srv:
        yield srv


# --- poll ---------------------------------------------------------------------------------------


async def test_mixed_poll_of_300_targets_reports_every_target(server: VendorServer) -> None:
    """300 targets, 10% answering 404 and 10% garbage: each present, each error its own class."""
    expected: dict[str, type[object]] = {}
    for i in range(100):
        server.add_repo_pipeline(1000, i + 1, sim(i + 1, "success"))
        server.add_v5_pipeline("proj", f"v5-{i:03d}", sim(i + 1, "running"))
        server.add_yunxiao_pipeline(str(5000 + i), sim(i + 1, "failed"))
    async with Client(max_concurrency=16, retries=0) as client:
        repo = client.codearts_repo(server.url, token=TOKEN)
        pipe = client.codearts_pipeline(server.url, project_id="proj", token=TOKEN)
        flow = client.yunxiao(server.url, token=TOKEN)
        targets: list[Target] = []
        for i in range(100):
            targets += [repo.target(1000, i + 1), pipe.target(f"v5-{i:03d}")]
            targets.append(flow.target(str(5000 + i)))
        # 10% (30) ask for pipelines that do not exist; 10% (30) get garbage bodies.
        for i in range(10):
            targets[i * 3] = repo.target(1000, 900 + i)
            targets[i * 3 + 1] = pipe.target(f"missing-{i}")
            targets[i * 3 + 2] = flow.target(str(9900 + i))
        for i in range(10, 20):
            server.fault(vendor="codearts_repo", pipeline=i + 1, body=b"<html>oops</html>")
            server.fault(vendor="yunxiao", pipeline=str(5000 + i), body={"pipelineId": []})
        for i in range(20, 30):
            server.fault(
                vendor="codearts_pipeline",
                pipeline=f"v5-{i:03d}",
                payload_mutator=lambda items: [{**item, "status": 7} for item in items],
            )
        for index, target in enumerate(targets):
            if index < 30:
                expected[repr(target)] = NotFoundError
        results = await client.poll(targets)

    assert list(results) == targets
    assert all(isinstance(v, Run | NotFoundError | ResponseError) for v in results.values())
    not_found = [t for t, v in results.items() if isinstance(v, NotFoundError)]
    garbage = [t for t, v in results.items() if isinstance(v, ResponseError)]
    assert sorted(map(repr, not_found)) == sorted(expected)
    # garbage: 10 v4 + 10 Yunxiao bodies; the v5 mutator damages every item of the batch it
    # touches, so the v5 pipelines batched with v5-020..029 are garbage too: at least 30.
    assert len([t for t in garbage if t.vendor != "codearts_pipeline"]) == 20
    assert len([t for t in garbage if t.vendor == "codearts_pipeline"]) >= 10
    runs = [v for v in results.values() if isinstance(v, Run)]
    assert runs
    assert server.peak_in_flight <= 16


async def test_poll_respects_max_concurrency(server: VendorServer) -> None:
    """With 200 slow one-request targets, the server never sees more than max_concurrency."""
    for i in range(200):
        server.add_yunxiao_pipeline(str(i), sim(i + 1, "success"))
    server.fault(vendor="yunxiao", delay=0.02)
    async with Client(max_concurrency=8) as client:
        flow = client.yunxiao(server.url, token=TOKEN)
        results = await client.poll([flow.target(str(i)) for i in range(200)])
    assert all(isinstance(run, Run) for run in results.values())
    assert server.peak_in_flight == 8


async def test_per_host_limit(server: VendorServer) -> None:
    """``max_per_host`` caps the requests one origin sees, under the global limit."""
    for i in range(50):
        server.add_yunxiao_pipeline(str(i), sim(i + 1, "success"))
    server.fault(vendor="yunxiao", delay=0.02)
    async with Client(max_concurrency=32, max_per_host=3) as client:
        flow = client.yunxiao(server.url, token=TOKEN)
        await client.poll([flow.target(str(i)) for i in range(50)])
    assert server.peak_in_flight == 3


async def test_v5_targets_cost_one_request_per_batch(server: VendorServer) -> None:
    """1,000 v5 targets of one project cost ten batch calls."""
    for i in range(1000):
        server.add_v5_pipeline("proj", f"p{i:04d}", sim(1, "success"))
    async with Client() as client:
        pipe = client.codearts_pipeline(server.url, project_id="proj", token=TOKEN)
        results = await client.poll([pipe.target(f"p{i:04d}") for i in range(1000)])
    assert all(isinstance(run, Run) for run in results.values())
    assert server.request_count == 10


async def test_cancelling_poll_leaves_no_task(server: VendorServer) -> None:
    """Cancelling a poll mid-flight cancels its requests and leaves no task behind."""
    for i in range(20):
        server.add_yunxiao_pipeline(str(i), sim(1, "success"))
    hang = server.fault(vendor="yunxiao", hang=True)
    before = asyncio.all_tasks()
    async with Client() as client:
        flow = client.yunxiao(server.url, token=TOKEN)
        poll = asyncio.create_task(client.poll([flow.target(str(i)) for i in range(20)]))
        async with asyncio.timeout(10):
            await server.wait_in_flight(20)
        poll.cancel()
        with pytest.raises(asyncio.CancelledError):
            await poll
    hang.release()
    await server.close()  # the server shares this loop: end its handler tasks first
    assert asyncio.all_tasks() == before


# --- wait -------------------------------------------------------------------------------------


async def test_wait_returns_the_terminal_run(server: VendorServer) -> None:
    """``wait`` polls until the run is terminal and returns that run."""
    server.add_yunxiao_pipeline("1", [sim(4, "pending"), sim(4, "running"), sim(4, "success")])
    async with Client() as client:
        flow = client.yunxiao(server.url, token=TOKEN)
        run = await client.wait(flow.target("1"), timeout=10, interval=0.01)
    assert run.status is Status.SUCCESS
    assert server.request_count == 3


async def test_wait_gives_up_with_wait_timeout(server: VendorServer) -> None:
    """A run that never finishes ends the wait in WaitTimeout carrying the last run seen."""
    server.add_yunxiao_pipeline("1", sim(4, "running"))
    async with Client() as client:
        flow = client.yunxiao(server.url, token=TOKEN)
        with pytest.raises(WaitTimeout) as caught:
            await client.wait(flow.target("1"), timeout=0.2, interval=0.02)
    assert isinstance(caught.value.last, Run)
    assert caught.value.last.status is Status.RUNNING
    assert isinstance(caught.value, PipestatusError)


async def test_wait_raises_at_once_on_not_found(server: VendorServer) -> None:
    """A pipeline that does not exist is not waited for: NotFoundError at once."""
    async with Client() as client:
        flow = client.yunxiao(server.url, token=TOKEN)
        with pytest.raises(NotFoundError):
            await client.wait(flow.target("nope"), timeout=30, interval=0.01)
    assert server.request_count == 1


# --- watch ------------------------------------------------------------------------------------


async def test_watch_sees_each_state_once_although_running_repeats(server: VendorServer) -> None:
    """pending -> running (x4) -> success yields first, moved, finished: one change each."""
    script = [sim(7, "pending")] + [sim(7, "running")] * 4 + [sim(7, "success")]
    server.add_yunxiao_pipeline("42", script)
    async with Client() as client:
        flow = client.yunxiao(server.url, token=TOKEN)
        watch = client.watch([flow.target("42")], interval=0.01)
        async with contextlib.aclosing(watch):
            changes = await collect(watch, 3)
    assert [c.current.status for c in changes if isinstance(c.current, Run)] == [
        Status.PENDING,
        Status.RUNNING,
        Status.SUCCESS,
    ]
    assert [c.kind for c in changes] == [ChangeKind.FIRST, ChangeKind.MOVED, ChangeKind.FINISHED]
    assert changes[0].previous is None
    assert changes[1].previous is changes[0].current
    assert server.request_count >= 6


async def test_watch_names_fixed_broke_and_still_failing(server: VendorServer) -> None:
    """A bot reads fixed, broke and still failing straight from Change.kind."""
    script = [
        sim(1, "failed"),
        sim(2, "running"),
        sim(2, "success"),  # fixed
        sim(3, "failed"),  # broke (another run, straight to failed)
        sim(4, "running"),
        sim(4, "timedout"),  # still failing
    ]
    server.add_repo_pipeline(1, 1, script)
    async with Client() as client:
        repo = client.codearts_repo(server.url, token=TOKEN)
        watch = client.watch([repo.target(1, 1)], interval=0.01)
        async with contextlib.aclosing(watch):
            changes = await collect(watch, 6)
    assert [c.kind for c in changes] == [
        ChangeKind.FIRST,
        ChangeKind.STARTED,
        ChangeKind.FIXED,
        ChangeKind.BROKE,
        ChangeKind.STARTED,
        ChangeKind.STILL_FAILING,
    ]


async def test_watch_reports_raw_status_changes(server: VendorServer) -> None:
    """A change of the vendor's word alone (two words for pending) is a change."""
    script = [sim(1, "raw:WAITING"), sim(1, "raw:INIT"), sim(1, "success")]
    server.add_yunxiao_pipeline("9", script)
    async with Client() as client:
        flow = client.yunxiao(server.url, token=TOKEN)
        watch = client.watch([flow.target("9")], interval=0.01)
        async with contextlib.aclosing(watch):
            changes = await collect(watch, 3)
    raw = [c.current.raw_status for c in changes if isinstance(c.current, Run)]
    assert raw == ["WAITING", "INIT", "SUCCESS"]


async def test_watch_errors_are_logged_or_yielded(
    server: VendorServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Errors are logged by default; with errors=True they are yielded, then the recovery."""
    server.add_yunxiao_pipeline("5", sim(1, "running"))
    server.fault(vendor="yunxiao", status=404, times=1)
    async with Client() as client:
        flow = client.yunxiao(server.url, token=TOKEN)
        target = flow.target("5")
        watcher = client.watcher([target], interval=0.01, errors=True, max_error_interval=0.01)
        async with watcher:
            changes = await collect(watcher, 2)
        assert [c.kind for c in changes] == [ChangeKind.ERROR, ChangeKind.FIRST]
        assert isinstance(changes[0].current, NotFoundError)
        assert changes[0].run is None

        server.fault(vendor="yunxiao", status=404, times=1)
        caplog.set_level(logging.WARNING, logger="pipestatus")
        quiet = client.watcher([target], interval=0.01, max_error_interval=0.01)
        async with quiet:
            (first,) = await collect(quiet, 1)
    assert first.kind is ChangeKind.FIRST
    assert any("HTTP 404" in record.getMessage() for record in caplog.records)


async def test_closing_a_watch_mid_flight_leaves_no_task(server: VendorServer) -> None:
    """aclose() while requests hang cancels them: all_tasks() is as before, session closed."""
    for i in range(10):
        server.add_yunxiao_pipeline(str(i), sim(1, "success"))
    before = asyncio.all_tasks()
    async with Client() as client:
        flow = client.yunxiao(server.url, token=TOKEN)
        hang = server.fault(vendor="yunxiao", hang=True)
        watch = client.watch([flow.target(str(i)) for i in range(10)], interval=0.01)
        consumer = asyncio.create_task(anext(watch))
        async with asyncio.timeout(10):
            await server.wait_in_flight(10)
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        await watch.aclose()
        hang.release()
    await server.close()  # the server shares this loop: end its handler tasks first
    assert asyncio.all_tasks() == before


async def test_watcher_targets_can_be_added_and_removed(server: VendorServer) -> None:
    """A running Watcher takes new targets (first change at once) and drops removed ones."""
    server.add_yunxiao_pipeline("a", sim(1, "running"))
    server.add_yunxiao_pipeline("b", [sim(1, "running"), sim(1, "success")])
    async with Client() as client:
        flow = client.yunxiao(server.url, token=TOKEN)
        a, b = flow.target("a"), flow.target("b")
        async with client.watcher([a], interval=0.01) as watcher:
            (first,) = await collect(watcher, 1)
            assert first.target == a
            watcher.add(b)
            watcher.remove(a)
            assert watcher.targets == {b}
            changes = await collect(watcher, 2)
    assert [(c.target, c.kind) for c in changes] == [
        (b, ChangeKind.FIRST),
        (b, ChangeKind.FINISHED),
    ]


async def test_watch_uses_conditional_requests(server: VendorServer) -> None:
    """After the first read, polls send If-None-Match and the server answers 304."""
    server.add_yunxiao_pipeline("1", sim(1, "success"))
    async with Client() as client:
        flow = client.yunxiao(server.url, token=TOKEN)
        w = client.watcher([flow.target("1")], interval=0.01, idle_interval=0.01)
        async with w, draining(w):
            await until(lambda: server.request_count >= 4)
    assert all("if-none-match" in r.headers for r in server.requests[1:])


async def test_idle_targets_slow_down_and_changed_ones_speed_up(server: VendorServer) -> None:
    """An unchanged terminal run is polled ever less often, up to idle_interval."""
    server.add_yunxiao_pipeline("1", sim(1, "success"))
    async with Client() as client:
        flow = client.yunxiao(server.url, token=TOKEN)
        target = flow.target("1")
        watcher = client.watcher([target], interval=0.01, idle_interval=0.05)
        async with watcher:
            await collect(watcher, 1)
            state = watcher._states[target]
            assert state.delay == pytest.approx(0.01)
            async with draining(watcher):
                await until(lambda: state.delay >= 0.05)
        assert state.delay == pytest.approx(0.05)


async def test_failing_target_backs_off_alone(server: VendorServer) -> None:
    """A target that errors backs off on its own while the others keep their pace."""
    server.add_yunxiao_pipeline("good", sim(1, "running"))
    server.add_yunxiao_pipeline("bad", sim(1, "running"))
    server.fault(vendor="yunxiao", pipeline="bad", status=503)
    async with Client(retries=0) as client:
        flow = client.yunxiao(server.url, token=TOKEN)
        good, bad = flow.target("good"), flow.target("bad")
        watcher = client.watcher([good, bad], interval=0.01, max_error_interval=10.0)
        async with watcher, draining(watcher):
            await until(lambda: watcher._states[bad].failures >= 3)
            assert watcher._states[bad].delay >= 0.04
            assert watcher._states[good].delay == pytest.approx(0.01)


async def test_a_finish_is_announced_once_per_run(server: VendorServer) -> None:
    """A garbled answer between two identical finals does not announce the run finished twice."""
    script = [sim(7, "running"), sim(7, "failed"), sim(7, "raw:EXPLODED"), sim(7, "failed")]
    server.add_yunxiao_pipeline("7", script)
    async with Client() as client:
        flow = client.yunxiao(server.url, token=TOKEN)
        watch = client.watch([flow.target("7")], interval=0.01)
        async with contextlib.aclosing(watch):
            changes = await collect(watch, 4)
    assert [c.kind for c in changes] == [
        ChangeKind.FIRST,
        ChangeKind.FINISHED,
        ChangeKind.MOVED,  # EXPLODED: an unknown word, read as pending
        ChangeKind.MOVED,  # back to the failure already announced
    ]


async def test_slow_target_does_not_hold_back_the_others(server: VendorServer) -> None:
    """While one target's request hangs, the others' changes still arrive."""
    server.add_yunxiao_pipeline("good", sim(1, "running"))
    server.add_yunxiao_pipeline("bad", sim(1, "running"))
    hang = server.fault(vendor="yunxiao", pipeline="bad", hang=True)
    async with Client(timeout=30) as client:
        flow = client.yunxiao(server.url, token=TOKEN)
        good, bad = flow.target("good"), flow.target("bad")
        async with client.watcher([good, bad], interval=0.01) as watcher:
            (first,) = await collect(watcher, 1, guard=5)
            assert first.target == good
            assert server.in_flight == 1  # "bad" is still hanging
            hang.release()
            (second,) = await collect(watcher, 1)
            assert second.target == bad


async def test_recovered_target_returns_to_the_normal_pace(server: VendorServer) -> None:
    """After an error streak, an unchanged running pipeline is polled at ``interval`` again."""
    server.add_yunxiao_pipeline("7", sim(1, "running"))
    async with Client(retries=0) as client:
        target = client.yunxiao(server.url, token=TOKEN).target("7")
        watcher = client.watcher([target], interval=0.01, max_error_interval=60)
        async with watcher:
            await collect(watcher, 1)
            state = watcher._states[target]
            server.fault(vendor="yunxiao", status=503, times=4)
            async with draining(watcher):
                await until(lambda: state.failures >= 4)
                await until(lambda: state.failures == 0)
            assert state.delay == pytest.approx(0.01)


async def test_watch_honours_retry_after(server: VendorServer) -> None:
    """A 429's Retry-After sets the target's next poll, even past max_error_interval."""
    server.add_yunxiao_pipeline("7", sim(1, "running"))
    server.fault(vendor="yunxiao", status=429, retry_after=20)
    async with Client(max_retry_wait=1) as client:
        target = client.yunxiao(server.url, token=TOKEN).target("7")
        watcher = client.watcher([target], interval=0.01, errors=True, max_error_interval=1)
        async with watcher:
            (change,) = await collect(watcher, 1)
            assert change.kind is ChangeKind.ERROR
            assert watcher._states[target].delay >= 20
    assert server.request_count == 1


async def test_v5_targets_added_one_by_one_share_batch_calls(server: VendorServer) -> None:
    """v5 targets added to a running watch at different times end up in one batch request."""
    for i in range(10):
        server.add_v5_pipeline("proj", f"p{i}", sim(1, "running"))
    async with Client() as client:
        pipe = client.codearts_pipeline(server.url, project_id="proj", token=TOKEN)
        async with client.watcher([pipe.target("p0")], interval=0.05) as watcher:
            await collect(watcher, 1)
            for i in range(1, 10):
                watcher.add(pipe.target(f"p{i}"))
                await collect(watcher, 1)
            server.reset_stats()
            async with draining(watcher):
                await until(lambda: server.request_count >= 3)
    sizes = [len(json.loads(r.body)) for r in server.requests[:3]]
    assert sizes == [10, 10, 10]
