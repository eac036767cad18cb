"""The tail of a log read in chunks: never more than ``max_bytes`` held, decoded safely.

Pure. A :class:`Tail` takes chunks (text or bytes) in order and keeps only the last
``max_bytes`` bytes of their UTF-8 encoding; :meth:`Tail.text` decodes them, dropping a
character cut in half at the front and replacing undecodable bytes. Control characters are
kept: the library returns the vendor's text, and whoever prints it cleans it (the command
does, in :mod:`pipestatus.cli.safe`).
"""

from __future__ import annotations

__all__ = ["Tail"]


class Tail:
    """The last ``max_bytes`` bytes of everything :meth:`add` was given."""

    __slots__ = ("_buffer", "max_bytes", "total")

    def __init__(self, max_bytes: object) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError("max_bytes must be an integer >= 0")
        self.max_bytes = max_bytes
        self.total = 0  # bytes seen, kept or not
        self._buffer = bytearray()

    def add(self, chunk: str | bytes) -> None:
        data = chunk.encode("utf-8", "replace") if isinstance(chunk, str) else chunk
        self.total += len(data)
        if len(data) >= self.max_bytes:
            self._buffer = bytearray(data[len(data) - self.max_bytes :])
            return
        self._buffer += data
        extra = len(self._buffer) - self.max_bytes
        if extra > 0:
            del self._buffer[:extra]

    @property
    def cut(self) -> bool:
        """Whether bytes were dropped from the front."""
        return self.total > len(self._buffer)

    def text(self) -> str:
        data = bytes(self._buffer)
        if self.cut:
            # A character cut in half at the front is dropped, not shown as garbage.
            start = 0
            while start < min(3, len(data)) and (data[start] & 0xC0) == 0x80:
                start += 1
            data = data[start:]
        return data.decode("utf-8", "replace")
