"""Log a message once per key, with a bounded memory of keys already logged."""

from __future__ import annotations

import logging
from collections.abc import Hashable

__all__ = ["LogOnce"]


class LogOnce:
    """Remembers up to ``limit`` keys; a vendor that sends endless new words cannot grow it."""

    __slots__ = ("_limit", "_logger", "_seen")

    def __init__(self, logger: logging.Logger, limit: int = 1024) -> None:
        self._logger = logger
        self._limit = limit
        self._seen: set[Hashable] = set()

    def warning(self, key: Hashable, msg: str, *args: object) -> None:
        if key in self._seen:
            return
        if len(self._seen) >= self._limit:
            self._seen.clear()
        self._seen.add(key)
        self._logger.warning(msg, *args)
