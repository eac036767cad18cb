"""The client's lifecycle and ``wait``, used carelessly: closing under requests in flight, polling
a closed client, a second event loop, a provider that never answers, a spinning ``wait`` and a
server that asks to be left alone."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import pytest

from pipestatus import Client, Run
from pipestatus.errors import PipestatusError, TransportError, WaitTimeout
from pipestatus.testing import SimJob, SimRun, SimStage, VendorServer

TOKEN = "lifecycle-token"


def _run(word: str = "running") -> SimRun:
    return SimRun(1, word, [SimStage("build", [SimJob("make", word)])])


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def server() -> Any:
    async with VendorServer(token=TOKEN) as srv:
        for number in range(1, 21):
            srv.add_repo_pipeline(2000, number, _run())
        srv.add_yunxiao_pipeline("9", _run())
        yield srv


# --- closing under requests in flight --------------------------------------------------------


@pytest.mark.parametrize("moment", ["waiting-for-a-slot", "sending", "retrying"])
async def test_closing_under_requests_in_flight_ends_them_in_pipestatus_errors(
    server: VendorServer, moment: str
) -> None:
    """``aclose()`` while requests are queued for a slot, sent, or between retries ends every
    direct call and every poll in a run or a PipestatusError, never another exception, and
    logs no "unexpected failure"."""
    backing_off, resume = asyncio.Event(), asyncio.Event()

    async def sleep(_: float) -> None:  # a retry's backoff: held until the client is closed
        backing_off.set()
        await resume.wait()

    if moment == "retrying":
        server.fault(status=503)
    else:
        server.fault(delay=0.2)
    client = Client(timeout=5, retries=3, max_concurrency=4, sleep=sleep)
    await client.__aenter__()
    repo = client.codearts_repo(server.url, token=TOKEN)
    calls = [asyncio.create_task(repo.latest_run(2000, n)) for n in range(1, 11)]
    poll = asyncio.create_task(client.poll(repo.target(2000, n) for n in range(11, 21)))
    async with asyncio.timeout(5):
        if moment == "retrying":
            await backing_off.wait()
        else:
            await server.wait_in_flight(1)
    await client.aclose()
    resume.set()
    async with asyncio.timeout(10):
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        polled = await poll
    for outcome in [*outcomes, *polled.values()]:
        assert isinstance(outcome, Run | PipestatusError), repr(outcome)
        assert "unexpected" not in str(outcome)
    assert any(isinstance(o, TransportError) for o in [*outcomes, *polled.values()])


async def test_polling_a_closed_client_is_the_usage_error(
    server: VendorServer, caplog: pytest.LogCaptureFixture
) -> None:
    """``poll`` on a closed client raises RuntimeError once, as a direct call does, instead
    of an "unexpected failure" per target logged at ERROR."""
    caplog.set_level(logging.ERROR, logger="pipestatus")
    async with Client() as client:
        repo = client.codearts_repo(server.url, token=TOKEN)
        flow = client.yunxiao(server.url, token=TOKEN)
    targets = [repo.target(2000, 1), flow.target("9")]
    with pytest.raises(RuntimeError, match="async with"):
        await client.poll(targets)
    with pytest.raises(RuntimeError, match="async with"):
        await repo.latest_run(2000, 1)
    watch = client.watch(targets, interval=1)
    with pytest.raises(RuntimeError, match="async with"):
        await anext(watch)
    await watch.aclose()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_client_reentered_under_a_second_loop_polls_as_under_the_first() -> None:
    """A client used under one ``asyncio.run``, then another, with its global and per-host
    limits contended each time, reads every target both times."""

    async def once(client: Client) -> dict[Any, Any]:
        async with VendorServer(token=TOKEN) as server, client:
            for number in range(1, 9):
                server.add_repo_pipeline(2000, number, _run())
            server.fault(delay=0.01)
            repo = client.codearts_repo(server.url, token=TOKEN)
            return await client.poll(repo.target(2000, n) for n in range(1, 9))

    client = Client(max_concurrency=2, max_per_host=1, retries=0)
    for _ in range(2):
        results = asyncio.run(once(client))
        assert len(results) == 8
        assert all(isinstance(run, Run) for run in results.values()), results


async def test_a_provider_that_never_answers_costs_its_target_one_timeout(
    server: VendorServer,
) -> None:
    """In a poll, a target whose token provider never answers gets a PipestatusError after
    the client's timeout; its neighbour is read."""
    never = asyncio.Event()

    async def hung() -> str:
        await never.wait()
        return TOKEN

    async with Client(timeout=0.2, retries=0) as client:
        stuck = client.yunxiao(server.url, token=hung).target("9")
        fine = client.yunxiao(server.url, token=TOKEN).target("9")
        async with asyncio.timeout(5):
            results = await client.poll([stuck, fine])
    assert isinstance(results[stuck], PipestatusError)
    assert "did not answer" in str(results[stuck])
    assert isinstance(results[fine], Run)


# --- wait ------------------------------------------------------------------------------------


@pytest.mark.parametrize("interval", [0, -1, math.nan, math.inf])
async def test_wait_refuses_an_interval_that_would_spin(
    server: VendorServer, interval: float
) -> None:
    """``wait(interval=...)`` takes a positive, finite number of seconds, as a watch does:
    0, negative, NaN and infinity raise ValueError before any request."""
    async with Client() as client:
        target = client.yunxiao(server.url, token=TOKEN).target("9")
        with pytest.raises(ValueError, match="interval"):
            await client.wait(target, timeout=5, interval=interval)
    assert server.request_count == 0


async def test_wait_honours_a_429s_retry_after(server: VendorServer) -> None:
    """After a 429 with Retry-After, ``wait`` waits what the server asked, not its interval."""
    server.add_yunxiao_pipeline("10", [_run("running"), _run("success")])
    server.fault(pipeline="10", status=429, retry_after=7, times=1)
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    async with Client(retries=0, sleep=sleep) as client:
        target = client.yunxiao(server.url, token=TOKEN).target("10")
        run = await client.wait(target, timeout=60, interval=0.01)
    assert run.status.is_terminal
    assert pauses[0] == 7


async def test_wait_never_waits_past_its_deadline_for_a_retry_after(server: VendorServer) -> None:
    """A Retry-After longer than what is left of the deadline is waited only until the
    deadline, then ``WaitTimeout``."""
    server.fault(pipeline="9", status=429, retry_after=1000)
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        await asyncio.sleep(seconds)

    async with Client(retries=0, sleep=sleep) as client:
        target = client.yunxiao(server.url, token=TOKEN).target("9")
        with pytest.raises(WaitTimeout):
            await client.wait(target, timeout=0.3, interval=0.01)
    assert pauses
    assert max(pauses) <= 0.3
