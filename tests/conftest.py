"""Shared test setup: the aioresponses shim for aiohttp 3.14 and the fixture loader."""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redisproc import RedisProcess

from pipestatus.testing import VendorServer

FIXTURES = Path(__file__).parent / "fixtures"


def load_fixture(vendor: str, name: str) -> Any:
    """The decoded JSON of ``tests/fixtures/<vendor>/<name>``."""
    return json.loads((FIXTURES / vendor / name).read_text(encoding="utf-8"))


def fixture_bytes(vendor: str, name: str) -> bytes:
    return (FIXTURES / vendor / name).read_bytes()


def json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a nested value of decoded JSON (the root is ``()``), for mutating it."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += json_paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += json_paths(child, (*prefix, index))
    return found


@pytest.fixture
async def foreign() -> AsyncIterator[VendorServer]:
    """Another origin on 127.0.0.1, for redirect tests: it records whatever reaches it."""
    async with VendorServer(token="foreign-token") as srv:
        yield srv


def _patch_aioresponses() -> None:
    """aioresponses 0.7.9 builds ``ClientResponse`` without the ``stream_writer`` argument that
    aiohttp 3.14 requires (upstream issue #289): default it. Drop once upstream fixes it."""
    import aioresponses.core

    if "stream_writer" not in inspect.signature(aiohttp.ClientResponse.__init__).parameters:
        return

    class _Writer:
        output_size = 0

    class _Response(aiohttp.ClientResponse):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("stream_writer", _Writer())
            super().__init__(*args, **kwargs)

    aioresponses.core.ClientResponse = _Response  # type: ignore[attr-defined,misc]


_patch_aioresponses()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    """A fresh redis-server on 127.0.0.1 (a free port, its own directory), stopped after."""
    server = RedisProcess(tmp_path / "redis-data")
    server.directory.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()
