"""The one definition of a code point that is unsafe to show, and the cleaning of vendor text.

A vendor's string (an error message echoed from a response body, a name, a status word) may
hold anything. Shown as it is, an ESC, OSC or CSI sequence drives a terminal, a CR or LF forges
a line of a table or of a log, and a lone surrogate cannot be encoded as UTF-8 (a JSON document,
an XML feed, an HTTP answer). :func:`clean` replaces each such code point with U+FFFD:

* C0 controls (U+0000-U+001F), DEL (U+007F) and C1 controls (U+0080-U+009F);
* lone surrogates (U+D800-U+DFFF);
* the bidirectional embedding, override and isolate controls (U+202A-U+202E, U+2066-U+2069)
  and the line and paragraph separators (U+2028, U+2029).

The library cleans vendor text once, where it enters an error
(:func:`pipestatus._sansio.api_error_for`); the command cleans every vendor string as it enters
it (:mod:`pipestatus.cli.safe`), with this same definition.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["REPLACEMENT", "UNSAFE", "clean"]

#: What every unsafe code point becomes.
REPLACEMENT: Final = "\ufffd"

UNSAFE: Final = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def clean(text: str) -> str:
    """``text`` with every unsafe code point (see the module docstring) replaced."""
    if UNSAFE.search(text) is None:
        return text
    return UNSAFE.sub(REPLACEMENT, text)
