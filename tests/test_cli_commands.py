"""The command's 0.2 subcommands in a subprocess against the simulated vendor server: `wait`
(each exit status), `status` with filters and --json, `view`, configuration discovery,
--version, `python -m pipestatus`, `init --demo`, `demo --json`, vendor strings that try to
drive the terminal, and long-running commands that keep serving when accounts are refused or
hang."""

from __future__ import annotations

import asyncio
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from clihelp import (
    BAD_ENV,
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

from pipestatus._version import __version__
from pipestatus.testing import SimJob, SimRun, SimStage, VendorServer

REPO, PIPE, FLOW = "codearts_repo", "codearts_pipeline", "yunxiao"


def a_run(status: str, number: int = 1, *, ref: str = "main", stage: str = "test") -> SimRun:
    done = "pending" if status == "pending" else "success"
    return SimRun(
        number=number,
        status=status,
        ref=ref,
        stages=[
            SimStage("build", [SimJob("compile", done)]),
            SimStage(stage, [SimJob("unit", status)]),
        ],
    )


@pytest.fixture
async def server() -> AsyncIterator[VendorServer]:
    async with VendorServer(token=TOKEN) as srv:
        yield srv


def config(tmp_path: Path, url: str, *pipelines: str, name: str = "pipestatus.toml") -> Path:
    return write(
        tmp_path / name,
        account("repo", REPO, url),
        account("pipe", PIPE, url, project_id="proj"),
        account("flow", FLOW, url),
        *pipelines,
    )


# --- wait -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("final", "code"),
    [("success", 0), ("skipped", 0), ("failed", 3), ("timedout", 3), ("canceled", 3)],
)
async def test_wait_exits_by_how_the_run_ended(
    server: VendorServer, tmp_path: Path, final: str, code: int
) -> None:
    """`wait` reads until the run is terminal: exit 0 for success or skipped, 3 for failed,
    timed out or canceled; off a terminal it prints a line per change, then the tree."""
    server.add_yunxiao_pipeline("9", [a_run("pending", 4), a_run("running", 4), a_run(final, 4)])
    path = config(tmp_path, server.url, pipeline("flow", "backend", pipeline_id="9"))
    done = await run_cli("wait", "-c", str(path), "backend", "--interval", "0.05")
    assert done.code == code, done.err
    lines = lines_of(done.out)
    words = [line.split()[2] for line in lines if line[:2].isdigit()]  # HH:MM:SS  backend  ...
    assert words == ["pending", "running", final]
    assert any(line.startswith(("✓", "✗", "!", "⊘", "-")) and "backend" in line for line in lines)
    assert "├── ✓ build" in done.out


async def test_wait_gives_up_with_4(server: VendorServer, tmp_path: Path) -> None:
    """A run that does not finish within --timeout makes `wait` exit 4 saying what it saw."""
    server.add_yunxiao_pipeline("9", a_run("running", 4))
    path = config(tmp_path, server.url, pipeline("flow", "backend", pipeline_id="9"))
    args = ("wait", "-c", str(path), "backend", "--timeout", "0.5", "--interval", "0.1")
    done = await run_cli(*args)
    assert done.code == 4
    assert "backend: gave up waiting after 0.5 s (last seen running)" in done.err


async def test_wait_waits_out_passing_errors(server: VendorServer, tmp_path: Path) -> None:
    """5xx answers (after the client's retries) do not end a wait: the run's end does."""
    server.add_yunxiao_pipeline("9", [a_run("running", 2), a_run("success", 2)])
    server.fault(vendor=FLOW, status=503, times=3)
    path = config(tmp_path, server.url, pipeline("flow", "backend", pipeline_id="9"))
    args = ("wait", "-c", str(path), "backend", "--interval", "0.05", "--retries", "1")
    done = await run_cli(*args)
    assert done.code == 0, done.err
    assert "ServerError" in done.out  # the failed read had its line


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unknown-name", "no pipeline named 'bakend' (did you mean backend?)"),
        ("refused-token", f"accounts.flow.token_env: the token in {BAD_ENV} was refused"),
        ("no-such-pipeline", "backend: NotFoundError"),
        ("unreachable", "accounts.flow.endpoint: cannot reach http://127.0.0.1:1"),
    ],
)
async def test_wait_usage_and_configuration_errors_exit_2(
    server: VendorServer, tmp_path: Path, case: str, message: str
) -> None:
    """An unknown name, a refused token, a pipeline the vendor does not know or an endpoint
    that cannot be reached end `wait` with 2 and one line naming the problem."""
    server.add_yunxiao_pipeline("9", a_run("running"))
    url, env, name, pid = server.url, BAD_ENV if case == "refused-token" else None, "backend", "9"
    if case == "unreachable":
        url = "http://127.0.0.1:1"
    if case == "no-such-pipeline":
        pid = "404"
    path = write(
        tmp_path / "c.toml",
        account("flow", FLOW, url, **({"env": env} if env else {})),
        pipeline("flow", "backend", pipeline_id=pid),
    )
    if case == "unknown-name":
        name = "bakend"
    done = await run_cli("wait", "-c", str(path), name, "--interval", "0.05", "--retries", "0")
    assert done.code == 2
    assert message in done.err


