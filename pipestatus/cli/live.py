"""The live table: every followed pipeline's latest state, redrawn in place twice a second
(autowrap off, cursor hidden), with a count of changes and of each status below it."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO, TypeAlias

from pipestatus.cli.config import Followed
from pipestatus.cli.output import use_color
from pipestatus.cli.render import paint, render_table, table_row
from pipestatus.errors import PipestatusError
from pipestatus.model import Change, Run, Target

__all__ = ["LiveTable"]

Outcome: TypeAlias = Run | PipestatusError


class LiveTable:
    """A table of ``followed`` on ``stream`` (a terminal); feed it changes with
    :meth:`update`, draw it with :meth:`run` until cancelled, then :meth:`close` it."""

    def __init__(self, followed: Sequence[Followed], title: str, stream: TextIO) -> None:
        self.followed = followed
        self.title = title
        self.stream = stream
        self.state: dict[Target, Outcome] = {}
        self.changes = 0
        self.drawn = 0
        self.color = use_color(stream)
        stream.write("\x1b[?25l\x1b[?7l")  # hide the cursor; clip long lines instead of wrapping

    def update(self, item: Followed, change: Change) -> None:
        self.state[change.target] = change.current
        self.changes += 1

    async def run(self) -> None:
        while True:
            self.draw()
            await asyncio.sleep(0.5)

    def draw(self) -> None:
        now = datetime.now(UTC)
        rows = [table_row(f, self.state.get(f.target), now) for f in self.followed]
        height = shutil.get_terminal_size().lines
        lines = render_table(rows, color=self.color)
        if len(lines) + 3 > height:
            hidden = len(lines) + 3 - height
            lines = [*lines[: max(1, len(lines) - hidden - 1)], f"... and {hidden + 1} more"]
        counts: dict[str, int] = {}
        for outcome in self.state.values():
            word = outcome.status.value if isinstance(outcome, Run) else "error"
            counts[word] = counts.get(word, 0) + 1
        summary = "  ".join(
            paint(f"{n} {w}", w, color=self.color) for w, n in sorted(counts.items())
        )
        text = [self.title, *lines, f"{self.changes} changes   {summary}"]
        up = f"\r\x1b[{self.drawn}A" if self.drawn else ""
        self.stream.write(up + "\x1b[J" + "\n".join(text) + "\n")
        self.stream.flush()
        self.drawn = len(text)

    def close(self) -> None:
        self.draw()
        self.stream.write("\x1b[?7h\x1b[?25h")
        self.stream.flush()
