"""`watch --live` and `wait` on a pseudo-terminal: the table is redrawn in place (cursor up,
erase, the next frame), failing pipelines first, and the terminal receives no escape sequence
that the command did not write itself, however hostile the vendor's strings are."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from clihelp import (
    BAD_ENV,
    HOSTILE,
    TOKEN,
    Terminal,
    account,
    cli_env,
    foreign_escapes,
    frames,
    pipeline,
    plain,
    run_cli,
    write,
)

from pipestatus.testing import SimJob, SimRun, SimStage, VendorServer


def a_run(status: str, number: int, name: str = "test") -> SimRun:
    return SimRun(
        number=number,
        status=status,
        stages=[
            SimStage("build", [SimJob("compile", "success")]),
            SimStage(name, [SimJob("unit", status)]),
        ],
    )


@pytest.fixture
async def server() -> AsyncIterator[VendorServer]:
    async with VendorServer(token=TOKEN) as srv:
        yield srv


def terminal_env() -> dict[str, str]:
    env = cli_env(TERM="xterm-256color")
    env.pop("NO_COLOR")
    return env


async def test_watch_live_redraws_in_place_with_no_foreign_escapes(
    server: VendorServer, tmp_path: Path
) -> None:
    """`watch --live` on a terminal draws frames in place, the failing pipeline first, in
    colour; a vendor's escape sequences in a stage name arrive replaced."""
    text = HOSTILE.replace("\ud800", "")  # the simulator's payloads are UTF-8 text
    server.add_yunxiao_pipeline(
        "1", [a_run("running", 1), a_run("running", 1), a_run("success", 1)]
    )
    server.add_yunxiao_pipeline("2", a_run("failed", 3, name=text))
    server.add_yunxiao_pipeline("3", a_run("success", 2))
    path = write(
        tmp_path / "pipestatus.toml",
        account("flow", "yunxiao", server.url),
        pipeline("flow", "alpha", pipeline_id="1"),
        pipeline("flow", "后端构建流水线", pipeline_id="2"),
        pipeline("flow", "gamma", pipeline_id="3"),
    )
    screen = Terminal(rows=20, cols=120)
    await screen.start("watch", "-c", str(path), "--live", "--interval", "0.3", env=terminal_env())
    await screen.until(lambda data: len(frames(data)) >= 4 and b"success" in frames(data)[-1])
    code = await screen.stop()
    data = bytes(screen.data)
    assert code == 0
    assert foreign_escapes(data) == []
    assert b"\x1b[1A\x1b[2K" in data  # redrawn in place: cursor up, erase line
    assert b"\x1b[?25l" in data
    assert data.rstrip().endswith(b"\x1b[?25h")
    assert b"\x1b[1;31m" in data  # the failed status in bold red
    last = plain(frames(data)[-1])
    rows = [line for line in last.splitlines() if line.startswith("yunxiao")]
    assert [row.split()[1] for row in rows] == ["后端构建流水线", "alpha", "gamma"]
    assert "FORGED" in last
    assert "pwned" in last
    assert TOKEN.encode() not in data


async def test_wait_redraws_the_runs_tree_until_it_ends(
    server: VendorServer, tmp_path: Path
) -> None:
    """`wait` on a terminal redraws the run's tree in place and exits with the run's end."""
    server.add_yunxiao_pipeline(
        "1", [a_run("running", 1), a_run("running", 1), a_run("running", 1), a_run("failed", 1)]
    )
    path = write(
        tmp_path / "pipestatus.toml",
        account("flow", "yunxiao", server.url),
        pipeline("flow", "backend", pipeline_id="1"),
    )
    screen = Terminal(rows=30, cols=100)
    await screen.start("wait", "-c", str(path), "backend", "--interval", "0.3", env=terminal_env())
    assert screen.proc is not None
    code = await screen.proc.wait()
    await screen.stop()
    data = bytes(screen.data)
    assert code == 3
    assert foreign_escapes(data) == []
    drawn = frames(data)
    assert len(drawn) >= 2
    assert "… backend  reading" in plain(drawn[0])  # before the first answer
    assert any("● backend  running" in plain(frame) for frame in drawn)
    assert "✗ backend  failed" in plain(drawn[-1])
    assert "└── ✗ test" in plain(drawn[-1])