async def test_wait_json_prints_only_the_final_record(server: VendorServer, tmp_path: Path) -> None:
    """`wait --json` prints one JSON document, the run as it ended, and nothing else."""
    server.add_yunxiao_pipeline("9", [a_run("running", 3), a_run("failed", 3)])
    path = config(tmp_path, server.url, pipeline("flow", "backend", pipeline_id="9"))
    done = await run_cli("wait", "-c", str(path), "backend", "--interval", "0.05", "--json")
    assert done.code == 3
    record = json.loads(done.out)
    assert (record["name"], record["status"], record["number"]) == ("backend", "failed", 3)


# --- status and view --------------------------------------------------------------------------


@pytest.fixture
async def fleet(server: VendorServer, tmp_path: Path) -> Path:
    server.add_repo_pipeline(2000, 1, a_run("success", 1, ref="main"))
    server.add_v5_pipeline("proj", "p1", a_run("failed", 4, ref="release/2.0"))
    server.add_v5_pipeline("proj", "p2", a_run("running", 5, ref="main"))
    server.add_yunxiao_pipeline("123", a_run("failed", 7, ref="release/2.1"))
    return config(
        tmp_path,
        server.url,
        pipeline("repo", "backend-api", repository_id=2000, pipeline_id=1),
        pipeline("pipe", "backend-worker", pipeline_id="p1"),
        pipeline("pipe", "frontend", pipeline_id="p2"),
        pipeline("flow", "mobile", pipeline_id="123"),
    )


def table_names(out: str) -> list[str]:
    return [line.split()[1] for line in lines_of(out)[1:] if line]


@pytest.mark.parametrize(
    ("filters", "names"),
    [
        ((), ["backend-api", "backend-worker", "frontend", "mobile"]),
        (("backend*",), ["backend-api", "backend-worker"]),
        (("frontend", "mobile"), ["frontend", "mobile"]),
        (("--status", "failed"), ["backend-worker", "mobile"]),
        (("--status", "running,success"), ["backend-api", "frontend"]),
        (("--vendor", PIPE), ["backend-worker", "frontend"]),
        (("--branch", "release/*"), ["backend-worker", "mobile"]),
        (("backend*", "--status", "failed", "--vendor", PIPE), ["backend-worker"]),
    ],
)
async def test_status_filters(fleet: Path, filters: tuple[str, ...], names: list[str]) -> None:
    """Names (globs), --status, --vendor and --branch narrow the table and the JSON document
    to the same pipelines."""
    done = await run_cli("status", "-c", str(fleet), *filters)
    assert table_names(done.out) == names
    data = await run_cli("status", "-c", str(fleet), *filters, "--json")
    assert [record["name"] for record in json.loads(data.out)["pipelines"]] == names


async def test_status_fail_on_looks_at_the_shown_pipelines(fleet: Path) -> None:
    """--fail-on exits 3 for a failed pipeline that is shown, and 0 when the filter hides it."""
    assert (await run_cli("status", "-c", str(fleet), "--fail-on", "failed")).code == 3
    hidden = await run_cli("status", "-c", str(fleet), "frontend", "--fail-on", "failed")
    assert hidden.code == 0


async def test_status_wide_has_branch_commit_trigger_and_age(fleet: Path) -> None:
    """--wide adds the branch, commit, trigger and age columns, even off a terminal."""
    done = await run_cli("status", "-c", str(fleet), "--wide")
    header = lines_of(done.out)[0].split()
    assert header[-4:] == ["BRANCH", "COMMIT", "TRIGGER", "AGE"]
    mobile = next(line for line in lines_of(done.out) if line.startswith(FLOW))
    assert "release/2.1" in mobile
    assert "manual" in mobile


