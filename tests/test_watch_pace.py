"""The pure pace of a watch: interval, idle slow-down, error backoff, Retry-After, jitter and
batches. A seeded ``random.Random`` stands in for chance; no event loop, no clock."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import pytest

from pipestatus import Run, Status
from pipestatus.errors import (
    AuthError,
    ForbiddenError,
    NotFoundError,
    PipestatusError,
    RateLimitedError,
    RequestTimeout,
    ServerError,
)
from pipestatus.watch.pace import (
    MAX_SERVER_WAIT,
    Pace,
    Pacing,
    jitter,
    next_poll,
    rides_along,
    server_wait,
)

PACING = Pacing.of(1.0, idle_interval=3.0, max_error_interval=10.0)


def run(status: Status) -> Run:
    return Run(vendor="toy", pipeline_id="p", run_id="r1", number=1, status=status, raw_status=None)


RUNNING, DONE = run(Status.RUNNING), run(Status.SUCCESS)


def down() -> ServerError:
    return ServerError(status=503, vendor="toy")


def delays(
    outcomes: Sequence[tuple[Run | PipestatusError, bool]], pacing: Pacing = PACING
) -> list[float]:
    """The base delay after each ``(outcome, unchanged)``, from a fresh target's pace."""
    pace, got, rng = Pace(delay=pacing.interval), [], random.Random(1)
    for outcome, unchanged in outcomes:
        pace, _ = next_poll(pace, outcome, pacing, unchanged=unchanged, rng=rng)
        got.append(pace.delay)
    return got


# --- settings ----------------------------------------------------------------------------------


def test_idle_and_error_intervals_default_to_ten_intervals() -> None:
    """Without them, idle_interval and max_error_interval are 10 * interval."""
    assert Pacing.of(2.0) == Pacing(interval=2.0, idle_interval=20.0, max_error_interval=20.0)


def test_idle_and_error_intervals_are_never_below_the_interval() -> None:
    """An idle_interval or max_error_interval below interval is raised to it."""
    pacing = Pacing.of(5.0, idle_interval=1.0, max_error_interval=0.5)
    assert (pacing.idle_interval, pacing.max_error_interval) == (5.0, 5.0)


@pytest.mark.parametrize("interval", [0.0, -1.0, math.nan, math.inf])
def test_an_interval_must_be_a_positive_finite_number(interval: float) -> None:
    """Zero, negative, NaN and infinite intervals are refused."""
    with pytest.raises(ValueError, match="interval"):
        Pacing.of(interval)


# --- the normal pace and idle slow-down --------------------------------------------------------


def test_a_changed_or_running_target_keeps_the_interval() -> None:
    """A change, and a running run seen unchanged, both wait ``interval``."""
    assert delays([(RUNNING, False), (RUNNING, True), (RUNNING, True), (DONE, False)]) == [
        1.0,
        1.0,
        1.0,
        1.0,
    ]


def test_an_unchanged_terminal_target_slows_down_up_to_idle_interval() -> None:
    """Each unchanged terminal observation waits 1.5 times longer, up to idle_interval."""
    got = delays([(DONE, False)] + [(DONE, True)] * 4)
    assert got == [1.0, 1.5, 2.25, 3.0, 3.0]


def test_a_change_brings_an_idle_target_back_to_the_interval() -> None:
    """After slowing down, a change is polled at ``interval`` again."""
    got = delays([(DONE, True), (DONE, True), (RUNNING, False)])
    assert got == [1.5, 2.25, 1.0]


# --- errors ------------------------------------------------------------------------------------


def test_errors_double_the_delay_up_to_max_error_interval() -> None:
    """Errors in a row wait 1, 2, 4, 8 intervals, then the cap."""
    got = delays([(down(), False)] * 6)
    assert got == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_a_very_long_error_streak_stays_at_the_cap() -> None:
    """Ten thousand errors in a row wait the cap, with no overflow."""
    pace = Pace(delay=1.0, failures=10_000, rounds=10_000)
    after, wait = next_poll(
        pace, RequestTimeout("slow"), PACING, unchanged=False, rng=random.Random(0)
    )
    assert after.delay == 10.0
    assert 9.0 <= wait <= 11.0


@pytest.mark.parametrize(
    "error",
    [
        AuthError(status=401, vendor="toy"),
        ForbiddenError(status=403, vendor="toy"),
        NotFoundError(status=404, vendor="toy"),
    ],
    ids=["401", "403", "404"],
)
def test_permanent_errors_wait_the_cap_at_once(error: PipestatusError) -> None:
    """An error that asking again will not cure waits max_error_interval from the first."""
    assert delays([(error, False)]) == [10.0]


def test_recovering_returns_to_the_interval_not_the_backoff() -> None:
    """The first answer after an error streak waits ``interval`` (1.5x if terminal, unchanged)."""
    assert delays([(down(), False)] * 3 + [(RUNNING, True)]) == [1.0, 2.0, 4.0, 1.0]
    assert delays([(down(), False)] * 3 + [(DONE, True)]) == [1.0, 2.0, 4.0, 1.5]


def test_failures_count_errors_in_a_row_and_reset_on_an_answer() -> None:
    """``failures`` counts consecutive errors; any run sets it back to 0."""
    pace, rng = Pace(delay=1.0), random.Random(0)
    seen = []
    outcomes: list[Run | PipestatusError] = [down(), down(), RUNNING, down()]
    for outcome in outcomes:
        pace, _ = next_poll(pace, outcome, PACING, unchanged=False, rng=rng)
        seen.append((pace.failures, pace.rounds))
    assert seen == [(1, 1), (2, 2), (0, 3), (1, 4)]


