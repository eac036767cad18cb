"""The command over whole projects: ``pipelines = "*"`` (or a glob) on an account, ``runs``
and ``log``, in a subprocess against the simulated vendor server; log text that tries to drive
the terminal arrives harmless."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from clihelp import (
    HOSTILE,
    TOKEN,
    account,
    cli_env,
    foreign_escapes,
    lines_of,
    pipeline,
    run_cli,
    start,
    write,
)

from pipestatus.cli.commands.log import pick_job, safe_log
from pipestatus.model import Job, Run, Stage
from pipestatus.status import Status
from pipestatus.testing import SimJob, SimRun, SimStage, VendorServer

PIPE, FLOW, REPO = "codearts_pipeline", "yunxiao", "codearts_repo"


def a_run(status: str, number: int, *, log: str | None = None) -> SimRun:
    return SimRun(
        number,
        status,
        [SimStage("build", [SimJob("compile", "success"), SimJob("unit", status, log=log)])],
    )


@pytest.fixture
async def server() -> AsyncIterator[VendorServer]:
    async with VendorServer(token=TOKEN) as srv:
        history = [a_run("success", n) for n in range(1, 4)]
        srv.add_v5_pipeline(
            "proj", "a1", a_run("failed", 4, log="ok\nboom\n"), name="api", history=history
        )
        srv.add_v5_pipeline("proj", "w1", a_run("success", 2), name="web")
        srv.add_v5_pipeline("proj", "w2", a_run("running", 1), name="worker")
        srv.add_yunxiao_pipeline("31", a_run("success", 7), "org", name="mobile")
        yield srv


def globbed(tmp_path: Path, url: str, glob: str = "*") -> Path:
    return write(
        tmp_path / "pipestatus.toml",
        account("pipe", PIPE, url, project_id="proj", pipelines=glob),
        account("flow", FLOW, url, organization_id="org", pipelines="*"),
    )


async def test_status_follows_every_pipeline_of_the_accounts(
    server: VendorServer, tmp_path: Path
) -> None:
    """``pipelines = "*"`` follows every pipeline of the project and organization, named by
    the vendor's names, with no [[pipelines]] entry."""
    path = globbed(tmp_path, server.url)
    done = await run_cli("status", "-c", str(path), "--json", env=cli_env())
    names = [p["name"] for p in json.loads(done.out)["pipelines"]]
    assert sorted(names) == ["api", "mobile", "web", "worker"]


async def test_a_glob_follows_the_matching_pipelines(server: VendorServer, tmp_path: Path) -> None:
    """``pipelines = "w*"`` follows only the pipelines whose name matches."""
    path = globbed(tmp_path, server.url, "w*")
    done = await run_cli("status", "-c", str(path), "--json", env=cli_env())
    assert sorted(p["name"] for p in json.loads(done.out)["pipelines"]) == [
        "mobile",
        "web",
        "worker",
    ]


async def test_a_glob_on_a_vendor_that_cannot_list_is_refused(tmp_path: Path) -> None:
    """``pipelines`` on a vendor without a pipeline list is a configuration error naming it."""
    path = write(tmp_path / "p.toml", account("repo", REPO, "http://127.0.0.1:9", pipelines="*"))
    done = await run_cli("status", "-c", str(path), env=cli_env())
    assert done.code == 2
    assert "accounts.repo.pipelines" in done.err


async def test_runs_lists_history_newest_first(server: VendorServer, tmp_path: Path) -> None:
    """``runs NAME --json`` prints one record per run, newest first; ``--status`` filters."""
    path = globbed(tmp_path, server.url)
    done = await run_cli("runs", "api", "-c", str(path), "--json", env=cli_env())
    assert done.code == 0, done.err
    records = [json.loads(line) for line in done.out.splitlines()]
    assert [(r["number"], r["status"]) for r in records] == [
        (4, "failed"),
        (3, "success"),
        (2, "success"),
        (1, "success"),
    ]
    done = await run_cli("runs", "api", "-c", str(path), "--status", "success", env=cli_env())
    assert [line.split()[0] for line in lines_of(done.out)[1:] if line] == ["3", "2", "1"]