async def test_status_unknown_name_exits_2(fleet: Path) -> None:
    """A NAME no pipeline matches is a usage error (exit 2) naming the close ones."""
    done = await run_cli("status", "-c", str(fleet), "mobil")
    assert done.code == 2
    assert "no pipeline named 'mobil' (did you mean mobile?)" in done.err


async def test_view_prints_the_tree_with_times_and_pages(fleet: Path) -> None:
    """`view NAME` prints the run, its stages and its jobs, with start times and durations;
    --json prints the same run as one record."""
    done = await run_cli("view", "-c", str(fleet), "mobile")
    assert done.code == 0, done.err
    lines = lines_of(done.out)
    assert lines[0].startswith("✗ mobile  failed  #7  release/2.1")
    assert lines[1].startswith("started ")
    assert ", took " in lines[1]
    assert any(line.startswith("├── ✓ build") for line in lines)
    compile_line = next(line for line in lines if "compile" in line)
    assert compile_line.startswith("│   └── ✓ compile  success")
    assert re.search(r"success +\d\d:\d\d:\d\d +[0-9hms]+$", compile_line), compile_line
    record = json.loads((await run_cli("view", "-c", str(fleet), "mobile", "--json")).out)
    assert [stage["name"] for stage in record["stages"]] == ["build", "test"]
    assert record["stages"][1]["jobs"][0]["status"] == "failed"


async def test_view_shows_the_runs_page(fleet: Path) -> None:
    """A v5 run's page (its detail URL) is under the run's times; its batch status has
    stages only, so the tree is stages."""
    lines = lines_of((await run_cli("view", "-c", str(fleet), "backend-worker")).out)
    assert lines[2].startswith("https://")
    assert "/detail/" in lines[2]
    assert [line.split()[2] for line in lines if line.startswith(("├", "└"))] == ["build", "test"]


async def test_view_of_a_v4_run_shows_its_job_pages(fleet: Path) -> None:
    """v4 runs carry no page of their own: the tree shows each job's page."""
    done = await run_cli("view", "-c", str(fleet), "backend-api")
    job_lines = [line for line in lines_of(done.out) if "compile" in line or "unit" in line]
    assert job_lines
    assert all("https://" in line for line in job_lines)


# --- configuration discovery, --version, python -m ---------------------------------------------


@pytest.mark.parametrize("where", ["env", "cwd", "xdg", "home"])
async def test_the_configuration_is_found_without_c(
    server: VendorServer, tmp_path: Path, where: str
) -> None:
    """Without -c the file comes from $PIPESTATUS_CONFIG, else ./pipestatus.toml, else the
    user's configuration folder ($XDG_CONFIG_HOME, else ~/.config)."""
    server.add_yunxiao_pipeline("9", a_run("success"))
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    home.mkdir()
    env = cli_env(HOME=str(home))
    env.pop("XDG_CONFIG_HOME", None)
    folder = {
        "env": tmp_path / "elsewhere",
        "cwd": work,
        "xdg": tmp_path / "xdg" / "pipestatus",
        "home": home / ".config" / "pipestatus",
    }[where]
    folder.mkdir(parents=True, exist_ok=True)
    name = "mine.toml" if where == "env" else "pipestatus.toml"
    path = write(
        folder / name, account("flow", FLOW, server.url), pipeline("flow", where, pipeline_id="9")
    )
    if where == "env":
        env["PIPESTATUS_CONFIG"] = str(path)
        write(work / "pipestatus.toml", "this is not TOML")  # $PIPESTATUS_CONFIG wins
    if where == "xdg":
        env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    done = await run_cli("status", "--json", env=env, cwd=work)
    assert done.code == 0, done.err
    assert [r["name"] for r in json.loads(done.out)["pipelines"]] == [where]


async def test_no_configuration_anywhere_names_the_places(tmp_path: Path) -> None:
    """With no file anywhere, the command exits 2 naming every place it looked and how to
    make one."""
    env = cli_env(HOME=str(tmp_path))
    env.pop("XDG_CONFIG_HOME", None)
    done = await run_cli("status", env=env, cwd=tmp_path)
    assert done.code == 2
    assert str(tmp_path / "pipestatus.toml") in done.err
    assert str(tmp_path / ".config" / "pipestatus" / "pipestatus.toml") in done.err
    assert "pipestatus init" in done.err


