"""The paging rule every pager follows: when a list has ended, and when it cannot be trusted.

Pure: a :class:`Pages` is told what each page held (the keys of its items, the total the vendor
claims, the next page it names) and answers whether to ask for another; it raises
``ResponseError`` where going on could never end or would hide items. Every pager of every
vendor (v4's job list, v5's pipeline and run lists and step logs, Yunxiao's pipeline and run
lists) runs this one rule, so a list that misbehaves ends the same way everywhere:

* **a page that repeats the one before** (the server ignores the offset, or a cursor that does
  not move), **or any earlier one** (a server cycling through its pages, A, B, A, B...: the
  rule of :func:`pipestatus.vendors._base.page_repeats`): ``ResponseError`` at once;
* **items seen before** on a later page (a list shifted by an insertion while it was read): kept
  once (:meth:`Pages.fresh` says which to keep);
* **a short page** (fewer items than asked for, none included) ends the list;
* **a claimed total reached** ends the list, whatever the page size (a total that lies low stops
  early with the items read; one that lies high meets the next two rules);
* **an empty page before the claimed total**: ``ResponseError``, never a silent end, since the
  items after it would be missing without a word (a scope would call them removed);
* **a next-page cursor** (Yunxiao's ``x-next-page``) that is empty ends the list; one that does
  not move forward is a ``ResponseError``;
* and whatever happens, at most ``max_pages`` requests: then ``ResponseError``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Final

from pipestatus.errors import ResponseError
from pipestatus.vendors._base import page_repeats

__all__ = ["MAX_PAGES", "Pages", "read_count"]

#: The most pages one listing reads by default before it gives up.
MAX_PAGES: Final = 10_000


def read_count(value: object) -> int | None:
    """A count from a header or a body (``x-total``, ``total``, ``x-next-page``): a
    non-negative integer or a string of at most 18 digits; ``None`` when unreadable (the rule
    then goes by page sizes alone)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        return None
    return int(text)


class Pages:
    """One listing's paging state: see the module docstring for the rule.

    ``what`` names the list in errors ("the v5 pipeline list"); ``limit`` is the page size
    asked for. Call :meth:`page` once per page answered; it returns whether to ask for the
    next one (``True``) or raises ``ResponseError``.
    """

    __slots__ = (
        "_cursor",
        "_previous",
        "_seen",
        "_served",
        "limit",
        "max_pages",
        "pages",
        "read",
        "vendor",
        "what",
    )

    def __init__(self, what: str, *, vendor: str, limit: int, max_pages: int = MAX_PAGES) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.what = what
        self.vendor = vendor
        self.limit = limit
        self.max_pages = max_pages
        self.pages = 0
        self.read = 0
        self._previous: tuple[Hashable, ...] | None = None
        self._seen: set[Hashable] = set()
        self._served: set[tuple[Hashable, ...]] = set()  # every page so far, for cycles
        self._cursor: int | None = None

    def _fail(self, problem: str) -> ResponseError:
        return ResponseError(f"{self.what} {problem}", vendor=self.vendor)

    def fresh(self, keys: Iterable[Hashable]) -> list[bool]:
        """For each key of a page, whether its item is new to this listing (keep it) or was
        seen on an earlier page (a shifted list: drop it)."""
        out = []
        for key in keys:
            new = key not in self._seen
            self._seen.add(key)
            out.append(new)
        return out

    def page(
        self,
        keys: Sequence[Hashable],
        *,
        total: int | None = None,
        next_page: int | None = None,
        has_next: bool | None = None,
    ) -> bool:
        """Record one page (the keys of its items, in order); ``True``: ask for the next.

        ``total``: the item count the vendor claims, if it gave one. ``next_page``: the page
        number the vendor names next; ``has_next``: whether it named one at all (``False``: it
        said there is none; ``None``: it does not say).
        """
        self.pages += 1
        current = tuple(keys)
        if current and current == self._previous:
            raise self._fail(f"served the same page again (page {self.pages})")
        if page_repeats(self._served, current):
            raise self._fail(
                f"served the same page again (page {self.pages} repeats an earlier one: "
                "the list cycles through its pages)"
            )
        self._previous = current
        self.read += len(current)
        if has_next is False:
            return False
        if next_page is not None:
            if self._cursor is not None and next_page <= self._cursor:
                raise self._fail(f"named page {next_page} next again (page {self.pages})")
            self._cursor = next_page
        if total is not None and self.read >= total:
            return False
        if not current:
            if total is not None:
                raise self._fail(f"ended early: an empty page after {self.read} of {total} items")
            return False
        if len(current) < self.limit and next_page is None:
            return False  # a short page ends the list, whatever the total says
        if self.pages >= self.max_pages:
            raise self._fail(f"did not end after {self.max_pages} pages")
        return True
