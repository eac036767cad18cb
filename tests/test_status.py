"""The canonical Status and the rule that derives a parent's status from its children."""

from __future__ import annotations

import enum
import itertools
import logging

import pytest

from pipestatus.status import SEVERITY, Status, StatusTable, aggregate

P, R, OK, F, C, S, T = (
    Status.PENDING,
    Status.RUNNING,
    Status.SUCCESS,
    Status.FAILED,
    Status.CANCELED,
    Status.SKIPPED,
    Status.TIMEDOUT,
)
TERMINAL = [OK, F, C, S, T]


def test_exactly_seven_values() -> None:
    """Status has exactly the seven values of DESIGN.md, in that order."""
    assert [(s.name, s.value) for s in Status] == [
        ("PENDING", "pending"),
        ("RUNNING", "running"),
        ("SUCCESS", "success"),
        ("FAILED", "failed"),
        ("CANCELED", "canceled"),
        ("SKIPPED", "skipped"),
        ("TIMEDOUT", "timedout"),
    ]


def test_is_str_enum() -> None:
    """Status is a StrEnum: each member equals and formats as its value."""
    assert issubclass(Status, enum.StrEnum)
    assert Status.FAILED == "failed"  # type: ignore[comparison-overlap]
    assert f"{Status.TIMEDOUT}" == "timedout"
    assert Status("canceled") is Status.CANCELED


@pytest.mark.parametrize(
    ("status", "terminal"),
    [(P, False), (R, False), (OK, True), (F, True), (C, True), (S, True), (T, True)],
    ids=lambda v: str(v),
)
def test_is_terminal(status: Status, terminal: bool) -> None:
    """Success, failed, canceled, skipped and timedout are terminal; pending and running not."""
    assert status.is_terminal is terminal


def test_severity_order() -> None:
    """Severity runs failed > timedout > canceled > success > skipped."""
    assert SEVERITY == (F, T, C, OK, S)


AGGREGATE = [
    pytest.param([], P, id="no-children"),
    pytest.param([P], P, id="pending"),
    pytest.param([P, P], P, id="all-pending"),
    pytest.param([R], R, id="running"),
    pytest.param([P, R], R, id="pending-running"),
    pytest.param([P, OK], R, id="pending-success-is-running"),
    pytest.param([P, F], R, id="pending-failed-is-running"),
    pytest.param([R, F], R, id="running-failed-is-running"),
    pytest.param([OK], OK, id="success"),
    pytest.param([S], S, id="skipped"),
    pytest.param([S, S, S], S, id="all-skipped"),
    pytest.param([OK, S], OK, id="success-over-skipped"),
    pytest.param([OK, C], C, id="canceled-over-success"),
    pytest.param([C, T], T, id="timedout-over-canceled"),
    pytest.param([T, F], F, id="failed-over-timedout"),
    pytest.param([S, OK, C, T, F], F, id="all-terminal-failed-wins"),
    pytest.param([S, OK, C], C, id="canceled-wins"),
    pytest.param([OK, OK], OK, id="all-success"),
]


@pytest.mark.parametrize(("children", "expected"), AGGREGATE)
def test_aggregate_table(children: list[Status], expected: Status) -> None:
    """aggregate follows the table: worst terminal, else running if any progress, else pending."""
    assert aggregate(children) is expected


def test_aggregate_takes_any_iterable() -> None:
    """aggregate reads a one-shot generator."""
    assert aggregate(s for s in [OK, F]) is F


@pytest.mark.parametrize("size", [1, 2, 3])
def test_aggregate_exhaustive(size: int) -> None:
    """For every combination of children, aggregate matches the rule as written in DESIGN.md."""
    for children in itertools.product(list(Status), repeat=size):
        if all(c.is_terminal for c in children):
            expected = next(s for s in (F, T, C, OK, S) if s in children)
        elif any(c is R or c.is_terminal for c in children):
            expected = R
        else:
            expected = P
        assert aggregate(children) is expected, children
        assert aggregate(reversed(children)) is expected  # order does not matter


def test_table_case_insensitive_and_unknown(caplog: pytest.LogCaptureFixture) -> None:
    """A table matches words in any case; an unknown word is pending and logged once."""
    table = StatusTable("test_vendor_status", {"Done": OK})
    word = f"never-seen-{id(caplog)}"
    with caplog.at_level(logging.WARNING):
        assert table("DONE") is OK
        assert table("done") is OK
        assert table(word) is P
        assert table(word) is P
    assert [r.getMessage() for r in caplog.records].count(
        f"unknown test_vendor_status status word {word!r}, treated as pending"
    ) == 1
    assert "test_vendor_status" in repr(table)


def test_unknown_word_log_line_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    """A huge unknown word is cut short in its log line (raw_status still keeps all of it)."""
    table = StatusTable("test_vendor_huge", {"done": OK})
    word = f"{id(caplog)}" + "Z" * 100_000
    with caplog.at_level(logging.WARNING):
        assert table(word) is P
    (record,) = [r for r in caplog.records if "test_vendor_huge" in r.getMessage()]
    assert len(record.getMessage()) < 300