async def test_watch_live_off_a_terminal_prints_lines(server: VendorServer, tmp_path: Path) -> None:
    """`watch --live` with its output in a pipe prints plain change lines instead."""
    server.add_yunxiao_pipeline("1", a_run("running", 1))
    path = write(
        tmp_path / "pipestatus.toml",
        account("flow", "yunxiao", server.url),
        pipeline("flow", "alpha", pipeline_id="1"),
    )
    done = await run_cli("watch", "-c", str(path), "--live", "--duration", "1", "--interval", "0.3")
    assert done.code == 0
    assert "\x1b" not in done.out
    assert done.out.split()[1:4] == ["first", "yunxiao", "alpha"]


async def test_progress_shows_while_a_slow_host_is_retried(
    server: VendorServer, tmp_path: Path
) -> None:
    """While a read is slow (a 503, then a slow answer), `status` on a terminal shows a spinner
    line naming the account waited for and the retries so far; the line is erased after."""
    server.add_yunxiao_pipeline("1", a_run("success", 1))
    server.fault(vendor="yunxiao", status=503, times=1)
    server.fault(vendor="yunxiao", delay=2.0, times=1)
    path = write(
        tmp_path / "pipestatus.toml",
        account("flow", "yunxiao", server.url),
        pipeline("flow", "alpha", pipeline_id="1"),
    )
    screen = Terminal(rows=20, cols=120)
    await screen.start("status", "-c", str(path), env=terminal_env())
    assert screen.proc is not None
    code = await screen.proc.wait()
    await screen.stop()
    data = bytes(screen.data)
    assert code == 0
    assert foreign_escapes(data) == []
    shown = plain(data)
    assert f"waiting for flow ({server.url})" in shown
    assert "; 1 retry" in shown
    assert shown.rstrip().splitlines()[-1].split()[:3] == ["yunxiao", "alpha", "success"]


async def test_watch_live_keeps_drawing_when_accounts_are_refused_or_hang(
    server: VendorServer, tmp_path: Path
) -> None:
    """`watch --live` starts with one account refused and one hanging: the working pipeline
    has its status, the refused one shows `error` and a note under the table, the hanging one
    is still `reading`."""
    server.add_repo_pipeline(2000, 1, a_run("success", 1))
    server.add_v5_pipeline("proj", "p1", a_run("success", 1))
    server.add_yunxiao_pipeline("123", a_run("failed", 7))
    server.fault(vendor="codearts_pipeline", hang=True)
    path = write(
        tmp_path / "pipestatus.toml",
        account("refused", "codearts_repo", server.url, env=BAD_ENV),
        account("hung", "codearts_pipeline", server.url, project_id="proj"),
        account("good", "yunxiao", server.url),
        pipeline("refused", "refused-api", repository_id=2000, pipeline_id=1),
        pipeline("hung", "hung-worker", pipeline_id="p1"),
        pipeline("good", "good-app", pipeline_id="123"),
    )
    screen = Terminal(rows=20, cols=250)  # room for the note's long temporary path
    args = ("watch", "-c", str(path), "--live", "--interval", "0.3", "--request-timeout", "60")
    await screen.start(*args, env=terminal_env())
    await screen.until(
        lambda data: b"was refused" in frames(data)[-1] and b"failed" in frames(data)[-1]
    )
    code = await screen.stop()
    last = plain(frames(bytes(screen.data))[-1])
    assert code == 0
    rows = {
        line.split()[1]: line.split()[2]
        for line in last.splitlines()
        if line.startswith(("code", "yunxiao"))
    }
    assert rows == {"refused-api": "error", "good-app": "failed", "hung-worker": "reading"}
    assert f"accounts.refused.token_env: the token in {BAD_ENV} was refused" in last
