"""pipestatus._time: every vendor time encoding to an aware UTC datetime, or None."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from pipestatus import _time
from pipestatus._logonce import LogOnce
from pipestatus._time import CST, from_epoch_ms, from_iso, parse_time

V5_RUN_START = datetime(2023, 3, 4, 8, 48, 8, tzinfo=UTC)


@pytest.fixture
def fresh_time_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad times are logged once per (vendor, field) per process: start from a clean memory."""
    monkeypatch.setattr(_time, "_bad_times", LogOnce(_time.logger))


def test_cst_is_plus_eight() -> None:
    """CST is UTC+08:00."""
    assert CST.utcoffset(None) == timedelta(hours=8)


GOOD = [
    pytest.param(
        "2025-05-17T11:02:25.000+08:00",
        datetime(2025, 5, 17, 3, 2, 25, tzinfo=UTC),
        id="iso-offset-ms",
    ),
    pytest.param(
        "2025-05-17T03:02:25Z", datetime(2025, 5, 17, 3, 2, 25, tzinfo=UTC), id="iso-zulu"
    ),
    pytest.param(
        "2025-05-17T03:02:25.123456+00:00",
        datetime(2025, 5, 17, 3, 2, 25, 123456, tzinfo=UTC),
        id="iso-micro",
    ),
    pytest.param(
        "2025-05-16T22:02:25-05:00",
        datetime(2025, 5, 17, 3, 2, 25, tzinfo=UTC),
        id="iso-negative-offset",
    ),
    pytest.param("2023-03-04 16:48:09", datetime(2023, 3, 4, 8, 48, 9, tzinfo=UTC), id="naive-cst"),
    pytest.param(
        "2023-03-04T00:30:00", datetime(2023, 3, 3, 16, 30, tzinfo=UTC), id="naive-cst-day-before"
    ),
    pytest.param(
        "  2023-03-04 16:48:09  ", datetime(2023, 3, 4, 8, 48, 9, tzinfo=UTC), id="padded"
    ),
    pytest.param(1677919688000, V5_RUN_START, id="epoch-ms-int"),
    pytest.param(1677919688000.0, V5_RUN_START, id="epoch-ms-float"),
    pytest.param(1677919688500, V5_RUN_START + timedelta(milliseconds=500), id="epoch-ms-frac"),
    pytest.param("1677919688000", V5_RUN_START, id="epoch-ms-digits"),
]


@pytest.mark.parametrize(("value", "expected"), GOOD)
def test_parse_time_good(value: Any, expected: datetime) -> None:
    """Readable times become the right instant, aware and in UTC."""
    parsed = parse_time(value, vendor="v", field="f")
    assert parsed == expected
    assert parsed is not None
    assert parsed.tzinfo is UTC


NOT_SET = [
    pytest.param(None, id="null"),
    pytest.param(0, id="zero"),
    pytest.param(-1, id="negative"),
    pytest.param("", id="empty"),
    pytest.param("   ", id="blank"),
]


@pytest.mark.parametrize("value", NOT_SET)
def test_parse_time_not_set(value: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Null, empty and non-positive epochs mean "not set": None, without a log line."""
    with caplog.at_level(logging.WARNING):
        assert parse_time(value, vendor="v-not-set", field="f") is None
    assert not caplog.records


GARBAGE = [
    pytest.param("yesterday", id="words"),
    pytest.param("2023-02-30 10:00:00", id="no-such-day"),
    pytest.param("2023-03-04 25:61:00", id="no-such-hour"),
    pytest.param("0001-01-01 00:00:00", id="before-year-one-in-utc"),
    pytest.param("9999-12-31T23:59:59-01:00", id="after-year-9999-in-utc"),
    pytest.param("2023/03/04 16:48:09", id="slashes"),
    pytest.param("\x00", id="nul"),
    pytest.param("\ud800", id="lone-surrogate"),
    pytest.param("9" * 18, id="epoch-digits-too-far"),
    pytest.param(10**30, id="huge-int"),
    pytest.param(1e300, id="huge-float"),
    pytest.param(math.inf, id="inf"),
    pytest.param(math.nan, id="nan"),
    pytest.param(True, id="boolean"),
    pytest.param([1677919688000], id="list"),
    pytest.param({"ms": 1677919688000}, id="object"),
]


@pytest.mark.parametrize("value", GARBAGE)
def test_parse_time_garbage(
    value: Any, fresh_time_log: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Unreadable values become None with one log line naming vendor and field, never raise."""
    with caplog.at_level(logging.WARNING):
        assert parse_time(value, vendor="vend", field="stage.start_time") is None
    (record,) = caplog.records
    assert "vend" in record.getMessage()
    assert "stage.start_time" in record.getMessage()


def test_bad_time_log_line_is_bounded(
    fresh_time_log: None, caplog: pytest.LogCaptureFixture
) -> None:
    """A huge unreadable value is cut short in the log line."""
    with caplog.at_level(logging.WARNING):
        assert parse_time("x" * 1_000_000, vendor="v", field="f") is None
    assert len(caplog.records[0].getMessage()) < 300


def test_bad_time_logged_once_per_field(
    fresh_time_log: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Bad times are logged once per (vendor, field), not once per value."""
    with caplog.at_level(logging.WARNING):
        parse_time("bad", vendor="v", field="a")
        parse_time("worse", vendor="v", field="a")
        parse_time("bad", vendor="v", field="b")
    assert len(caplog.records) == 2


def test_from_iso_naive_zone() -> None:
    """from_iso reads a naive value in the zone it is given."""
    utc_plus_2 = timezone(timedelta(hours=2))
    parsed = from_iso("2023-03-04 12:00:00", naive_zone=utc_plus_2, vendor="v", field="f")
    assert parsed == datetime(2023, 3, 4, 10, 0, tzinfo=UTC)
    naive_utc = parse_time("2023-03-04 12:00:00", vendor="v", field="f", naive_zone=UTC)
    assert naive_utc == datetime(2023, 3, 4, 12, 0, tzinfo=UTC)


def test_from_epoch_ms() -> None:
    """from_epoch_ms reads milliseconds since the epoch as UTC."""
    assert from_epoch_ms(1729178040000, vendor="v", field="f") == datetime(
        2024, 10, 17, 15, 14, tzinfo=UTC
    )
    assert from_epoch_ms(0, vendor="v", field="f") is None
