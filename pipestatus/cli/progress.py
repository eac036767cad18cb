"""Progress on a terminal while a read is slow: which accounts are still being waited for, at
which host, and how many retries the client has waited out so far.

:class:`Meter` is what is known (pure state); it counts the client's backoff waits by being its
``sleep`` (``Client(sleep=meter.sleep)``: the transport calls it before each retry). While a
read takes longer than half a second, :func:`showing` draws a spinner line on standard error,
redrawn in place, and erases it when the read is done. Off a terminal it draws nothing: the
output of a script or a CI log holds only the result.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Final

from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

__all__ = ["Meter", "showing"]

#: How long a read may take before progress is shown.
QUIET_FOR: Final = 0.5
#: Seconds between redraws of the spinner.
TICK: Final = 0.1


class Meter:
    """How a read is going: accounts still waited for (name -> host), pipelines read, and the
    retries the client has waited out (see the module docstring)."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self.retries = 0
        self.waiting: dict[str, str] = {}

    async def sleep(self, seconds: float) -> None:
        """The client's backoff wait: counted, then slept."""
        self.retries += 1
        await asyncio.sleep(seconds)

    def start(self, account: str, host: str, count: int) -> None:
        """``count`` pipelines of ``account`` (at ``host``) are being read."""
        self.waiting[account] = host
        self.total += count

    def finish(self, account: str, count: int) -> None:
        """The pipelines of ``account`` were read (or failed)."""
        self.waiting.pop(account, None)
        self.done += count

    def describe(self) -> Text:
        """One line: ``reading 30 pipelines: 27 read; waiting for ci (https://host); 3
        retries``."""
        text = Text(f"reading {self.total} pipelines: {self.done} read")
        if self.waiting:
            names = ", ".join(f"{name} ({host})" for name, host in self.waiting.items())
            text.append(f"; waiting for {names}")
        if self.retries:
            text.append(f"; {self.retries} {'retry' if self.retries == 1 else 'retries'}")
        return text


@contextlib.asynccontextmanager
async def showing(meter: Meter, console: Console | None) -> AsyncIterator[Meter]:
    """Show ``meter`` on ``console`` (a terminal's standard error; ``None``: nowhere) while the
    body runs longer than :data:`QUIET_FOR`; the line is gone afterwards."""
    if console is None:
        yield meter
        return

    async def draw() -> None:
        await asyncio.sleep(QUIET_FOR)
        spinner = Spinner("dots", text=meter.describe())
        with Live(
            spinner,
            console=console,
            auto_refresh=False,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        ) as live:
            while True:
                spinner.update(text=meter.describe())
                live.refresh()
                await asyncio.sleep(TICK)

    task = asyncio.create_task(draw())
    try:
        yield meter
    finally:
        task.cancel()
        await asyncio.wait([task])  # the drawer's end; a cancel of this task still reaches it
