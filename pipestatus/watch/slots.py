"""What keeps an overloaded watch fair and honest (the scheduler, :mod:`pipestatus.watch.scheduler`,
uses both):

* :class:`Slots`: the requests a watch has in flight on each transport, against that
  transport's ``max_concurrency``. The scheduler sends a due target only while a slot is free,
  and takes due targets most overdue first, so each freed slot goes to the target that waited
  longest and every target is answered in turn, however far behind the watch falls. (Sending
  every due target at once, as 0.1 did, left the order to the transport's queue, where the
  workers of small, recent launches took slots from big, old ones: under 10,000 targets at a
  1 s interval some were answered 21 times in 30 s, 2,162 never.) A batching adapter's targets
  cost one request per ``batch_size`` of them.
* :class:`Lateness`: whether the polls go out in time. A poll sent more than one interval after
  it was due is late: counted (``late_polls``), the lateness of the last launch kept (``lag``),
  and falling behind logged at WARNING (again at most every :data:`BEHIND_LOG_EVERY` seconds
  while it lasts), catching up at INFO.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Final

from pipestatus.vendors._base import Adapter

__all__ = ["BEHIND_LOG_EVERY", "Lateness", "Slots"]

logger = logging.getLogger("pipestatus.client")

#: While a watch cannot keep its pace, it says so at most this often (seconds).
BEHIND_LOG_EVERY: Final = 60.0


class Slots:
    """Requests in flight per transport; see the module docstring."""

    __slots__ = ("_flying", "_requests")

    def __init__(self) -> None:
        self._flying: dict[Adapter[Any], int] = {}  # targets in flight, per adapter
        self._requests: dict[object, int] = {}  # requests in flight, per transport

    def full(self, source: Adapter[Any]) -> bool:
        """Whether ``source``'s transport has no slot free."""
        transport = source.transport
        return self._requests.get(transport, 0) >= transport.max_concurrency

    def take(self, source: Adapter[Any]) -> None:
        """One more target of ``source`` in flight (a request more when it starts a batch)."""
        flying = self._flying.get(source, 0)
        self._flying[source] = flying + 1
        if flying % source.batch_size == 0:
            transport = source.transport
            self._requests[transport] = self._requests.get(transport, 0) + 1

    def free(self, source: Adapter[Any]) -> None:
        """One target of ``source`` no longer in flight."""
        flying = self._flying[source] = self._flying[source] - 1
        if flying % source.batch_size == 0:
            self._requests[source.transport] -= 1

    @property
    def limit(self) -> int:
        """The largest ``max_concurrency`` of the transports in use (for messages)."""
        return max((source.transport.max_concurrency for source in self._flying), default=0)


class Lateness:
    """Whether a watch's polls go out in time; see the module docstring."""

    __slots__ = ("_behind", "_said", "interval", "lag", "late_polls")

    def __init__(self, interval: float) -> None:
        self.interval = interval
        #: Polls sent more than one interval after they were due.
        self.late_polls = 0
        #: How late, in seconds, the most overdue poll of the last launch went out.
        self.lag = 0.0
        self._behind = False
        self._said = -math.inf

    def sent(self, now: float, lag: float, late: int, *, targets: int, limit: int) -> None:
        """A launch went out at ``now``: its most overdue poll ``lag`` seconds late, ``late``
        of its polls more than an interval late."""
        self.lag = lag
        self.late_polls += late
        if late:
            if not self._behind or now - self._said >= BEHIND_LOG_EVERY:
                logger.warning(
                    "the watch cannot keep its %gs pace: polls go out up to %.1f s late "
                    "(%d late so far, %d targets, at most %d requests at once); poll less "
                    "often or allow more concurrency",
                    self.interval,
                    lag,
                    self.late_polls,
                    targets,
                    limit,
                )
                self._said = now
            self._behind = True
        elif self._behind:
            self._behind = False
            logger.info("the watch keeps its %gs pace again", self.interval)
