"""The optional extra: the store and stream packages import without redis, load it only when a
Redis store or stream is made, and say what to install when it is missing (fresh interpreters,
with the redis package hidden)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

#: Run before the code under test: ``import redis`` fails as if the package were not there.
HIDE_REDIS = "import sys\nfor name in ('redis', 'redis.asyncio'):\n    sys.modules[name] = None\n"


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and our own code
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )


def test_importing_the_store_and_stream_packages_loads_no_redis() -> None:
    """``pipestatus.store`` and ``pipestatus.stream`` (and the SQLite store) import without
    the redis package being loaded."""
    code = (
        "import sys, json\n"
        "from pipestatus.store import MemoryStore, SQLiteStore\n"
        "import pipestatus.stream\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'redis')))\n"
    )
    done = run(code)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


@pytest.mark.parametrize("make", ["RedisStore", "RedisStream"])
def test_without_redis_making_one_says_what_to_install(make: str, tmp_path: Path) -> None:
    """Without the redis package, making a Redis store or stream raises ImportError naming
    the extra to install; the SQLite store still works."""
    home = "pipestatus.store" if make == "RedisStore" else "pipestatus.stream"
    code = (
        HIDE_REDIS + "import asyncio\n"
        "from pipestatus.store import SQLiteStore\n"
        f"from {home} import {make}\n"
        "try:\n"
        f"    {make}('redis://127.0.0.1:6379/0')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "async def sqlite():\n"
        f"    async with SQLiteStore({str(tmp_path / 'state.db')!r}) as store:\n"
        "        print(await store.load(['k']))\n"
        "asyncio.run(sqlite())\n"
    )
    done = run(code)
    assert done.returncode == 0, done.stderr
    message, loaded = done.stdout.splitlines()
    assert message == f"{make} needs the redis package: pip install 'pipestatus[redis]'"
    assert loaded == "{}"


def test_without_redis_the_command_says_what_to_install() -> None:
    """``pipestatus events --redis`` without the redis package: exit 2 and the install line."""
    code = (
        HIDE_REDIS + "from pipestatus.cli import main\n"
        "raise SystemExit(main(['events', '--redis', 'redis://127.0.0.1:1/0', '--group', 'g']))\n"
    )
    done = run(code)
    assert done.returncode == 2
    assert "pip install 'pipestatus[redis]'" in done.stderr
    assert "Traceback" not in done.stderr
