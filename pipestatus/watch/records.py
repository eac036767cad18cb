"""What a state store keeps and the small protocol a watch calls (the stores themselves are in
:mod:`pipestatus.store`, the streams in :mod:`pipestatus.stream`). Pure: no I/O here.

Per target a store holds one :class:`Record` (the tracker's :class:`~pipestatus.watch.tracker.
Memory`, a version, the observation last yielded and when the remembered run started) and the
:class:`Event` s committed but not yet acknowledged by the watch's consumer (the outbox). A
watch calls four methods:

* ``open()`` / ``aclose()`` (counted: a store opened twice closes on the second ``aclose``);
* ``load(keys)``: each key's :class:`Stored` (record and outbox), absent keys left out;
* ``commit(writes, acks=..., publish=...)``: in one transaction, acknowledge events (drop them
  from the outbox), then apply each :class:`Write` whose ``version`` is still the stored one
  (compare and set) with its event into the outbox (and, with ``publish``, onto that stream);
  returns, per write, ``None`` when applied, else what is stored instead (a conflict: another
  watcher advanced that target first). A write whose key has no record is applied whatever its
  version: the store lost its data (a Redis restarted without persistence), and the watch's
  own memory is the best there is. A write that is already applied (the same version and event
  ID: a retry after a lost answer) counts as applied, once.

A store raises :class:`~pipestatus.errors.StoreUnavailableError` when it cannot be reached now
(the watch retries) and :class:`~pipestatus.errors.StoreError` when it cannot be used at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import attrs

from pipestatus.errors import PipestatusError
from pipestatus.model import ChangeKind, Run
from pipestatus.watch.tracker import Memory

if TYPE_CHECKING:
    from pipestatus.watch.tracker import Signature

__all__ = [
    "Destination",
    "Event",
    "Outcome",
    "Publisher",
    "Record",
    "Shared",
    "Store",
    "Stored",
    "Write",
    "event_id",
]

Outcome = Run | PipestatusError


@attrs.frozen(kw_only=True)
class Record:
    """What a store remembers of one target."""

    memory: Memory
    #: How many writes made this record (0: never written); a write replaces version N with N+1.
    version: int = 0
    #: The observation last yielded (the next change's ``previous``).
    shown: Outcome | None = None
    #: When the remembered run (``memory.run``) started: where a history read starts.
    since: datetime | None = None


@attrs.frozen(kw_only=True)
class Event:
    """One change as a store keeps it (and a stream carries it): a stable ``id``, the target's
    key, the version it made, and the change itself."""

    #: Derived from the change (:func:`event_id`): the same change committed twice has one ID.
    id: str
    key: str
    #: The version of the target's record this change made.
    seq: int
    kind: ChangeKind
    previous: Outcome | None
    current: Outcome
    #: When the watch observed it (aware UTC).
    at: datetime


@attrs.frozen(kw_only=True)
class Stored:
    """A target's record and its outbox: events committed and not acknowledged, oldest first."""

    record: Record
    pending: tuple[Event, ...] = ()


@attrs.frozen(kw_only=True)
class Write:
    """Replace ``key``'s record of version ``version`` with ``record`` (of ``version + 1``),
    and put ``event`` (if any) into the outbox."""

    key: str
    version: int
    record: Record
    event: Event | None = None


@attrs.frozen(kw_only=True)
class Destination:
    """Where a commit also appends its events: a stream on one server, trimmed to ``maxlen``.
    ``server`` identifies the server (no password), so a store can tell whether one
    transaction holds both."""

    server: str
    stream: str
    maxlen: int


@runtime_checkable
class Store(Protocol):
    """What a watch needs of a state store; see the module docstring."""

    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def load(self, keys: Sequence[str]) -> dict[str, Stored]: ...

    async def commit(
        self,
        writes: Sequence[Write],
        *,
        acks: Sequence[str] = (),
        publish: Destination | None = None,
    ) -> list[Stored | None]: ...


@runtime_checkable
class Shared(Store, Protocol):
    """A store several watchers share (Redis): its members register with an expiring
    heartbeat. ``heartbeat`` is the period within which a dead member's targets are taken
    over; ``member`` is this process's name among them."""

    @property
    def member(self) -> str: ...

    @property
    def heartbeat(self) -> float | None: ...

    async def beat(self) -> tuple[str, ...]:
        """Renew this member, drop expired ones; the live members, sorted."""
        ...

    async def leave(self) -> None:
        """Deregister at once (a clean stop hands the targets over without waiting)."""
        ...


@runtime_checkable
class Publisher(Protocol):
    """What ``watch(..., publish=...)`` takes: a stream a store can append to in the same
    transaction as the state advance."""

    @property
    def destination(self) -> Destination: ...

    def state_store(self) -> Store:
        """The store that shares this stream's transactions, for ``publish=`` without
        ``store=``."""
        ...

    def check(self, store: Store) -> None:
        """``ValueError`` unless ``store`` can append to this stream in its transactions."""
        ...


def event_id(key: str, version: int, kind: ChangeKind, what: Signature | tuple[str, str]) -> str:
    """A change's stable ID: the target, the version of the record it changed, its kind and
    what it saw (a run's signature or an error's class and message). The same change from the
    same record (a retry, a second replica seeing it too) has the same ID; the same-looking
    change later (a flapping status) has another."""
    text = json.dumps([key, version, kind.value, what], separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
