"""Capture the README's `status` and `wait` screens from real runs of the command against the
simulated vendor server (``python tests/capture_screens.py``): `status` on a pseudo-terminal
110 columns wide, `wait` with its output in a pipe (a line per change, then the run's tree).

It prints both screens as Markdown blocks; paste them into the README's command section.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import re
import struct
import sys
import tempfile
import termios
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipestatus.testing import SimJob, SimRun, SimStage, VendorServer

TOKEN = "readme-token"
OWN = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run(
    number: int, status: str, ref: str, began: float | None = None, took: float | None = None
) -> SimRun:
    """A run that began ``began`` minutes ago and took ``took`` minutes (``None``: not yet)."""
    done = "success" if status != "pending" else "pending"
    now = datetime.now(UTC)
    started = None if began is None else now - timedelta(minutes=began)
    finished = None if started is None or took is None else started + timedelta(minutes=took)
    return SimRun(
        number=number,
        status=status,
        ref=ref,
        started_at=started,
        finished_at=finished,
        created_at=(started or now) - timedelta(seconds=10),
        stages=[
            SimStage("build", [SimJob("compile", done), SimJob("lint", done)]),
            SimStage("test", [SimJob("unit", status), SimJob("integration", status)]),
        ],
    )


CONFIG = """\
[accounts.repo]
vendor = "codearts_repo"
endpoint = "{url}"
token_env = "README_TOKEN"

[accounts.pipe]
vendor = "codearts_pipeline"
endpoint = "{url}"
project_id = "proj"
token_env = "README_TOKEN"

[accounts.flow]
vendor = "yunxiao"
endpoint = "{url}"
organization_id = "org"
token_env = "README_TOKEN"

[[pipelines]]
account = "repo"
name = "backend-api"
repository_id = 2000
pipeline_id = 1

[[pipelines]]
account = "pipe"
name = "后端构建流水线"
pipeline_id = "p1"

[[pipelines]]
account = "pipe"
name = "frontend"
pipeline_id = "p2"

[[pipelines]]
account = "flow"
name = "mobile"
pipeline_id = "123"
"""


async def on_terminal(args: list[str], env: dict[str, str], cols: int = 110) -> str:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, cols, 0, 0))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pipestatus", *args, stdin=slave, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    data = bytearray()
    loop = asyncio.get_running_loop()
    closed = asyncio.Event()

    def read() -> None:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            loop.remove_reader(master)
            closed.set()
        data.extend(chunk)

    loop.add_reader(master, read)
    await proc.wait()
    await closed.wait()
    os.close(master)
    return OWN.sub("", data.decode()).replace("\r\n", "\n")


async def in_pipe(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pipestatus", *args, stdout=asyncio.subprocess.PIPE, env=env
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def main() -> None:
    async with VendorServer(token=TOKEN) as server:
        server.add_repo_pipeline(2000, 1, run(41, "success", "main", 35, 4.5))
        server.add_v5_pipeline("proj", "p1", run(7, "failed", "release/2.0", 125, 6))
        server.add_v5_pipeline("proj", "p2", run(12, "running", "main", 3))
        mobile = [
            run(88, "pending", "main"),
            run(88, "running", "main", 1),
            run(88, "success", "main", 1.2, 1.2),
        ]
        server.add_yunxiao_pipeline("123", mobile, organization_id="org")
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "pipestatus.toml"
            path.write_text(CONFIG.format(url=server.url), encoding="utf-8")
            env = {**os.environ, "README_TOKEN": TOKEN, "TERM": "xterm", "NO_COLOR": "1"}
            status = await on_terminal(["status", "-c", str(path)], env)
            code, wait = await in_pipe(["wait", "-c", str(path), "mobile", "--interval", "2"], env)
    sys.stdout.write("```console\n$ pipestatus status\n" + status.rstrip() + "\n```\n\n")
    sys.stdout.write(
        '```console\n$ pipestatus wait mobile --interval 2; echo "exit $?"\n'
        + wait.rstrip()
        + f"\nexit {code}\n```\n"
    )


if __name__ == "__main__":
    asyncio.run(main())
