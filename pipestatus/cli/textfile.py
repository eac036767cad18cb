"""Reading a small file a person names on the command line (the configuration): with a size
cap, and without hanging on what is not a file.

``-c /dev/zero`` would read without end and a FIFO nobody writes to would block the open
forever; :func:`read_small` opens without blocking, reads a regular file up to the cap, reads a
pipe (``-c <(...)``, ``-c /dev/stdin``) up to the cap within a deadline, and refuses devices.
Every refusal is an :class:`Unreadable` whose message says what is wrong, never what was read.
"""

from __future__ import annotations

import os
import select
import stat
import time
from pathlib import Path
from typing import Final

__all__ = ["MAX_BYTES", "PIPE_WAIT", "Unreadable", "read_small"]

#: The largest configuration read: thousands of pipelines fit in far less.
MAX_BYTES: Final = 1024 * 1024
#: How long a pipe may take to deliver the whole file.
PIPE_WAIT: Final = 5.0
_CHUNK: Final = 64 * 1024


class Unreadable(Exception):
    """The file cannot be read as a small text file; the message says why."""


def read_small(path: str | Path, *, limit: int = MAX_BYTES, wait: float = PIPE_WAIT) -> bytes:
    """The bytes of the file at ``path``: at most ``limit`` of them, a pipe's within ``wait``
    seconds. ``OSError`` (no such file, a directory, no permission) propagates; anything else
    that cannot be read is :class:`Unreadable`."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(path)
        if stat.S_ISREG(mode):
            os.set_blocking(fd, True)
            data = _read_file(fd, limit + 1)
        elif stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            data = _read_pipe(fd, limit + 1, wait)
        else:
            raise Unreadable("is not a regular file (a device?): name a configuration file")
    finally:
        os.close(fd)
    if len(data) > limit:
        raise Unreadable(f"is larger than {limit // 1024} KiB: not a configuration file")
    return data


def _read_file(fd: int, most: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while size < most:
        chunk = os.read(fd, min(_CHUNK, most - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


def _read_pipe(fd: int, most: int, wait: float) -> bytes:
    parts: list[bytes] = []
    size = 0
    deadline = time.monotonic() + wait
    while size < most:
        try:
            # Read first: a FIFO without a writer is at its end at once, though select()
            # would not say so (Linux reports no hang-up for a writer that came before).
            chunk = os.read(fd, min(_CHUNK, most - size))
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Unreadable(
                    f"is a pipe that did not deliver a whole file within {wait:g} s"
                ) from None
            select.select([fd], [], [], left)
            continue
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)