async def test_help_says_where_the_configuration_is_found() -> None:
    """The top help names the three places, and each command's help has an example."""
    done = await run_cli("--help")
    assert "$PIPESTATUS_CONFIG, ./pipestatus.toml" in done.out
    for command in ("status", "view", "wait", "watch", "cctray", "init", "demo", "completion"):
        text = (await run_cli(command, "--help")).out
        assert "example:\n  pipestatus " in text or "example:\n  source " in text, command


@pytest.mark.parametrize("module", ["pipestatus", "pipestatus.cli"])
async def test_version_and_python_m(module: str) -> None:
    """`python -m pipestatus --version` (and the CLI module) prints the version."""
    done = await run_cli("--version", module=module)
    assert (done.code, done.out.strip()) == (0, f"pipestatus {__version__}")


async def test_python_m_pipestatus_runs_a_command(fleet: Path) -> None:
    """`python -m pipestatus status` is the same command."""
    done = await run_cli("status", "-c", str(fleet), "--json", module="pipestatus")
    assert len(json.loads(done.out)["pipelines"]) == 4


# --- init --demo and demo --------------------------------------------------------------------


async def test_init_demo_writes_a_configuration_for_the_simulated_server(
    tmp_path: Path,
) -> None:
    """`init --demo` writes a configuration of the demo fleet that reads every pipeline of a
    simulated server started as its head says."""
    from pipestatus.testing import make_fleet

    async with VendorServer(token="demo-token") as srv:
        make_fleet(srv, 2)
        path = tmp_path / "demo.toml"
        made = await run_cli("init", "--demo", str(path), "--url", srv.url, "--size", "2")
        assert made.code == 0
        text = path.read_text(encoding="utf-8")
        assert "--token demo-token" in text
        env = cli_env(PIPESTATUS_DEMO_TOKEN="demo-token")
        done = await run_cli("status", "-c", str(path), "--json", env=env)
    assert done.code == 0, done.err
    records = json.loads(done.out)["pipelines"]
    assert len(records) == 6
    assert all(record["error"] is None for record in records)


async def test_demo_json_writes_only_json_on_stdout() -> None:
    """`demo --json`'s standard output is JSON Lines only; its title goes to stderr."""
    done = await run_cli("demo", "--json", "--duration", "2", "--size", "1")
    assert done.code == 0
    records = [json.loads(line) for line in done.out.splitlines()]
    assert len(records) >= 3
    assert "pipestatus demo:" in done.err


# --- hostile vendor strings ------------------------------------------------------------------


async def test_vendor_strings_never_reach_the_output_raw(
    server: VendorServer, tmp_path: Path
) -> None:
    """Names, stages, jobs, branches and error messages holding escape sequences, CR/LF, C1
    controls and lone surrogates come out replaced: no foreign ESC in the table, the tree or
    on stderr, and --json is valid UTF-8 JSON."""
    # The simulator encodes run payloads as UTF-8 text, which cannot hold a lone surrogate:
    # runs carry the rest, the raw error body (JSON escapes, as a vendor may send) all of it.
    text = HOSTILE.replace("\ud800", "")
    hostile_run = SimRun(
        number=1, status="failed", ref=text, stages=[SimStage(text, [SimJob(text, "failed")])]
    )
    server.add_yunxiao_pipeline("9", hostile_run)
    escaped = json.dumps(HOSTILE)  # ASCII, with \u001b, \u009b and \ud800 escapes
    body = f'{{"errorCode": {escaped}, "errorMessage": {escaped}}}'.encode()
    server.fault(pipeline="10", status=403, body=body)
    path = config(
        tmp_path,
        server.url,
        pipeline("flow", "bad\x1b[31m\u009bname", pipeline_id="9"),
        pipeline("flow", "forbidden", pipeline_id="10"),
    )
    for args in (
        ("status", "--wide"),
        ("view", "bad\x1b[31m\u009bname"),
        ("watch", "--duration", "1"),
    ):
        done = await run_cli(args[0], "-c", str(path), *args[1:], "-v")
        for stream in (done.raw, done.err.encode()):
            assert b"\x1b" not in stream, (args, stream)
            assert b"\xc2\x9b" not in stream
        assert "FORGED" in done.out + done.err
    data = await run_cli("status", "-c", str(path), "--json")
    document = json.loads(data.raw.decode("utf-8"))
    assert all(ord(c) >= 0x20 for c in json.dumps(document, ensure_ascii=False))
    assert not foreign_escapes(data.raw)


