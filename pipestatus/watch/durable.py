"""The watch's side of a state store: what waits to be written, acknowledged and loaded, one
store operation at a time, and what happens when the store cannot be reached.

The :class:`Ledger` never blocks polling: the scheduler hands it writes (a change and the
memory it leaves), acknowledgements (the change last yielded, once its consumer asks for the
next) and keys to load, and starts :meth:`Ledger.start` as a task beside the polls. One task
commits the acknowledgements and writes queued so far in one transaction, then loads the keys
queued. When the store is unavailable the task ends with nothing done: everything stays
queued, in order, and is retried with backoff (full jitter, ``retry_base`` doubling up to
``retry_max`` seconds), while the watch goes on polling; :class:`Outage` says so once per
outage, and once when it is over. A :class:`~pipestatus.errors.StoreError` (a corrupt file)
ends the watch.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence

import attrs

from pipestatus.errors import StoreError, StoreUnavailableError
from pipestatus.model import Change
from pipestatus.watch.records import Destination, Store, Stored, Write

__all__ = ["Done", "Ledger", "Outage"]

#: What one operation carries: the writes (with their changes), the acknowledgements, the keys.
Batch = tuple[list[tuple[Write, Change | None]], list[str], list[str]]

logger = logging.getLogger("pipestatus.watch")
#: Outages and recoveries, apart, so a command can say them without logging everything.
outage_logger = logging.getLogger("pipestatus.outage")


class Outage:
    """Logs a store outage once when it starts (WARNING) and once when it ends (INFO), however
    many operations fail in between."""

    def __init__(
        self,
        what: str,
        meanwhile: str = "polling goes on, changes are held back and retried",
        after: str = "{held} held changes go out now",
    ) -> None:
        self.what = what
        self.meanwhile = meanwhile
        self.after = after
        self.down = False

    def failed(self, error: StoreUnavailableError) -> None:
        if not self.down:
            self.down = True
            outage_logger.warning("%s unavailable (%s); %s", self.what, error, self.meanwhile)

    def recovered(self, held: int = 0) -> None:
        if self.down:
            self.down = False
            outage_logger.info("%s reachable again; %s", self.what, self.after.format(held=held))


@attrs.define
class Done:
    """What one store operation achieved: the writes it committed (with their changes) and
    those refused because another watcher got there first (what is stored instead, by key),
    and the records it loaded (``None``: nothing stored for that key)."""

    applied: list[tuple[Write, Change | None]] = attrs.Factory(list)
    conflicts: dict[str, Stored] = attrs.Factory(dict)
    loaded: dict[str, Stored | None] = attrs.Factory(dict)
    #: Loop time the operation started: what it read may be newer than any poll sent before.
    started: float = 0.0


class Ledger:
    """Queues for one store, worked off one operation at a time (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        publish: Destination | None = None,
        outage: Outage | None = None,
        retry_base: float = 0.1,
        retry_max: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.publish = publish
        self.outage = outage or Outage("state store")
        self.retry_base = retry_base
        self.retry_max = retry_max
        self._rng = rng or random.Random()  # noqa: S311 - retry jitter
        self._writes: list[tuple[Write, Change | None]] = []
        self._acks: list[str] = []
        self._loads: dict[str, None] = {}  # keys, in order
        self._sent: Batch | None = None
        self.task: asyncio.Task[Done] | None = None
        self.opened = False
        self._failures = 0
        self.retry_at = 0.0
        self._started = 0.0

    # --- queues -----------------------------------------------------------------------------

    def hold(self, write: Write, change: Change | None) -> None:
        """Commit ``write`` (and then yield ``change``) as soon as the store takes it."""
        self._writes.append((write, change))

    def ack(self, event_id: str) -> None:
        """The consumer is done with this event: drop it from the outbox."""
        self._acks.append(event_id)

    def load(self, key: str) -> None:
        self._loads[key] = None

    def forget(self, key: str) -> None:
        """Do not load ``key`` after all (its target is no longer watched here)."""
        self._loads.pop(key, None)

    def drop(self, key: str) -> None:
        """Drop the writes still queued for ``key``: they follow one the store refused."""
        self._writes = [item for item in self._writes if item[0].key != key]

    @property
    def held(self) -> int:
        """Writes not yet committed (queued or under way)."""
        return len(self._writes) + (len(self._sent[0]) if self._sent else 0)

    @property
    def acking(self) -> bool:
        """Acknowledgements not yet committed: no further change may be yielded before they
        are (so a crash repeats at most the one change in hand)."""
        return bool(self._acks) or bool(self._sent and self._sent[1])

    def wants(self, now: float) -> bool:
        """Whether to start an operation now."""
        if self.task is not None or now < self.retry_at:
            return False
        return bool(self._writes or self._acks or self._loads) or not self.opened

    # --- operations ---------------------------------------------------------------------------

    def start(self, now: float) -> asyncio.Task[Done]:
        """Start one operation on everything queued so far."""
        assert self.task is None
        sent = (self._writes, self._acks, list(self._loads))
        self._writes, self._acks, self._loads = [], [], {}
        self._sent = sent
        self._started = now  # the loop time of the caller's iteration (see Done.started)
        self.task = asyncio.create_task(self._run(*sent))
        return self.task

    async def _run(
        self, writes: list[tuple[Write, Change | None]], acks: list[str], keys: list[str]
    ) -> Done:
        if not self.opened:
            await self.store.open()
            self.opened = True
        done = Done()
        if writes or acks:
            results = await self.store.commit(
                [write for write, _ in writes], acks=acks, publish=self.publish
            )
            for (write, change), result in zip(writes, results, strict=True):
                if result is None:
                    done.applied.append((write, change))
                else:
                    done.conflicts[write.key] = result
        if keys:
            stored = await self.store.load(keys)
            done.loaded = {key: stored.get(key) for key in keys}
        return done

    def finish(self, now: float) -> Done | None:
        """The finished operation's result; ``None`` when the store was unavailable (all of it
        is queued again, in front, and retried after a backoff). A ``StoreError`` raises."""
        task, sent = self.task, self._sent
        assert task is not None
        assert sent is not None
        self.task, self._sent = None, None
        try:
            done = task.result()
        except StoreUnavailableError as exc:
            self._requeue(sent)
            self._failures += 1
            self.outage.failed(exc)
            self.retry_at = now + self._backoff()
            return None
        except StoreError:
            raise
        self._failures = 0
        self.retry_at = 0.0
        self.outage.recovered(len(done.applied))
        done.started = self._started
        return done

    def _requeue(self, sent: Batch) -> None:
        writes, acks, keys = sent
        self._writes = writes + self._writes
        self._acks = acks + self._acks
        self._loads = dict.fromkeys([*keys, *self._loads])

    def _backoff(self) -> float:
        ceiling = min(self.retry_max, self.retry_base * 2 ** min(self._failures - 1, 16))
        return self._rng.uniform(ceiling / 2, ceiling)

    async def flush(self, *, within: float = 2.0) -> None:
        """Commit what is queued (writes and acknowledgements, not loads) within ``within``
        seconds if the store takes it; nothing is yielded any more. What does not make it is
        observed again by the next watch."""
        self._loads.clear()
        try:
            async with asyncio.timeout(within):
                if self.task is not None:
                    await asyncio.wait([self.task])
                    self._settle()
                if self.opened and (self._writes or self._acks):
                    self.start(asyncio.get_running_loop().time())
                    assert self.task is not None
                    await asyncio.wait([self.task])
                    self._settle()
        except TimeoutError:
            pass
        held = self.held
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task, self._sent = None, None
        if held:
            logger.warning("%s: %d changes not written at close", self.outage.what, held)

    async def close(self) -> None:
        """Close the store, if this ledger opened it."""
        if self.opened:
            self.opened = False
            try:
                await self.store.aclose()
            except StoreUnavailableError as exc:
                logger.debug("%s: closing: %s", self.outage.what, exc)

    def _settle(self) -> None:
        """Take a finished operation's result at close (nothing is yielded any more)."""
        try:
            self.finish(0.0)
        except StoreError as exc:
            logger.warning("%s: %s", self.outage.what, exc)

    def pending_writes(self) -> Sequence[Write]:
        """The writes queued and not yet sent (for tests and the benchmark)."""
        return [write for write, _ in self._writes]
