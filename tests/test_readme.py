"""The README's examples run as written."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_first_screen_example_runs() -> None:
    """The ten-line example on the README's first screen polls the simulated fleet."""
    example = python_blocks()[0]
    assert len([line for line in example.splitlines() if line.strip()]) <= 16
    result = subprocess.run(  # noqa: S603 - our own interpreter on our own README
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("Target(")
        assert line.split()[-1] in {
            "pending",
            "running",
            "success",
            "failed",
            "canceled",
            "skipped",
            "timedout",
        }


def test_every_python_block_parses() -> None:
    """Every Python block of the README is valid Python (the API sketch included)."""
    for block in python_blocks():
        ast.parse(block)


def _chat_bot() -> str:
    """The chat bot's block, without its last line (which would start the bot)."""
    block = next(b for b in python_blocks() if "async def announce" in b)
    lines = block.rstrip().splitlines()
    assert lines[-1] == "asyncio.run(bot())"
    return "\n".join(lines[:-1])


async def test_chat_bot_names_the_failed_job_and_quotes_its_log() -> None:
    """The chat bot's ``announce`` names the failed job of a v5 run and its log's last lines."""
    from pipestatus import Client
    from pipestatus.model import Change, ChangeKind
    from pipestatus.testing import SimJob, SimRun, SimStage, VendorServer

    namespace: dict[str, object] = {}
    exec(compile(_chat_bot(), "README.md", "exec"), namespace)  # noqa: S102 - our README
    announce = namespace["announce"]
    log = "".join(f"step {n}\n" for n in range(1, 9)) + "error: 2 tests failed\n"
    failed = SimRun(
        42,
        "failed",
        [SimStage("test", [SimJob("lint", "success"), SimJob("unit-tests", "failed", log=log)])],
    )
    async with VendorServer(token="bot-token") as server, Client(retries=0) as client:
        server.add_v5_pipeline("proj", "rel", failed, name="release-api")
        pipe = client.codearts_pipeline(server.url, project_id="proj", token="bot-token")
        run = await pipe.run("rel")
        change = Change(
            target=pipe.target("rel"), previous=None, current=run, kind=ChangeKind.BROKE
        )
        text = await announce(change, "release-api")  # type: ignore[operator]
        quiet = Change(target=pipe.target("rel"), previous=None, current=run, kind=ChangeKind.MOVED)
        assert await announce(quiet, "release-api") is None  # type: ignore[operator]
    lines = text.splitlines()
    assert lines[0].startswith("release-api #42 broke https://")
    assert lines[1] == "unit-tests failed:"
    assert lines[2:] == ["step 5", "step 6", "step 7", "step 8", "error: 2 tests failed"]
