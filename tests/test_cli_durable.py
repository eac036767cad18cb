"""The command with a store: ``watch --state FILE`` restarted, ``watch --redis URL`` with
``events --redis URL --group G``, and the errors a store can give, in subprocesses against the
simulated server (``asyncio.create_subprocess_exec``: a blocking run would starve the server).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redisproc import RedisProcess
from watchkit import World, sim

from pipestatus.store import RedisStore
from pipestatus.testing import VendorServer

TOKEN = "tok-durable-5e1c9a"
ENV = "PIPESTATUS_DURABLE_TOKEN"


@pytest.fixture
async def served() -> AsyncIterator[tuple[VendorServer, World]]:
    world = World()
    async with VendorServer(token=TOKEN) as server:
        world.runs["flow"] = sim(1, "running")
        world.runs["pipe"] = sim(4, "success")
        server.add_yunxiao_pipeline("123", world.source("flow"))
        server.add_v5_pipeline("proj", "p1", world.source("pipe"))
        yield server, world


def config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "pipestatus.toml"
    path.write_text(
        f"""
[accounts.flow]
vendor = "yunxiao"
endpoint = "{url}"
token_env = "{ENV}"

[accounts.pipe]
vendor = "codearts_pipeline"
endpoint = "{url}"
project_id = "proj"
token_env = "{ENV}"

[[pipelines]]
account = "flow"
pipeline_id = "123"
name = "mobile"

[[pipelines]]
account = "pipe"
pipeline_id = "p1"
name = "backend"
""",
        encoding="utf-8",
    )
    return path


async def cli(*args: str, until_lines: int | None = None) -> tuple[int, list[dict], str]:
    """Run the command; with ``until_lines``, SIGTERM it once it printed that many lines."""
    env = {**os.environ, ENV: TOKEN, "NO_COLOR": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pipestatus", *args,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stderr is not None
    lines: list[dict] = []
    async with asyncio.timeout(30):
        if until_lines is not None:
            while len(lines) < until_lines:
                line = await proc.stdout.readline()
                assert line, (await proc.stderr.read()).decode()
                lines.append(json.loads(line))
            proc.terminate()
        out, err = await proc.communicate()
    lines += [json.loads(line) for line in out.decode().splitlines()]
    errors = err.decode()
    assert TOKEN not in errors
    assert "Traceback" not in errors, errors
    assert proc.returncode is not None
    return proc.returncode, lines, errors


async def test_watch_with_state_goes_on_where_it_stopped(
    served: tuple[VendorServer, World], tmp_path: Path
) -> None:
    """`watch --state FILE` run twice: the second run announces only what changed meanwhile,
    with its real kind, never `first` again."""
    server, world = served
    path = config(tmp_path, server.url)
    state = str(tmp_path / "state.db")
    watch = ("watch", "-c", str(path), "--json", "--interval", "0.05", "--state", state)
    code, first, _ = await cli(*watch, until_lines=2)
    assert code == 0
    assert sorted(c["kind"] for c in first) == ["first", "first"]
    world.runs["flow"] = sim(1, "failed")
    code, second, _ = await cli(*watch, until_lines=1)
    assert code == 0
    assert [(c["name"], c["kind"], c["previous_status"]) for c in second] == [
        ("mobile", "finished", "running")
    ]


async def test_watch_on_a_file_it_cannot_use_exits_2_naming_it(
    served: tuple[VendorServer, World], tmp_path: Path
) -> None:
    """A --state file that is not a state file: exit 2, one line naming it, the file kept."""
    server, _ = served
    path = config(tmp_path, server.url)
    state = tmp_path / "notes.txt"
    state.write_text("my notes\n" * 200)
    code, lines, errors = await cli(
        "watch", "-c", str(path), "--interval", "0.05", "--duration", "5", "--state", str(state)
    )
    assert code == 2
    assert lines == []
    assert f"pipestatus: error: {state}: not a pipestatus state file" in errors
    assert state.read_text() == "my notes\n" * 200


async def test_watch_publishes_and_events_prints_each_change_once(
    served: tuple[VendorServer, World], tmp_path: Path, redis_server: RedisProcess
) -> None:
    """`watch --redis URL` publishes each change; `events --redis URL --group G` prints them
    as JSON Lines, once each, with their stable IDs."""
    server, world = served
    path = config(tmp_path, server.url)
    url = redis_server.url
    watch = ("watch", "-c", str(path), "--json", "--interval", "0.05", "--redis", url)
    code, shown, _ = await cli(*watch, until_lines=2)
    assert code == 0
    world.runs["flow"] = sim(1, "success")
    code, more, _ = await cli(*watch, until_lines=1)
    assert code == 0
    events = ("events", "--redis", url, "--group", "bots", "--from-start")
    code, printed, _ = await cli(*events, until_lines=3)
    assert code == 0
    assert [p["kind"] for p in printed] == [c["kind"] for c in shown + more]
    assert len({p["id"] for p in printed}) == 3
    assert {p["target"]["vendor"] for p in printed} == {"yunxiao", "codearts_pipeline"}
    last = printed[-1]
    assert last["current"]["run"]["status"] == "success"
    assert last["previous"]["run"]["status"] == "running"
    async with RedisStore(url) as probe:
        (group,) = await probe.call("XINFO", "GROUPS", "pipestatus:changes")
    assert (group["name"], group["pending"], group["lag"]) == ("bots", 0, 0)  # all read, acked


async def test_watch_with_redis_away_keeps_polling_and_says_so_once(
    served: tuple[VendorServer, World], tmp_path: Path
) -> None:
    """Nothing listening at the --redis URL: the watch keeps polling until --duration, says
    so once on standard error (not once per poll), and exits 0."""
    server, world = served
    path = config(tmp_path, server.url)
    nobody = RedisProcess(tmp_path)  # a free port, never started
    code, lines, errors = await cli(
        "watch", "-c", str(path), "--interval", "0.05", "--duration", "1.5", "--redis", nobody.url
    )
    assert code == 0
    assert lines == []
    assert errors.count("unavailable") == 1, errors
    assert world.polls["flow"] >= 5


def test_state_and_redis_together_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """--state and --redis name two stores: the parser refuses them together."""
    from pipestatus.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["watch", "--state", "a.db", "--redis", "redis://127.0.0.1:1/0"])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
