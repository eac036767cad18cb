"""Views redrawn in place on a terminal with ``rich.live.Live``: the live table of followed
pipelines (``watch --live``, ``demo``) and any frame a command redraws while it waits
(``wait``). Frames are pure renderables (:func:`~pipestatus.cli.render.live_frame`,
:func:`~pipestatus.cli.tree.run_tree`); this module only decides when to draw them.

Nothing here runs a thread: a view is redrawn by an asyncio task (:meth:`Redrawn.run`) twice a
second, and once more when it stops, so the last frame stays on the screen.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Final, TypeAlias

from rich.console import Console, RenderableType
from rich.live import Live

from pipestatus.cli.config import Followed
from pipestatus.cli.render import live_frame, make_row
from pipestatus.errors import PipestatusError
from pipestatus.model import Change, Run, Target

__all__ = ["LiveTable", "Redrawn"]

Outcome: TypeAlias = Run | PipestatusError

#: Seconds between two frames.
FRAME: Final = 0.5
#: Notes kept under a live table.
NOTES: Final = 3


class Redrawn:
    """A view on ``console`` whose frame ``draw(now)`` is redrawn in place by :meth:`run`
    until it is cancelled."""

    def __init__(self, console: Console, draw: Callable[[datetime], RenderableType]) -> None:
        self.console = console
        self.draw = draw

    def frame(self) -> RenderableType:
        return self.draw(datetime.now(UTC))

    async def run(self) -> None:
        """Draw until cancelled; the last frame is drawn once more and kept on the screen."""
        with Live(
            self.frame(),
            console=self.console,
            auto_refresh=False,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        ) as live:
            try:
                while True:
                    await asyncio.sleep(FRAME)
                    live.update(self.frame(), refresh=True)
            finally:
                live.update(self.frame(), refresh=True)


class LiveTable:
    """Every followed pipeline's latest state under a title, sorted failing first, with a
    count of changes and of each status and the last notes; feed it changes with
    :meth:`update` and notes with :meth:`note`, redraw it with :meth:`run` (see
    :class:`Redrawn`)."""

    def __init__(
        self, console: Console, followed: Sequence[Followed], title: str, *, wide: bool = False
    ) -> None:
        self.console = console
        self.followed = followed
        self.title = title
        self.wide = wide
        self.state: dict[Target, Outcome] = {}
        self.changes = 0
        self.notes: deque[str] = deque(maxlen=NOTES)
        self._view = Redrawn(console, self.draw)

    def update(self, item: Followed, change: Change) -> None:
        self.state[change.target] = change.current
        self.changes += 1

    def note(self, text: str) -> None:
        """Show ``text`` under the table (the last few notes stay)."""
        self.notes.append(text)

    def draw(self, now: datetime) -> RenderableType:
        rows = [make_row(item, self.state.get(item.target), now) for item in self.followed]
        width, height = self.console.size
        return live_frame(
            self.title,
            rows,
            width=width,
            height=height,
            changes=self.changes,
            wide=self.wide,
            notes=tuple(self.notes),
        )

    async def run(self) -> None:
        await self._view.run()
