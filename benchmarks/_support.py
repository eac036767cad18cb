"""What the fan-out benchmark measures with besides clocks: memory, and request counts."""

from __future__ import annotations

import gc
import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import aiohttp

MB = 1024 * 1024

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(key: str) -> int | None:
    try:
        found = re.search(rf"^{key}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(found.group(1)) if found else None


def rss() -> int | None:
    """Current resident set size in bytes (Linux), else None."""
    kb = _status_kb("VmRSS")
    return None if kb is None else kb * 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (``VmHWM``) to the current RSS (Linux >= 4.0)."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_rss() -> int | None:
    kb = _status_kb("VmHWM")
    return None if kb is None else kb * 1024


class RssWindow:
    """Peak RSS above the RSS at ``start``, through a reset ``VmHWM``."""

    def __init__(self) -> None:
        gc.collect()
        self.ok = reset_peak_rss()
        self.before = rss()

    def growth(self) -> int | None:
        peak = peak_rss()
        if not self.ok or peak is None or self.before is None:
            return None
        return max(0, peak - self.before)


def mb(value: int | float | None) -> str:
    return "n/a" if value is None else f"{value / MB:.1f}"


class RequestCounter:
    """Counts requests sent and answers per URL path, through an aiohttp ``TraceConfig``."""

    def __init__(self) -> None:
        self.started = 0
        self.answered: dict[str, int] = {}
        self.methods: set[tuple[str, str]] = set()
        self.on_answer: Callable[[str, int], None] | None = None

    def config(self) -> aiohttp.TraceConfig:
        config = aiohttp.TraceConfig()
        config.on_request_start.append(self._start)
        config.on_request_end.append(self._end)
        return config

    async def _start(
        self, _s: aiohttp.ClientSession, _c: SimpleNamespace, p: aiohttp.TraceRequestStartParams
    ) -> None:
        self.started += 1
        self.methods.add((p.method, str(p.url)))

    async def _end(
        self, _s: aiohttp.ClientSession, _c: SimpleNamespace, p: aiohttp.TraceRequestEndParams
    ) -> None:
        path = p.url.raw_path
        count = self.answered[path] = self.answered.get(path, 0) + 1
        if self.on_answer is not None:
            self.on_answer(path, count)
