"""Vendor and configuration strings are made safe in one place before the terminal or a JSON
document sees them: control characters, lone surrogates and reordering controls are replaced,
and everything else (CJK, emoji sequences) is kept."""

from __future__ import annotations

import json
import logging
import pickle
import sys

import pytest

from pipestatus import Client, Job, Run, Stage, Status
from pipestatus.cli.config import Followed
from pipestatus.cli.records import pipeline_record
from pipestatus.cli.safe import REPLACEMENT, clean, clean_change, clean_error, clean_run
from pipestatus.cli.screen import CleanFormatter
from pipestatus.errors import AuthError, ResponseError, WaitTimeout
from pipestatus.model import Change, ChangeKind

HOSTILE = "\x1b]0;pwned\x07\x1b[2J\r\nFORGED\x9b31m\u202eevil\ud800\u2028"


@pytest.mark.parametrize(
    "char",
    [
        *(chr(code) for code in range(0x20)),
        "\x7f",
        *(chr(code) for code in range(0x80, 0xA0)),
        "\ud800",
        "\u2028",
        "\u2029",
        "\u202a",
        "\u202e",
        "\u2066",
        "\u2069",
    ],
    ids=lambda char: f"U+{ord(char):04X}",
)
def test_every_unsafe_code_point_is_replaced(char: str) -> None:
    """C0, DEL, C1, lone surrogates, line separators and bidi controls become U+FFFD."""
    assert clean(f"a{char}b") == f"a{REPLACEMENT}b"


@pytest.mark.parametrize(
    "text",
    ["后端构建流水线", "👨‍👩‍👧 family", "❤️ love", "café", "Ωmega", "tab-free text", ""],
)
def test_safe_text_is_kept_as_it_is(text: str) -> None:
    """CJK, emoji with their joiners and variation selectors, and accents pass unchanged."""
    assert clean(text) == text


def test_a_hostile_string_leaves_no_escape_and_encodes_as_utf8() -> None:
    """After cleaning, a string holds no ESC, CR, LF or C1 byte and encodes as UTF-8."""
    cleaned = clean(HOSTILE)
    encoded = cleaned.encode("utf-8")
    for byte in (b"\x1b", b"\r", b"\n", b"\x07", b"\xc2\x9b"):
        assert byte not in encoded
    assert "FORGED" in cleaned
    assert "pwned" in cleaned


def a_run(text: str) -> Run:
    job = Job(id=text, name=text, status=Status.FAILED, raw_status=text, url=text, ref=text)
    stage = Stage(id=text, name=text, order=0, status=Status.FAILED, raw_status=text, jobs=(job,))
    return Run(
        vendor="x",
        pipeline_id=text,
        run_id=text,
        number=1,
        status=Status.FAILED,
        raw_status=text,
        ref=text,
        sha=text,
        trigger=text,
        url=text,
        stages=(stage,),
    )


def test_a_run_is_cleaned_at_every_level() -> None:
    """Every string of the run, its stages and its jobs is cleaned; a clean run is returned
    as the same object."""
    cleaned = clean_run(a_run(HOSTILE))
    expected = clean(HOSTILE)
    assert {cleaned.pipeline_id, cleaned.run_id, cleaned.raw_status, cleaned.ref} == {expected}
    assert {cleaned.sha, cleaned.trigger, cleaned.url} == {expected}
    stage, job = cleaned.stages[0], cleaned.jobs[0]
    assert {stage.id, stage.name, stage.raw_status} == {expected}
    assert {job.id, job.name, job.raw_status, job.url, job.ref} == {expected}
    tidy = a_run("fine")
    assert clean_run(tidy) is tidy


def test_an_error_is_cleaned_and_keeps_its_class() -> None:
    """An error's message and attributes are cleaned in a copy of the same class (so a refused
    token is still an AuthError) without a traceback or chained exception."""
    try:
        try:
            raise ValueError("inner")
        except ValueError:
            raise AuthError(status=401, vendor="x", code=HOSTILE, message=HOSTILE) from None
    except AuthError as exc:
        error = exc
    cleaned = clean_error(error)
    assert type(cleaned) is AuthError
    assert (cleaned.status, cleaned.code, cleaned.message) == (401, clean(HOSTILE), clean(HOSTILE))
    assert str(cleaned) == clean(str(error))
    assert cleaned.__traceback__ is None
    assert cleaned.__context__ is None
    response = clean_error(ResponseError(HOSTILE, vendor="x", path=HOSTILE))
    assert (response.message, response.path) == (clean(HOSTILE), clean(HOSTILE))
    timeout = clean_error(WaitTimeout("gave up", last=a_run(HOSTILE)))
    assert isinstance(timeout.last, Run)
    assert timeout.last.ref == clean(HOSTILE)
    pickle.dumps(cleaned)  # still a well-formed exception


def test_a_change_is_cleaned_on_both_sides() -> None:
    """A change's previous and current observations are both cleaned."""
    target = Client().yunxiao("https://flow.example", token="t").target("1")
    change = Change(
        target=target,
        previous=AuthError(status=401, vendor="x", message=HOSTILE),
        current=a_run(HOSTILE),
        kind=ChangeKind.RECOVERED,
    )
    cleaned = clean_change(change)
    assert "\x1b" not in str(cleaned.previous)
    assert cleaned.run is not None
    assert cleaned.run.ref == clean(HOSTILE)


def test_a_json_record_of_a_cleaned_run_is_valid_utf8() -> None:
    """The JSON record of a cleaned run is a UTF-8 document with no control character."""
    target = Client().yunxiao("https://flow.example", token="t").target("1")
    item = Followed(
        label=clean(HOSTILE),
        account="a",
        vendor="x",
        ids=(("pipeline_id", "1"),),
        target=target,
        home="https://flow.example",
    )
    document = json.dumps(pipeline_record(item, clean_run(a_run(HOSTILE))), ensure_ascii=False)
    data = document.encode("utf-8")
    assert json.loads(data.decode("utf-8"))["ref"] == clean(HOSTILE)
    assert not any(byte < 0x20 for byte in data)


def test_log_lines_are_cleaned_but_a_traceback_keeps_its_line_breaks() -> None:
    """The command's log formatter replaces every control character of a message (a vendor's
    error quoted in a warning), line breaks included, and keeps a traceback's lines."""
    record = logging.LogRecord("pipestatus", logging.WARNING, "f", 1, "%s", (HOSTILE,), None)
    text = CleanFormatter("%(message)s").format(record)
    assert text == clean(HOSTILE)
    try:
        raise ValueError(HOSTILE)
    except ValueError:
        info = sys.exc_info()
    failed = logging.LogRecord("pipestatus", logging.ERROR, "f", 1, "boom", (), info)
    text = CleanFormatter("%(message)s").format(failed)
    assert text.startswith("boom\nTraceback (most recent call last):\n")
    assert "\x1b" not in text
    assert "\r" not in text
