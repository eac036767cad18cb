"""Helpers of the command's tests: a configuration for the simulated server, the command in a
subprocess (pipes, or a pseudo-terminal), and what a terminal must never receive.

The server runs in the test's event loop, so the command runs with
``asyncio.create_subprocess_exec`` and a pseudo-terminal is read with ``loop.add_reader``
(a blocking read would starve the server).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import re
import struct
import sys
import termios
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

TOKEN = "tok-5d1c9e7b3a2f4e6b"  # must never appear in the command's output
ENV = "PIPESTATUS_CLI_TOKEN"
BAD_ENV = "PIPESTATUS_CLI_BAD_TOKEN"

#: Every escape sequence the command itself writes on a terminal: SGR colours and styles,
#: cursor up, erase line, show/hide cursor (rich's live display). Anything else starting with
#: ESC (an OSC title, a hyperlink, a cursor jump, a screen clear) came from somewhere else.
OWN_ESCAPES = re.compile(rb"\x1b\[(?:[0-9;]*m|[0-9]*A|2?K|\?25[lh])")
#: A hostile string: a window title (OSC), a screen clear (CSI 2J), a forged line (CR LF),
#: a C1 CSI (U+009B), a bell, a right-to-left override and a lone surrogate.
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\r\nFORGED\x9b31m\u202eevil\ud800"


def foreign_escapes(data: bytes) -> list[bytes]:
    """Every ESC-started sequence of ``data`` (or a lone ESC) that the command does not write."""
    found = []
    for match in re.finditer(rb"\x1b.{0,12}", data, re.S):
        if not OWN_ESCAPES.match(data, match.start()):
            found.append(match.group())
    return found


def account(name: str, vendor: str, url: str, env: str = ENV, **options: str) -> str:
    lines = [f"[accounts.{name}]", f'vendor = "{vendor}"', f'endpoint = "{url}"']
    lines.append(f'token_env = "{env}"')
    lines += [f'{key} = "{value}"' for key, value in options.items()]
    return "\n".join(lines) + "\n"


def _toml(value: str | int) -> str:
    return str(value) if isinstance(value, int) else json.dumps(value)  # JSON strings are TOML's


def pipeline(account_name: str, name: str | None = None, **keys: str | int) -> str:
    lines = ["[[pipelines]]", f'account = "{account_name}"']
    if name is not None:
        lines.append(f"name = {_toml(name)}")
    lines += [f"{key} = {_toml(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


def write(path: Path, *parts: str) -> Path:
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def cli_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (ENV, BAD_ENV, "PIPESTATUS_CONFIG", "FORCE_COLOR", "COLUMNS")
    }
    env.update({ENV: TOKEN, BAD_ENV: "wrong-token", "NO_COLOR": "1", **extra})
    return env


@attrs.frozen
class Done:
    code: int
    out: str
    err: str
    raw: bytes


async def start(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    module: str = "pipestatus.cli",
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env() if env is None else env,
        cwd=cwd,
    )


async def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    module: str = "pipestatus.cli",
) -> Done:
    """Run the command to its end (bounded); its output never holds the token or a
    traceback."""
    proc = await start(*args, env=env, cwd=cwd, module=module)
    async with asyncio.timeout(40):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    text, errors = out.decode("utf-8"), err.decode("utf-8")
    for stream in (text, errors):
        assert TOKEN not in stream
    assert "Traceback" not in errors, errors
    return Done(proc.returncode, text, errors, out)


class Terminal:
    """The command on a pseudo-terminal of ``rows`` x ``cols``: its output is collected as
    it comes, and :meth:`until` waits for a condition on it."""

    def __init__(self, rows: int = 24, cols: int = 120) -> None:
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.data = bytearray()
        self._grew = asyncio.Event()
        self.proc: asyncio.subprocess.Process | None = None

    def _read(self) -> None:
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # the other side closed
            chunk = b""
        if not chunk:
            asyncio.get_running_loop().remove_reader(self.master)
        self.data.extend(chunk)
        self._grew.set()

    async def start(self, *args: str, env: dict[str, str]) -> None:
        os.set_blocking(self.master, False)
        asyncio.get_running_loop().add_reader(self.master, self._read)
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pipestatus.cli",
            *args,
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            env=env,
        )
        os.close(self.slave)

    async def until(self, condition: Callable[[bytes], bool], seconds: float = 30) -> None:
        async with asyncio.timeout(seconds):
            while not condition(bytes(self.data)):
                self._grew.clear()
                await self._grew.wait()

    async def stop(self) -> int:
        """SIGTERM, then every byte until the terminal closes; the exit status."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.terminate()
        async with asyncio.timeout(15):
            code = await self.proc.wait()
            while True:  # drain what is left
                self._grew.clear()
                try:
                    async with asyncio.timeout(0.5):
                        await self._grew.wait()
                except TimeoutError:
                    break
        asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)
        return code


def frames(data: bytes) -> list[bytes]:
    """The frames of a live view: the output split at each redraw (cursor up, erase)."""
    return re.split(rb"\r(?:\x1b\[2K\x1b\[1A)+\x1b\[2K", data)


def plain(data: bytes) -> str:
    """``data`` without the command's own escape sequences."""
    return OWN_ESCAPES.sub(b"", data).decode("utf-8", errors="replace")


def lines_of(text: str) -> list[str]:
    return [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]


def names_in(table: str, names: Sequence[str]) -> list[str]:
    return [name for name in names if name in table]
