"""Where the command writes: data lines on standard output, problems on standard error, and
whether a stream takes colour."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TextIO

from pipestatus.cli.config import Followed
from pipestatus.cli.render import change_line, change_record
from pipestatus.model import Change

__all__ = ["out", "printer", "say_problems", "use_color"]


def out(line: str = "") -> None:
    """One line of data on standard output, flushed."""
    print(line, flush=True)


def say_problems(lines: Iterable[str]) -> None:
    """Each problem as one ``pipestatus: error: ...`` line on standard error."""
    for line in lines:
        print(f"pipestatus: error: {line}", file=sys.stderr, flush=True)


def use_color(stream: TextIO) -> bool:
    """Colour for a terminal, unless ``NO_COLOR`` is set or ``TERM`` is ``dumb``."""
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def printer(followed: Sequence[Followed], as_json: bool) -> Callable[[Followed, Change], None]:
    """Print each change as a line (columns as wide as the names shown), or as a JSON Lines
    record."""
    width = max((len(item.label) for item in followed), default=0)
    vendor_width = max((len(item.vendor) for item in followed), default=0)

    def show(item: Followed, change: Change) -> None:
        now = datetime.now(UTC)
        if as_json:
            out(json.dumps(change_record(item, change, now)))
        else:
            out(change_line(item, change, now, width, vendor_width))

    return show
