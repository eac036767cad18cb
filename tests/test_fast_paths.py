"""The poll path's shortcuts give what the general code gives: the shared deadline timer and
the precomputed fan-out."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pipestatus import Client
from pipestatus._transport import Deadline, Deadlines

# --- one timer for every attempt -----------------------------------------------------------------


async def test_many_attempts_arm_one_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hundred attempts that end in time, one after another and side by side, arm the
    loop's timer once between them."""
    loop = asyncio.get_running_loop()
    armed: list[float] = []
    call_at = loop.call_at

    def counting(when: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        armed.append(when)
        return call_at(when, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", counting)
    deadlines = Deadlines(loop, 60.0)
    release = asyncio.Event()

    async def attempt() -> bool:
        with deadlines.start() as deadline:
            await release.wait()
        return deadline.timed_out

    tasks = [asyncio.create_task(attempt()) for _ in range(50)]
    await asyncio.sleep(0)
    release.set()
    side_by_side = await asyncio.gather(*tasks)
    one_by_one = [await attempt() for _ in range(50)]
    assert not any(side_by_side + one_by_one)
    assert len(armed) == 1
    assert len(deadlines) == 0


async def test_attempt_past_its_deadline_times_out() -> None:
    """An attempt still waiting at its deadline is cancelled there and reports timed_out; an
    attempt that ended before it is left alone."""
    deadlines = Deadlines(asyncio.get_running_loop(), 0.0)  # due at once: no waiting on time
    with deadlines.start() as quick:
        pass
    never = asyncio.Event()
    with deadlines.start() as slow:
        await never.wait()
    assert slow.timed_out
    assert not quick.timed_out
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
    assert len(deadlines) == 0


async def test_later_deadline_still_fires_after_the_first_ended() -> None:
    """The timer re-arms for the next unfinished attempt once the oldest one has ended."""
    deadlines = Deadlines(asyncio.get_running_loop(), 0.05)
    first_done = asyncio.Event()

    async def first() -> bool:
        with deadlines.start() as deadline:
            await asyncio.sleep(0)
        first_done.set()
        return deadline.timed_out

    async def second() -> bool:
        await first_done.wait()
        with deadlines.start() as deadline:
            await asyncio.Event().wait()
        return deadline.timed_out

    assert await asyncio.gather(first(), second()) == [False, True]


async def test_outside_cancellation_is_not_a_timeout() -> None:
    """Cancelling an attempt's task from outside propagates CancelledError, whether or not its
    deadline expired too."""
    loop = asyncio.get_running_loop()
    entered = asyncio.Event()
    for also_expired in (False, True):
        deadlines = Deadlines(loop, 60.0)
        held: list[Deadline] = []

        async def attempt(deadlines: Deadlines = deadlines, held: list[Deadline] = held) -> None:
            with deadlines.start() as deadline:
                held.append(deadline)
                entered.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(attempt())
        await entered.wait()
        if also_expired:
            held[0].expire()  # what the timer does, here in the same step as the cancel
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not held[0].timed_out
        entered.clear()


# --- the precomputed fan-out --------------------------------------------------------------------


async def test_poll_targets_refuses_another_adapters_target() -> None:
    """Handing an adapter a target made by another raises ValueError before any request."""
    async with Client() as client:
        mine = client.yunxiao("http://127.0.0.1:9", token="t")
        other = client.yunxiao("http://127.0.0.1:9", token="t")
        with pytest.raises(ValueError, match="another adapter"):
            await mine.poll_targets([mine.target("1"), other.target("1")])
