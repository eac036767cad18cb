"""Normalizer helpers shared by the vendors: deriving what a vendor omits, ordering stages."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TypeVar

from pipestatus.status import Status

__all__ = ["derive_span", "first_set", "ordered", "strip_quote"]

T = TypeVar("T")


def derive_span(
    status: Status, spans: Iterable[tuple[datetime | None, datetime | None]]
) -> tuple[datetime | None, datetime | None]:
    """Start = earliest child start; end = latest child end, once ``status`` is terminal."""
    starts: list[datetime] = []
    ends: list[datetime] = []
    for start, end in spans:
        if start is not None:
            starts.append(start)
        if end is not None:
            ends.append(end)
    started = min(starts, default=None)
    finished = max(ends, default=None) if status.is_terminal else None
    return started, finished


def ordered(items: Sequence[T], sequence: Callable[[T], int | None]) -> list[T]:
    """Sort by the vendor's sequence field, a missing one last, then by payload order."""
    keyed = [
        (sequence(item) is None, sequence(item) or 0, index) for index, item in enumerate(items)
    ]
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
