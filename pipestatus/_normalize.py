"""Normalizer helpers shared by the vendors: reading times, deriving what a vendor omits,
ordering stages.

These run for every job of every payload of a poll, so each takes the common case first:
:func:`read_time` reads a well-formed epoch-milliseconds integer or ISO 8601 string itself and
hands anything else to :func:`pipestatus._time.parse_time` (which logs what it cannot read), and
:func:`ordered` leaves stages that already come in order as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Final, Protocol, TypeVar

from pipestatus._time import CST, parse_time
from pipestatus.status import Status

__all__ = ["derive_span", "first_set", "ordered", "read_time", "strip_quote"]

T = TypeVar("T")

#: China Standard Time as an ISO 8601 offset (what ``CST`` is).
_CST_OFFSET: Final = "+08:00"
#: 9999-12-31T23:59:59.999Z in epoch milliseconds: the last instant a datetime holds.
_MAX_MS: Final = 253_402_300_799_999


def read_time(value: object, vendor: str, field: str) -> datetime | None:
    """What ``parse_time(value, vendor=vendor, field=field)`` returns, faster for the values vendors
    really send: a positive epoch-milliseconds ``int``, or an ISO 8601 string (with an offset,
    or naive in China Standard Time). Anything else goes to ``parse_time`` itself."""
    if type(value) is int:
        if 0 < value <= _MAX_MS:
            try:
                return datetime.fromtimestamp(value / 1000, UTC)
            except (OverflowError, OSError, ValueError):
                pass
    elif type(value) is str and not value.isdigit():
        # (digits are epoch milliseconds to parse_time; fromisoformat reads them as a date)
        try:
            if len(value) == 19:  # naive "YYYY-MM-DD HH:MM:SS", as Huawei writes stage times
                try:  # parsed with the zone appended: datetime.replace(tzinfo=) costs more
                    return datetime.fromisoformat(value + _CST_OFFSET).astimezone(UTC)
                except ValueError:
                    pass  # another shape of 19 characters: read below
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=CST)
            return parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            pass
    return parse_time(value, vendor=vendor, field=field)


class _Spanned(Protocol):
    @property
    def started_at(self) -> datetime | None: ...

    @property
    def finished_at(self) -> datetime | None: ...


def derive_span(
    status: Status, children: Iterable[_Spanned]
) -> tuple[datetime | None, datetime | None]:
    """Start = earliest child start; end = latest child end, once ``status`` is terminal."""
    started: datetime | None = None
    finished: datetime | None = None
    for child in children:
        start, end = child.started_at, child.finished_at
        if start is not None and (started is None or start < started):
            started = start
        if end is not None and (finished is None or end > finished):
            finished = end
    return started, finished if status.is_terminal else None


def ordered(items: Sequence[T], sequence: Callable[[T], int | None]) -> Sequence[T]:
    """Sort by the vendor's sequence field, a missing one last, then by payload order."""
    keys = [sequence(item) for item in items]
    previous = -1
    for key in keys:  # already in order (the usual case): nothing to sort
        if key is None or key < previous:
            break
        previous = key
    else:
        return items
    keyed = [(key is None, key or 0, index) for index, key in enumerate(keys)]
    order = sorted(range(len(items)), key=keyed.__getitem__)
    return [items[index] for index in order]


def first_set(values: Iterable[T | None]) -> T | None:
    """The first value that is not ``None`` (or empty)."""
    return next((value for value in values if value), None)


def strip_quote(url: str | None) -> str | None:
    """Quirk repair: Huawei's v4 ``target_url`` values end with a stray literal ``"``."""
    if url is None:
        return None
    # rstrip, not a loop of slices: that was quadratic in the number of quotes.
    return url.strip().rstrip('"') or None