# --- Retry-After -------------------------------------------------------------------------------


def test_retry_after_wins_even_past_the_cap() -> None:
    """A 429's retry_after of 20 s beats a cap of 10 s."""
    assert delays([(RateLimitedError(vendor="toy", retry_after=20.0), False)]) == [20.0]


def test_a_short_retry_after_never_shortens_the_backoff() -> None:
    """A retry_after below the error backoff leaves the backoff."""
    limited = RateLimitedError(vendor="toy", retry_after=0.5)
    assert delays([(down(), False), (down(), False), (limited, False)]) == [1.0, 2.0, 4.0]


def test_a_429_without_retry_after_backs_off_like_any_error() -> None:
    """Without retry_after, a 429 doubles like a 503."""
    limited = RateLimitedError(vendor="toy")
    assert delays([(limited, False), (limited, False)]) == [1.0, 2.0]


def test_the_server_wait_is_bounded_by_an_hour_or_the_cap() -> None:
    """A Retry-After is waited out whole up to an hour (or max_error_interval when longer):
    ``Retry-After: 1000000000`` no longer silences a target for 31 years."""
    assert server_wait(1e9, PACING) == MAX_SERVER_WAIT == 3600.0
    assert server_wait(1200.0, PACING) == 1200.0
    long_cap = Pacing.of(60.0, max_error_interval=7200.0)
    assert server_wait(1e9, long_cap) == 7200.0
    limited = RateLimitedError(vendor="toy", retry_after=1e9)
    assert delays([(limited, False)]) == [MAX_SERVER_WAIT]


# --- jitter ------------------------------------------------------------------------------------


def test_the_first_jitter_spreads_over_half_to_one_and_a_half() -> None:
    """Before its first observation a target's factor is in [0.5, 1.5], spread over it."""
    rng = random.Random(7)
    factors = [jitter(0, rng) for _ in range(2000)]
    assert all(0.5 <= f <= 1.5 for f in factors)
    assert min(factors) < 0.55
    assert max(factors) > 1.45


def test_later_jitter_stays_within_ten_percent() -> None:
    """After the first observation the factor is in [0.9, 1.1], spread over it."""
    rng = random.Random(7)
    factors = [jitter(rounds, rng) for rounds in range(1, 2001)]
    assert all(0.9 <= f <= 1.1 for f in factors)
    assert min(factors) < 0.91
    assert max(factors) > 1.09


def test_the_wait_is_the_delay_times_the_jitter_of_the_round() -> None:
    """The wait is the base delay times a factor drawn for the round observed, from ``rng``."""
    pace = Pace(delay=1.0, failures=0, rounds=3)
    after, wait = next_poll(pace, DONE, PACING, unchanged=True, rng=random.Random(42))
    assert after.delay == 1.5
    assert wait == 1.5 * random.Random(42).uniform(0.9, 1.1)
    _, first = next_poll(Pace(delay=1.0), RUNNING, PACING, unchanged=False, rng=random.Random(42))
    assert first == 1.0 * random.Random(42).uniform(0.5, 1.5)


# --- batches -----------------------------------------------------------------------------------


def test_a_healthy_batched_target_waits_the_interval_times_the_batch_factor() -> None:
    """A batched target waits interval x the batch's factor, even when idle; no draw of its own."""
    rng = random.Random(3)
    state = rng.getstate()
    pace = Pace(delay=2.25, rounds=5)
    after, wait = next_poll(pace, DONE, PACING, unchanged=True, rng=rng, batch_factor=1.07)
    assert wait == pytest.approx(1.07)
    assert after.delay == 3.0  # remembered, but the batch keeps its adapter's pace
    assert rng.getstate() == state


def test_targets_of_one_batch_share_one_factor() -> None:
    """Every target polled in one batch waits the same time, whatever its own history."""
    rng = random.Random(5)
    factor = jitter(1, rng)
    paces = [Pace(delay=1.0, rounds=1), Pace(delay=3.0, rounds=9), Pace(delay=1.5, rounds=2)]
    waits = {
        next_poll(p, RUNNING, PACING, unchanged=True, rng=rng, batch_factor=factor)[1]
        for p in paces
    }
    assert waits == {PACING.interval * factor}


def test_a_failing_batched_target_backs_off_on_its_own() -> None:
    """A batched target that errors leaves the batch pace: its own backoff and jitter."""
    pace = Pace(delay=1.0, failures=2, rounds=4)
    after, wait = next_poll(
        pace, down(), PACING, unchanged=False, rng=random.Random(9), batch_factor=1.0
    )
    assert after.delay == 4.0  # its third error in a row
    assert wait == 4.0 * random.Random(9).uniform(0.9, 1.1)


def test_healthy_targets_due_within_one_interval_ride_along() -> None:
    """A healthy target due within one interval joins its adapter's batch; later or failing
    ones do not."""
    now = 100.0
    assert rides_along(Pace(delay=1.0), now + 1.0, now, PACING)
    assert rides_along(Pace(delay=1.0), now - 5.0, now, PACING)
    assert not rides_along(Pace(delay=1.0), now + 1.01, now, PACING)
    assert not rides_along(Pace(delay=2.0, failures=1), now, now, PACING)
