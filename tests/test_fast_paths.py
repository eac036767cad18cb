"""The poll path's shortcuts give what the general code gives: the fast converters, the time
reader, the shared deadline timer and the precomputed fan-out."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from conftest import json_paths, load_fixture
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz_normalize import mutated

from pipestatus import Client
from pipestatus._normalize import ordered, read_time
from pipestatus._time import parse_time
from pipestatus._transport import Deadline, Deadlines
from pipestatus._wire import Converters
from pipestatus.vendors import codearts_pipeline, codearts_repo, yunxiao

FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- the fast converter accepts what the detailed one accepts, and builds the same ----------------

SCHEMAS: dict[str, tuple[Converters, Any, Callable[[], Any]]] = {
    "v4 latest-jobs": (
        codearts_repo.converters,
        codearts_repo.WireLatestJobs,
        lambda: load_fixture("codearts_repo", "latest-jobs-derived-200.json"),
    ),
    "v4 job list": (
        codearts_repo.converters,
        list[codearts_repo.WireListJob],
        lambda: load_fixture("codearts_repo", "jobs-200.json") * 2,
    ),
    "v5 run": (
        codearts_pipeline.converters,
        codearts_pipeline.WirePipelineLatestRun,
        lambda: load_fixture("codearts_pipeline", "batch-status-chinese-200.json")[0],
    ),
    "yunxiao run": (
        yunxiao.converters,
        yunxiao.WireLatestRun,
        lambda: load_fixture("yunxiao", "latest-run-derived-200.json"),
    ),
}


def _outcome(structure: Callable[[Any, Any], Any], payload: Any, cls: Any) -> tuple[bool, Any]:
    try:
        return True, structure(payload, cls)
    except Exception:  # noqa: BLE001 - only whether it failed matters here
        return False, None


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@FUZZ
@given(data=st.data())
def test_fast_converter_agrees_with_detailed(name: str, data: st.DataObject) -> None:
    """On any mutation of a vendor payload, the fast converter fails exactly when the detailed
    one does, and otherwise builds equal wire objects."""
    converters, cls, base = SCHEMAS[name]
    payload = data.draw(mutated(base()))
    fast = _outcome(converters.fast.structure, payload, cls)
    detailed = _outcome(converters.detailed.structure, payload, cls)
    assert fast == detailed


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_fast_converter_refuses_non_objects_everywhere(name: str) -> None:
    """A string or an array in place of any object of a payload fails on the fast path exactly
    when it fails on the detailed one, even for a class whose keys are all optional (where
    ``"k" in "..."`` would not fail by itself)."""
    converters, cls, base = SCHEMAS[name]
    for bad in ("stages", ["stages"], 7, None):
        assert _outcome(converters.fast.structure, bad, cls) == (False, None)
    payload = base()
    objects = [
        path for path in json_paths(payload) if path and _at(payload, path).__class__ is dict
    ]
    assert objects
    refused = 0
    for path in objects:
        for bad in ("a string", ["an array"]):
            changed = copy.deepcopy(payload)
            _at(changed, path[:-1])[path[-1]] = bad
            fast = _outcome(converters.fast.structure, changed, cls)
            assert fast == _outcome(converters.detailed.structure, changed, cls), path
            refused += not fast[0]
    assert refused  # the schema reads some of those objects


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


# --- read_time is parse_time ---------------------------------------------------------------------

_stamps = st.datetimes(
    min_value=datetime(1, 1, 2),  # noqa: DTZ001 - formatted below with and without a zone
    max_value=datetime(9999, 12, 30),  # noqa: DTZ001
)
_zones = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))]
)


@st.composite
def _time_strings(draw: st.DrawFn) -> str:
    stamp = draw(_stamps).replace(tzinfo=draw(_zones))
    sep = draw(st.sampled_from(["T", " "]))
    spec = draw(st.sampled_from(["seconds", "milliseconds", "microseconds", "auto", "minutes"]))
    text = stamp.isoformat(sep=sep, timespec=spec)
    return draw(st.sampled_from([text, f" {text}", f"{text} ", text.replace("+00:00", "Z")]))


_time_values = (
    st.integers(min_value=-(2**64), max_value=2**64)
    | st.sampled_from([0, 1, 253_402_300_799_999, 253_402_300_800_000, True, False, None])
    | st.sampled_from(["20250517", "2025-05-17", "1677919688000", "0001-01-01 00:00:00"])
    | st.floats(allow_nan=True, allow_infinity=True)
    | _time_strings()
    | st.text(max_size=25)
    | st.from_regex(r"\A\d{1,20}\Z")
    | st.from_regex(r"\A\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d\Z")
    | st.lists(st.integers(), max_size=2)
)


@FUZZ
@given(value=_time_values)
def test_read_time_equals_parse_time(value: object) -> None:
    """For any value a vendor may send, read_time returns what parse_time returns."""
    expected = parse_time(value, vendor="test", field="t")
    got = read_time(value, "test", "t")
    assert got == expected
    if got is not None:
        assert got.utcoffset() == timedelta(0)


def test_read_time_reads_the_vendors_encodings() -> None:
    """Epoch milliseconds, ISO 8601 with an offset and naive China Standard Time all read."""
    expected = datetime(2023, 3, 4, 8, 48, 8, tzinfo=UTC)
    assert read_time(1677919688000, "test", "t") == expected
    assert read_time("2023-03-04T16:48:08.000+08:00", "test", "t") == expected
    assert read_time("2023-03-04 16:48:08", "test", "t") == expected


def test_ordered_keeps_ordered_items_and_sorts_the_rest() -> None:
    """Items already in sequence come back as they are; others sort with a missing one last."""
    items = [{"n": 1}, {"n": 1}, {"n": 3}]
    assert ordered(items, lambda item: item["n"]) is items
    shuffled = [{"n": None}, {"n": 2}, {"n": -1}, {"n": 2}]
    assert ordered(shuffled, lambda item: item["n"]) == [
        shuffled[2],
        shuffled[1],
        shuffled[3],
        shuffled[0],
    ]


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
