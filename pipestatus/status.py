"""The canonical status, the rule that derives a parent's status from its children,
and the per-vendor word tables.

Aggregation rule (used wherever a vendor omits a level: a v4 run, a Flow stage
without a status word):

* no children at all: ``pending`` (nothing is known yet);
* every child terminal: the worst of them, in the order of :data:`SEVERITY`
  (failed > timedout > canceled > success > skipped), so all skipped gives skipped;
* otherwise ``running`` if any child is running or already terminal, else ``pending``.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping
from typing import Final

from pipestatus._logonce import LogOnce

__all__ = ["SEVERITY", "Status", "StatusTable", "aggregate"]

logger = logging.getLogger(__name__)


class Status(enum.StrEnum):
    """One status for every vendor's runs, stages and jobs."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELED = "canceled"
    SKIPPED = "skipped"
    TIMEDOUT = "timedout"

    @property
    def is_terminal(self) -> bool:
        """True once nothing will change any more: success, failed, canceled, skipped, timedout."""
        return self in _TERMINAL


_TERMINAL: Final = frozenset(
    {Status.SUCCESS, Status.FAILED, Status.CANCELED, Status.SKIPPED, Status.TIMEDOUT}
)

#: Terminal statuses from worst to mildest: the first one present among the children wins.
SEVERITY: Final[tuple[Status, ...]] = (
    Status.FAILED,
    Status.TIMEDOUT,
    Status.CANCELED,
    Status.SUCCESS,
    Status.SKIPPED,
)


def aggregate(children: Iterable[Status]) -> Status:
    """Derive a parent's status from its children's, by the rule in the module docstring."""
    present = set(children)
    if not present:
        return Status.PENDING
    if present <= _TERMINAL:
        return next(status for status in SEVERITY if status in present)
    if Status.RUNNING in present or present & _TERMINAL:
        return Status.RUNNING
    return Status.PENDING


#: The status an unknown word maps to: not terminal, so a watch keeps looking and nothing
#: is announced as finished on a guess.
UNKNOWN_STATUS: Final = Status.PENDING

_unknown_words = LogOnce(logger)


class StatusTable:
    """A vendor's status words, matched case-insensitively; unknown words never raise.

    An unknown word maps to :data:`UNKNOWN_STATUS` and is logged once per (vendor, word).
    """

    __slots__ = ("_table", "vendor", "words")

    def __init__(self, vendor: str, words: Mapping[str, Status]) -> None:
        self.vendor = vendor
        self.words: Mapping[str, Status] = dict(words)
        self._table = {word.casefold(): status for word, status in words.items()}

    def __call__(self, word: str) -> Status:
        status = self._table.get(word.casefold())
        if status is not None:
            return status
        _unknown_words.warning(
            (self.vendor, word[:256]),  # bounded: a vendor could send huge words
            "unknown %s status word %.80r, treated as %s",
            self.vendor,
            word,
            UNKNOWN_STATUS.value,
        )
        return UNKNOWN_STATUS

    def read(self, word: str | None, derived: Status) -> tuple[Status, str | None]:
        """``(status, raw_status)``: the vendor's word wins; without one (``None``), the status
        ``derived`` from the children, and no raw word."""
        if word is None:
            return derived, None
        return self(word), word

    def __repr__(self) -> str:
        return f"StatusTable({self.vendor!r}, {len(self.words)} words)"
