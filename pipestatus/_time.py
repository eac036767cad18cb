"""Vendor times to aware UTC datetimes.

Three encodings reach us: ISO 8601 with an offset (v4), naive ``YYYY-MM-DD HH:MM:SS`` strings
in China Standard Time (v5 stages), and epoch milliseconds (v5 runs, Flow runs). A value that
cannot be read becomes ``None`` with a log line: a bad time never costs a run.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from pipestatus._logonce import LogOnce

__all__ = ["CST", "from_epoch_ms", "from_iso", "parse_time"]

logger = logging.getLogger(__name__)
_bad_times = LogOnce(logger)

#: China Standard Time, the zone of Huawei Cloud's naive time strings.
CST: Final = timezone(timedelta(hours=8), "CST")


def _bad(vendor: str, field: str, value: object) -> None:
    _bad_times.warning((vendor, field), "%s: unreadable time in %s: %.80r", vendor, field, value)


def from_iso(value: str, *, naive_zone: timezone, vendor: str, field: str) -> datetime | None:
    """Read ISO 8601 (``T`` or space separated); a value without offset is in ``naive_zone``."""
    if not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        _bad(vendor, field, value)
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=naive_zone)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        _bad(vendor, field, value)
        return None


def from_epoch_ms(value: int | float, *, vendor: str, field: str) -> datetime | None:
    """Read epoch milliseconds; 0 and negative values mean "not set" on these vendors."""
    if value <= 0:
        return None
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        _bad(vendor, field, value)
        return None


def parse_time(
    value: object, *, vendor: str, field: str, naive_zone: timezone = CST
) -> datetime | None:
    """Any of the three encodings (or ``None``) to an aware UTC datetime, or ``None``."""
    if value is None:
        return None
    if isinstance(value, bool):
        _bad(vendor, field, value)
        return None
    if isinstance(value, int | float):
        if value != value:  # NaN
            _bad(vendor, field, value)
            return None
        return from_epoch_ms(value, vendor=vendor, field=field)
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.isascii() and stripped.isdigit() and len(stripped) <= 18:
            return from_epoch_ms(int(stripped), vendor=vendor, field=field)
        return from_iso(value, naive_zone=naive_zone, vendor=vendor, field=field)
    _bad(vendor, field, value)
    return None
