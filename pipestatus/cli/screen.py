"""Where the command writes, and how: the consoles of standard output and standard error,
whether they take colour and live redraws, data lines and JSON documents on standard output,
problems and warnings on standard error.

Colour (:func:`use_color`): ``--color always`` and ``--color never`` decide; ``auto`` (the
default) colours a terminal unless ``NO_COLOR`` is set to anything but the empty string
(no-color.org) or ``TERM`` is ``dumb``; ``FORCE_COLOR`` (set and not empty) colours even a pipe.
Live redraws (:func:`can_redraw`) need a terminal that is not ``dumb``, whatever the colour.

Every console here is made with markup, emoji codes and highlighting off, so nothing a vendor
sends is ever read as rich markup or coloured by a guess; the strings themselves were cleaned on
the way in (:mod:`pipestatus.cli.safe`).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal, TextIO

from rich.console import Console, RenderableType
from rich.text import Text

from pipestatus.cli.safe import clean, clean_lines

__all__ = [
    "COLOR_CHOICES",
    "CleanFormatter",
    "can_redraw",
    "make_console",
    "out",
    "print_lines",
    "render_lines",
    "say_problems",
    "use_color",
    "warn",
    "write_json",
]

ColorChoice = Literal["auto", "always", "never"]
COLOR_CHOICES: Final = ("auto", "always", "never")
#: The width a console off a terminal lays out to: wide enough that no line is ever cut.
UNBOUNDED: Final = 10_000


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (ValueError, OSError):  # closed, or not a real stream
        return False


def use_color(
    stream: TextIO, choice: str = "auto", environ: Mapping[str, str] | None = None
) -> bool:
    """Whether ``stream`` takes colour (see the module docstring)."""
    env = os.environ if environ is None else environ
    if choice == "always":
        return True
    if choice == "never":
        return False
    if env.get("NO_COLOR", ""):
        return False
    if env.get("FORCE_COLOR", ""):
        return True
    return _isatty(stream) and env.get("TERM", "") != "dumb"


def can_redraw(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``stream`` is a terminal that can be redrawn in place (not ``TERM=dumb``)."""
    env = os.environ if environ is None else environ
    return _isatty(stream) and env.get("TERM", "") not in ("dumb", "unknown")


def make_console(
    stream: TextIO,
    *,
    color: str = "auto",
    width: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> Console:
    """A console on ``stream``: on a terminal, as wide as the terminal (or ``width``); off a
    terminal, plain lines as long as they need (``width`` sets a limit)."""
    terminal = can_redraw(stream, environ)
    colored = use_color(stream, color, environ)
    if not terminal and width is None:
        width = UNBOUNDED
    return Console(
        file=stream,
        force_terminal=terminal,
        force_interactive=terminal,
        color_system="standard" if colored else None,
        no_color=not colored,
        width=width,
        markup=False,
        emoji=False,
        highlight=False,
        legacy_windows=False,
        soft_wrap=False,
    )


def render_lines(console: Console, renderable: RenderableType) -> list[Text]:
    """``renderable`` laid out on ``console``, one ``Text`` per line, trailing blanks cut."""
    lines = console.render_lines(renderable, console.options, pad=False)
    made = []
    for line in lines:
        text = Text()
        for segment in line:
            if not segment.control:
                text.append(segment.text, segment.style)
        text.rstrip()
        made.append(text)
    return made


def print_lines(console: Console, renderable: RenderableType) -> None:
    """Print ``renderable`` on ``console`` with no trailing blanks on any line."""
    for line in render_lines(console, renderable):
        console.print(line, soft_wrap=True)
    console.file.flush()


def out(line: str = "") -> None:
    """One line of data on standard output, flushed (``line`` is text pipestatus made from
    clean parts)."""
    print(line, flush=True)


def write_json(document: Any, *, indent: int | None = None) -> None:
    """One JSON document (or JSON Lines record) on standard output, as UTF-8 bytes whatever
    the locale says."""
    text = json.dumps(document, indent=indent, ensure_ascii=False)
    stream = sys.stdout
    stream.flush()
    buffer = getattr(stream, "buffer", None)
    if buffer is None:  # a text-only stream (a test's capture): let it encode
        stream.write(text + "\n")
    else:
        buffer.write((text + "\n").encode("utf-8", errors="replace"))
        buffer.flush()


def say_problems(lines: Iterable[str]) -> None:
    """Each problem as one ``pipestatus: error: ...`` line on standard error."""
    for line in lines:
        print(f"pipestatus: error: {clean(line)}", file=sys.stderr, flush=True)


def warn(line: str) -> None:
    """One ``pipestatus: warning: ...`` line on standard error."""
    print(f"pipestatus: warning: {clean(line)}", file=sys.stderr, flush=True)


class CleanFormatter(logging.Formatter):
    """A log formatter that writes no control character a vendor sent: the message (which may
    quote a vendor's error) is cleaned whole, line breaks included, and a traceback keeps only
    its own line breaks."""

    def format(self, record: logging.LogRecord) -> str:
        record = copy.copy(record)
        record.msg, record.args = clean(record.getMessage()), None
        return clean_lines(super().format(record))
