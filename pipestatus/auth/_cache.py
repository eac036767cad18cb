"""Caches of what credentials fetch: :class:`Renewing` (a token, temporary keys: renewed by
margin before they expire, or after a refusal) and :class:`Once` (a project ID: fetched once).
Both keep one fetch in flight, however many requests wait for it, and share its outcome.

Margins: a token is renewed when ``max(1 h, 5 % of its lifetime)`` is left (never more than
half its lifetime, so a short-lived token is still used); temporary keys when the SDK's
40 minutes are left (again at most half their lifetime).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Final, Generic, Protocol, TypeVar

from pipestatus._sansio import Sealed, Sender
from pipestatus.auth._base import HIDDEN

__all__ = ["KEYS_THRESHOLD", "Expiring", "Once", "Renewing", "keys_margin", "token_margin"]

#: The SDK's own threshold for temporary keys (``_DEFAULT_EXPIRATION_THRESHOLD_SECONDS``).
KEYS_THRESHOLD: Final = timedelta(minutes=40)


class Expiring(Protocol):
    """Something IAM issued: when it was received and when it must be renewed by."""

    @property
    def received_at(self) -> datetime: ...

    @property
    def lifetime(self) -> timedelta: ...

    @property
    def ident(self) -> str:
        """What a rejected request shows of it: the token itself, or the access key."""
        ...

    @property
    def secrets(self) -> tuple[str, ...]: ...


def token_margin(lifetime: timedelta) -> timedelta:
    """When to renew a token: ``max(1 h, 5 % of its lifetime)`` before it expires, at most
    half its lifetime (a 24 h token at 22 h 48 min, a 2 s one after 1 s)."""
    return min(max(timedelta(hours=1), lifetime * 0.05), lifetime / 2)


def keys_margin(lifetime: timedelta) -> timedelta:
    """When to renew temporary keys: the SDK's 40 minutes before expiry, at most half their
    lifetime."""
    return min(KEYS_THRESHOLD, lifetime / 2)


E = TypeVar("E", bound=Expiring)


class Renewing(Generic[E]):
    """One value IAM issued, fetched on first use and again once it is within ``margin`` of
    its expiry (or after the service refused it). One fetch is in flight at a time: every
    request that needs the value meanwhile awaits that fetch, and shares its outcome (a
    refused password is one request to IAM, however many polls wait)."""

    __slots__ = ("_clock", "_fetch", "_margin", "_pending", "_seen", "_value")

    def __init__(
        self,
        fetch: Callable[[Sender, datetime], Awaitable[E]],
        *,
        clock: Callable[[], datetime],
        margin: Callable[[timedelta], timedelta],
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._margin = margin
        self._value: E | None = None
        self._pending: asyncio.Future[E] | None = None
        self._seen: list[str] = []  # recent secrets, hidden in vendor text too

    def _fresh(self) -> E | None:
        value = self._value
        if value is None:
            return None
        if self._clock() >= value.received_at + value.lifetime - self._margin(value.lifetime):
            return None
        return value

    @property
    def current(self) -> E | None:
        """The value held now, stale or not (``None`` before the first fetch)."""
        return self._value

    async def get(self, sender: Sender) -> E:
        """The value, fetched first if there is none or it is due for renewal."""
        value = self._fresh()
        return value if value is not None else await self._flight(sender)

    async def renew(self, stale: Sealed[str | None], sender: Sender) -> E:
        """A new value after the service refused the one whose ``ident`` is ``stale`` (sealed:
        a token must not sit in a traceback frame's locals), unless another request renewed
        it already."""
        value = self._value
        if value is not None and value.ident != stale.value and self._pending is None:
            return value
        return await self._flight(sender)

    async def _flight(self, sender: Sender) -> E:
        pending = self._pending
        if pending is None or pending.get_loop() is not asyncio.get_running_loop():
            pending = self._pending = asyncio.ensure_future(self._run(sender))
            pending.add_done_callback(_consume)
        return await asyncio.shield(pending)

    async def _run(self, sender: Sender) -> E:
        try:
            value = await self._fetch(sender, self._clock())
        finally:
            self._pending = None
        self._value = value
        self._seen = [*self._seen[-6:], *value.secrets]
        return value

    def hide(self, text: str) -> str:
        for secret in self._seen:
            if secret in text:
                text = text.replace(secret, HIDDEN)
        return text


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve a fetch's failure even when every waiter has gone (no "never retrieved")."""
    if not future.cancelled():
        future.exception()


T = TypeVar("T")


class Once(Generic[T]):
    """A value fetched on first use and kept (a project ID): one fetch in flight, whose outcome
    every waiter shares; a failure is not kept, so the next use asks again."""

    __slots__ = ("_fetch", "_pending", "_value")

    def __init__(self, fetch: Callable[[Sender], Awaitable[T]]) -> None:
        self._fetch = fetch
        self._value: T | None = None
        self._pending: asyncio.Future[T] | None = None

    async def get(self, sender: Sender) -> T:
        if self._value is not None:
            return self._value
        pending = self._pending
        if pending is None or pending.get_loop() is not asyncio.get_running_loop():
            pending = self._pending = asyncio.ensure_future(self._run(sender))
            pending.add_done_callback(_consume)
        return await asyncio.shield(pending)

    async def _run(self, sender: Sender) -> T:
        try:
            self._value = await self._fetch(sender)
        finally:
            self._pending = None
        return self._value