async def test_log_prints_the_failed_jobs_tail(server: VendorServer, tmp_path: Path) -> None:
    """``log NAME`` prints the log of the first failed job of the latest run (its steps' logs
    in order: the simulator's checkout step, then the job's own)."""
    path = globbed(tmp_path, server.url)
    done = await run_cli("log", "api", "-c", str(path), env=cli_env())
    assert done.code == 0, done.err
    assert done.out.startswith("checkout main @ ")
    assert done.out.endswith("\nok\nboom\n")
    assert "unit" in done.err


async def test_log_text_cannot_drive_the_terminal(server: VendorServer, tmp_path: Path) -> None:
    """A log full of escape sequences reaches stdout with no escape sequence left."""
    server.add_v5_pipeline(
        "proj", "evil", a_run("failed", 1, log=HOSTILE.replace("\ud800", "") + "\n"), name="evil"
    )
    path = globbed(tmp_path, server.url)
    done = await run_cli("log", "evil", "unit", "-c", str(path), env=cli_env())
    assert done.code == 0, done.err
    assert foreign_escapes(done.raw) == []
    assert "FORGED" in done.out
    assert "\r" not in done.out


def test_pick_job_prefers_the_named_then_the_failed_job() -> None:
    """``pick_job`` finds a job by name or ID; with none named, the first failed one."""
    jobs = (
        Job(id="1", name="compile", status=Status.SUCCESS, raw_status="COMPLETED"),
        Job(id="2", name="unit", status=Status.FAILED, raw_status="FAILED"),
    )
    stage = Stage(id="s", name="s", order=0, status=Status.FAILED, raw_status=None, jobs=jobs)
    run = Run(
        vendor="v",
        pipeline_id="p",
        run_id="r",
        number=1,
        status=Status.FAILED,
        raw_status="FAILED",
        stages=(stage,),
    )
    assert pick_job(run, None) == jobs[1]
    assert pick_job(run, "compile") == jobs[0]
    assert pick_job(run, "1") == jobs[0]
    assert pick_job(run, "nope") is None


def test_safe_log_keeps_lines_and_replaces_controls() -> None:
    """``safe_log`` keeps line breaks (CRLF as LF) and replaces every other control."""
    assert safe_log("a\r\nb\x1b[2J\n") == "a\nb\ufffd[2J\n"


async def test_watch_follows_pipelines_created_and_removed(
    server: VendorServer, tmp_path: Path
) -> None:
    """``watch --json`` over ``pipelines = "w*"`` lists the project again as it runs: a
    pipeline created mid-watch appears as ``pipe/<id>``, a deleted one is ``removed``."""
    path = globbed(tmp_path, server.url, "w*")
    proc = await start("watch", "-c", str(path), "--json", "--interval", "0.2")
    assert proc.stdout is not None
    seen: list[dict[str, object]] = []
    try:
        async with asyncio.timeout(30):
            while {"web", "worker", "mobile"} - {str(c["name"]) for c in seen}:
                seen.append(json.loads(await proc.stdout.readline()))
            server.add_v5_pipeline("proj", "w3", a_run("running", 1), name="web-next")
            server.remove_pipeline(PIPE, ["w1"], project_id="proj")
            while not (
                any(c["name"] == "pipe/w3" and c["kind"] == "first" for c in seen)
                and any(c["name"] == "web" and c["kind"] == "removed" for c in seen)
            ):
                seen.append(json.loads(await proc.stdout.readline()))
    finally:
        proc.terminate()
        async with asyncio.timeout(15):
            _, err = await proc.communicate()
    assert TOKEN not in err.decode()
    assert "Traceback" not in err.decode()


async def test_a_pipeline_named_and_globbed_is_followed_once(
    server: VendorServer, tmp_path: Path
) -> None:
    """A pipeline both named in [[pipelines]] and matched by its account's glob is followed
    once, under the name the file gives it."""
    path = write(
        tmp_path / "pipestatus.toml",
        account("pipe", PIPE, server.url, project_id="proj", pipelines="*"),
        pipeline("pipe", "the-api", pipeline_id="a1"),
    )
    done = await run_cli("status", "-c", str(path), "--json", env=cli_env())
    names = [p["name"] for p in json.loads(done.out)["pipelines"]]
    assert sorted(names) == ["the-api", "web", "worker"]
