"""The pace of a watch: when each target is polled next. Pure: no asyncio, no clock; the jitter
comes from the ``random.Random`` passed in (stamina's ``_compute_backoff`` is the model).

:func:`next_poll` alone decides how long a target waits after an observation; the scheduler
calls it in one place. The rules, in the order they apply:

* **normal**: ``interval`` after a change, and while a running target stays the same;
* **idle**: a terminal run seen unchanged waits 1.5 times longer each time, up to
  ``idle_interval``, and is back to ``interval`` as soon as it changes;
* **errors**: ``interval`` doubled with each error in a row, up to ``max_error_interval``;
  an error that asking again will not cure (401, 403, 404) waits the cap at once; the first
  answer after an error streak is back to ``interval``;
* **Retry-After**: a 429's ``retry_after`` is waited out whole, even past our own cap, up to
  :data:`MAX_SERVER_WAIT` (an hour; or ``max_error_interval`` when that is longer): a server
  may ask for a pause, not silence a target for good (``Retry-After: 1000000000`` is 31 years).
  :func:`server_wait` is the one place that bounds it;
* **jitter**: the base delay times a factor drawn uniformly from 0.5-1.5 after the first
  observation (to spread a fleet started at once over the interval), 0.9-1.1 after that;
* **batches**: a healthy target of a batching vendor waits ``interval`` times the factor its
  whole batch shares (one draw per request, :func:`jitter`), so an adapter's targets keep one
  pace and stay in one request; :func:`rides_along` says which ones join a batch being sent.
"""

from __future__ import annotations

import math
import random
from typing import Final, NamedTuple, Self

import attrs

from pipestatus.errors import (
    AuthError,
    ForbiddenError,
    NotFoundError,
    PipestatusError,
    RateLimitedError,
)
from pipestatus.model import Run

__all__ = [
    "FIRST_JITTER",
    "IDLE_GROWTH",
    "JITTER",
    "MAX_SERVER_WAIT",
    "PERMANENT",
    "Pace",
    "Pacing",
    "error_delay",
    "jitter",
    "next_poll",
    "rides_along",
    "server_wait",
]

#: Errors that will not go away by asking again soon: watched with the longest backoff.
PERMANENT: Final = (AuthError, ForbiddenError, NotFoundError)
#: How much longer an unchanged terminal target waits each time, up to ``idle_interval``.
IDLE_GROWTH: Final = 1.5
#: The first jitter spreads a fleet over the interval; later ones keep it spread.
FIRST_JITTER: Final = (0.5, 1.5)
JITTER: Final = (0.9, 1.1)
#: Doubling stops here (``interval * 2**16``): a float never overflows, whatever the streak.
_MAX_DOUBLINGS: Final = 16
#: The longest a server's ``Retry-After`` silences a target (unless ``max_error_interval`` is
#: longer): rate-limit windows are seconds to an hour, and a watch must come back.
MAX_SERVER_WAIT: Final = 3600.0


@attrs.frozen(kw_only=True)
class Pacing:
    """A watch's pace settings, validated; :meth:`of` fills the defaults."""

    interval: float
    idle_interval: float
    max_error_interval: float

    @classmethod
    def of(
        cls,
        interval: float,
        *,
        idle_interval: float | None = None,
        max_error_interval: float | None = None,
    ) -> Self:
        """``idle_interval`` and ``max_error_interval`` default to 10 * ``interval`` and are
        never below it."""
        if not (interval > 0 and math.isfinite(interval)):
            raise ValueError("interval must be a positive number of seconds")
        idle = idle_interval if idle_interval is not None else 10 * interval
        cap = max_error_interval if max_error_interval is not None else 10 * interval
        return cls(
            interval=interval,
            idle_interval=max(interval, idle),
            max_error_interval=max(interval, cap),
        )


class Pace(NamedTuple):
    """One target's pace: its base delay (before jitter), its errors in a row, and how many
    observations it had. (A named tuple: one is made per observation, and it is the cheapest
    immutable value to make.)"""

    delay: float
    failures: int = 0
    rounds: int = 0


def jitter(rounds: int, rng: random.Random) -> float:
    """The factor a delay is multiplied by, for a target observed ``rounds`` times so far."""
    low, high = FIRST_JITTER if rounds == 0 else JITTER
    return rng.uniform(low, high)


def server_wait(retry_after: float, pacing: Pacing) -> float:
    """How long a server's ``Retry-After`` silences a target: all of it, up to
    :data:`MAX_SERVER_WAIT` or ``max_error_interval``, whichever is longer."""
    return min(retry_after, max(MAX_SERVER_WAIT, pacing.max_error_interval))


def error_delay(failures: int, error: PipestatusError, pacing: Pacing) -> float:
    """The base delay after ``failures`` errors in a row, the last one ``error``."""
    cap = pacing.max_error_interval
    if isinstance(error, PERMANENT):
        delay = cap
    else:
        delay = min(cap, pacing.interval * 2 ** min(failures - 1, _MAX_DOUBLINGS))
    if isinstance(error, RateLimitedError) and error.retry_after is not None:
        delay = max(delay, server_wait(error.retry_after, pacing))  # the server said when
    return delay


def next_poll(
    pace: Pace,
    outcome: Run | PipestatusError,
    pacing: Pacing,
    *,
    unchanged: bool,
    rng: random.Random,
    batch_factor: float | None = None,
) -> tuple[Pace, float]:
    """A target's pace after ``outcome``, and the seconds until its next poll.

    ``unchanged``: ``outcome`` is the run seen last, unchanged (the tracker says so).
    ``batch_factor``: the jitter drawn for the batch request this target was polled in, for a
    target of a batching vendor (``None`` otherwise).
    """
    if isinstance(outcome, PipestatusError):
        failures = pace.failures + 1
        delay = error_delay(failures, outcome, pacing)
    else:
        failures = 0
        # Back to the normal pace after a change, and after an error streak (not its backoff).
        delay = pace.delay if unchanged and not pace.failures else pacing.interval
        if unchanged and outcome.status.is_terminal:
            delay = min(pacing.idle_interval, delay * IDLE_GROWTH)
    after = Pace(delay=delay, failures=failures, rounds=pace.rounds + 1)
    if batch_factor is not None and not failures:
        return after, pacing.interval * batch_factor  # one pace per adapter: stay in its batch
    return after, delay * jitter(pace.rounds, rng)


def rides_along(pace: Pace, due: float, now: float, pacing: Pacing) -> bool:
    """Whether a healthy target of a batching vendor, due at ``due``, joins a batch sent at
    ``now`` for its adapter's other targets: it does when due within one interval (added at
    another time or back from an error, it costs nothing in the same request and keeps that
    pace from then on)."""
    return not pace.failures and due <= now + pacing.interval