# --- long-running commands keep going ----------------------------------------------------------


def resilient_config(tmp_path: Path, url: str) -> Path:
    """Three accounts: one whose token is refused, one that hangs, one that works."""
    return write(
        tmp_path / "pipestatus.toml",
        account("refused", REPO, url, env=BAD_ENV),
        account("hung", PIPE, url, project_id="proj"),
        account("good", FLOW, url),
        pipeline("refused", "refused-api", repository_id=2000, pipeline_id=1),
        pipeline("hung", "hung-worker", pipeline_id="p1"),
        pipeline("good", "good-app", pipeline_id="123"),
    )


@pytest.fixture
async def troubled(server: VendorServer, tmp_path: Path) -> Path:
    server.add_repo_pipeline(2000, 1, a_run("success"))
    server.add_v5_pipeline("proj", "p1", a_run("success"))
    server.add_yunxiao_pipeline("123", a_run("failed", 7))
    server.fault(vendor=PIPE, hang=True)
    return resilient_config(tmp_path, server.url)


async def test_cctray_serves_while_an_account_is_refused_and_one_hangs(troubled: Path) -> None:
    """`cctray --serve` listens at once and serves the working account's pipeline while one
    account's token is refused (a warning says so) and another's requests hang."""
    proc = await start(
        "cctray", "-c", str(troubled), "--serve", "127.0.0.1:0", "--interval", "0.5",
        "--request-timeout", "60",
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(15):
            line = (await proc.stdout.readline()).decode()
        assert line.startswith("serving http://127.0.0.1:")
        url = line.split()[1]
        projects: dict[str, dict[str, str]] = {}
        async with aiohttp.ClientSession() as session, asyncio.timeout(15):
            while projects.get("good-app", {}).get("lastBuildStatus") != "Failure":
                async with session.get(url) as response:
                    body = await response.read()
                root = ET.fromstring(body)  # noqa: S314 - our own output
                projects = {p.get("name", ""): dict(p.attrib) for p in root.iter("Project")}
                await asyncio.sleep(0.1)
        assert projects["refused-api"]["lastBuildStatus"] == "Unknown"
        assert projects["hung-worker"]["lastBuildStatus"] == "Unknown"
    finally:
        proc.terminate()
        async with asyncio.timeout(15):
            _, err = await proc.communicate()
    assert proc.returncode == 0
    assert f"the token in {BAD_ENV} was refused" in err.decode()
    assert "retrying" in err.decode()


async def test_watch_goes_on_while_an_account_is_refused_and_one_hangs(troubled: Path) -> None:
    """`watch --json` reports the working account's pipeline and the refused one as an error
    while another account hangs, and ends normally."""
    args = ("watch", "-c", str(troubled), "--json", "--interval", "0.5", "--duration", "3")
    done = await run_cli(*args, "--request-timeout", "60")
    assert done.code == 0, done.err
    changes = [json.loads(line) for line in done.out.splitlines()]
    by_name = {change["name"]: change for change in changes if change["kind"] in ("first", "error")}
    assert by_name["good-app"]["status"] == "failed"
    assert by_name["refused-api"]["error"]["type"] == "AuthError"
    assert "hung-worker" not in by_name
    assert f"the token in {BAD_ENV} was refused" in done.err


async def test_watch_strict_stops_at_a_refused_account(
    server: VendorServer, tmp_path: Path
) -> None:
    """`watch --strict` keeps 0.1's behaviour: a refused account at start exits 2."""
    server.add_repo_pipeline(2000, 1, a_run("success"))
    server.add_yunxiao_pipeline("123", a_run("failed", 7))
    path = write(
        tmp_path / "c.toml",
        account("refused", REPO, server.url, env=BAD_ENV),
        account("good", FLOW, server.url),
        pipeline("refused", "refused-api", repository_id=2000, pipeline_id=1),
        pipeline("good", "good-app", pipeline_id="123"),
    )
    done = await run_cli("watch", "-c", str(path), "--strict", "--interval", "0.5", "--json")
    assert done.code == 2
    assert f"the token in {BAD_ENV} was refused" in done.err
