"""One run as a tree of stages and jobs, with times and web pages, as a pure function of the
model (``pipestatus view`` prints it; ``pipestatus wait`` redraws it while it waits).

Each line is a status symbol, a name, the status word, when it started (UTC) and how long it
took (or has been going), then the job's page; the status words of every stage and job start
at the same display cell, whatever the names are written in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final, TypeAlias

from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.text import Text
from rich.tree import Tree

from pipestatus.cli.config import Followed
from pipestatus.cli.render import pad, problem_of, status_text
from pipestatus.cli.text import (
    ERROR,
    READING,
    STYLES,
    SYMBOLS,
    format_duration,
    iso,
    page_of,
    run_label,
    short_sha,
    span,
    word_of,
)
from pipestatus.errors import PipestatusError
from pipestatus.model import Job, Run, Stage

__all__ = ["run_tree"]

Outcome: TypeAlias = Run | PipestatusError

#: Cells a tree level indents its children by (rich's guides).
INDENT: Final = 4
#: Cells of a status symbol and the space after it.
SYMBOL: Final = 2


def _clock(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%H:%M:%S") if value is not None else ""


def _name(part: Stage | Job) -> str:
    return part.name or part.id


def _line(part: Stage | Job, name_width: int, now: datetime) -> Text:
    word = part.status.value
    line = Text()
    line.append(SYMBOLS[word] + " ", style=STYLES[word])
    line.append(pad(_name(part), name_width))
    line.append("  ")
    line.append_text(status_text(word, pad(word, 8)))
    line.append(f"  {pad(_clock(part.started_at), 8)}")
    took = format_duration(span(part.started_at, part.finished_at, now))
    line.append(f"  {pad(took, 6)}")
    if isinstance(part, Job) and part.url:
        line.append(f"  {part.url}", style="dim")
    line.rstrip()
    return line


def _head(item: Followed, outcome: Outcome | None) -> Text:
    word = word_of(outcome)
    head = Text()
    head.append(SYMBOLS[word] + " ", style=STYLES[word])
    head.append(item.label, style="bold")
    head.append("  ")
    head.append_text(status_text(word))
    if isinstance(outcome, Run):
        facts = [
            run_label(outcome),
            outcome.ref or "",
            short_sha(outcome.sha),
            outcome.trigger or "",
        ]
        for fact in facts:
            if fact:
                head.append(f"  {fact}")
    return head


def _facts(item: Followed, run: Run, now: datetime) -> list[Text]:
    lines = []
    times = []
    if run.started_at is not None:
        times.append(f"started {iso(run.started_at)}")
    if run.finished_at is not None:
        times.append(f"finished {iso(run.finished_at)}")
    took = format_duration(span(run.started_at, run.finished_at, now))
    if took:
        times.append(f"took {took}" if run.finished_at else f"running for {took}")
    if times:
        lines.append(Text(", ".join(times)))
    page = page_of(run) or item.page
    if page:
        lines.append(Text(page, style="dim"))
    return lines


def _name_width(stages: Sequence[Stage]) -> int:
    """The name width that makes every status word of the tree start at one cell."""
    deepest = 0
    for stage in stages:
        deepest = max(deepest, INDENT + cell_len(_name(stage)))
        for job in stage.jobs:
            deepest = max(deepest, 2 * INDENT + cell_len(_name(job)))
    return deepest


def run_tree(item: Followed, outcome: Outcome | None, now: datetime) -> RenderableType:
    """``item``'s run as a tree: a head line (status, run, branch, commit, trigger), its times
    and page, then each stage with its jobs. An error shows its type and message instead."""
    head = _head(item, outcome)
    if not isinstance(outcome, Run):
        note = problem_of(outcome) if outcome is not None else "not read yet"
        return Group(head, Text(note, style=STYLES[ERROR if outcome is not None else READING]))
    tree = Tree(Group(head, *_facts(item, outcome, now)), guide_style="dim")
    width = _name_width(outcome.stages)
    for stage in outcome.stages:
        node = tree.add(_line(stage, width - INDENT, now))
        for job in stage.jobs:
            node.add(_line(job, width - 2 * INDENT, now))
    return tree
