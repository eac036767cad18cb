"""Which rule sends which change, as pure functions: a rule matches a change when the change's
kind is one of its ``kinds`` and each of its filters (pipeline name globs, tag globs, branch
globs; empty: any) matches the pipeline. :func:`identity` names a change so that the same
change is sent once per rule, and once per sink, however many times it is offered."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from pipestatus.cli.config import Followed
from pipestatus.cli.serveconf import Rule
from pipestatus.model import Change, Run
from pipestatus.watch.tracker import signature

__all__ = ["identity", "matches"]


def _any(patterns: Sequence[str], values: Sequence[str]) -> bool:
    if not patterns:
        return True
    return any(fnmatch.fnmatchcase(value, p) for p in patterns for value in values)


def matches(rule: Rule, item: Followed, change: Change) -> bool:
    """Whether ``rule`` sends ``change`` of ``item``."""
    if change.kind.value not in rule.kinds:
        return False
    branch = change.current.ref if isinstance(change.current, Run) else None
    if rule.branches and branch is None:
        return False
    return (
        _any(rule.pipelines, [item.label])
        and _any(rule.tags, item.tags)
        and (not rule.branches or _any(rule.branches, [branch or ""]))
    )


def identity(change: Change) -> tuple[object, ...]:
    """What makes two offered changes the same change: the target, the kind, and the run's
    signature (or the error's class and message)."""
    current = change.current
    seen: object
    if isinstance(current, Run):
        seen = signature(current)
    else:
        seen = (type(current).__name__, str(current))
    return (change.target, change.kind.value, seen)
