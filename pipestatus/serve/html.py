"""A small HTML builder that escapes by construction: every text child and every attribute
value goes through :func:`html.escape`; only :class:`Markup` (what the builder itself made)
is inserted as it is. Tag and attribute names are the code's own literals, never data.

    el("td", {"class": "name"}, el("a", {"href": url}, name))
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from typing import Final, TypeAlias

__all__ = ["Markup", "el", "join", "text"]

#: Names a tag or an attribute may have (the builder refuses anything else: they are code).
_NAME: Final = re.compile(r"[a-z][a-z0-9-]*")
#: Elements without content or closing tag.
_VOID: Final = frozenset({"meta", "link", "br", "hr", "img", "input"})


class Markup(str):
    """HTML made by this builder: inserted as it is."""

    __slots__ = ()


Child: TypeAlias = "Markup | str | int | float | Iterable[Markup] | None"
Attrs: TypeAlias = Mapping[str, "str | int | float | bool | None"]


def text(value: object) -> Markup:
    """``value`` as escaped text (quotes included, so it is safe in an attribute too)."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def join(parts: Iterable[Markup]) -> Markup:
    return Markup("".join(parts))


def _child(child: Child) -> Markup:
    if child is None:
        return Markup("")
    if isinstance(child, Markup):
        return child
    if isinstance(child, str | int | float):
        return text(child)
    return join(_child(part) for part in child)


def el(tag: str, attributes: Attrs | None = None, *children: Child) -> Markup:
    """The element ``tag`` with ``attributes`` (``None`` or ``False``: left out; ``True``: a
    bare attribute) and ``children`` (escaped unless :class:`Markup`)."""
    if not _NAME.fullmatch(tag):
        raise ValueError(f"not a tag name: {tag!r}")
    parts = [f"<{tag}"]
    for name, value in (attributes or {}).items():
        if not _NAME.fullmatch(name):
            raise ValueError(f"not an attribute name: {name!r}")
        if value is None or value is False:
            continue
        parts.append(f" {name}" if value is True else f' {name}="{text(value)}"')
    parts.append(">")
    if tag in _VOID:
        return Markup("".join(parts))
    parts.extend(_child(child) for child in children)
    parts.append(f"</{tag}>")
    return Markup("".join(parts))
