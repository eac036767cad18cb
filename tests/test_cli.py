"""The ``pipestatus`` command: its pure renderers, then the real command in a subprocess
against the simulated vendor server of ``pipestatus.testing``.

The server runs in the test's event loop, so the command runs with
``asyncio.create_subprocess_exec`` (a blocking ``subprocess.run`` would starve the server).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import attrs
import pytest

from pipestatus import Client, Run, Stage, Status
from pipestatus.cli import (
    CCTRAY,
    cctray_project,
    current_stage,
    main,
    pipeline_record,
    render_cctray,
    render_table,
)
from pipestatus.cli.config import Followed
from pipestatus.cli.demo import demo_fleet
from pipestatus.cli.render import change_line
from pipestatus.errors import NotFoundError
from pipestatus.model import Change, ChangeKind
from pipestatus.testing import SimJob, SimRun, SimStage, VendorServer, make_fleet
from pipestatus.vendors import REGISTRY

TOKEN = "tok-9c1e5b7a3d2f4e6a"  # must never appear in the command's output
ENV = "PIPESTATUS_TEST_TOKEN"
ACTIVITIES = {"Sleeping", "Building", "CheckingModifications"}
BUILD_STATUSES = {"Success", "Failure", "Exception", "Unknown"}
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def a_run(status: str, number: int) -> SimRun:
    test = {"pending": "pending", "running": "running"}.get(status, status)
    return SimRun(
        number=number,
        status=status,
        stages=[
            SimStage("build", [SimJob("compile", "success" if test != "pending" else "pending")]),
            SimStage("test", [SimJob("unit", test)]),
        ],
    )


@pytest.fixture
async def server() -> AsyncIterator[VendorServer]:
    async with VendorServer(token=TOKEN) as srv:
        srv.add_repo_pipeline(2000, 1, [a_run("running", 1), a_run("success", 1)])
        srv.add_v5_pipeline("proj", "p1", a_run("failed", 4))
        srv.add_yunxiao_pipeline("123", a_run("running", 7), organization_id="org1")
        yield srv


def write_config(tmp_path: Path, url: str, *, extra: str = "", account: str = "") -> Path:
    path = tmp_path / "pipestatus.toml"
    path.write_text(
        f"""
[accounts.repo]
vendor = "codearts_repo"
endpoint = "{url}"
token_env = "{ENV}"
{account}

[accounts.pipe]
vendor = "codearts_pipeline"
endpoint = "{url}"
project_id = "proj"
token_env = "{ENV}"

[accounts.flow]
vendor = "yunxiao"
endpoint = "{url}"
organization_id = "org1"
token_env = "{ENV}"

[[pipelines]]
account = "repo"
repository_id = 2000
pipeline_id = 1
name = "backend"

[[pipelines]]
account = "pipe"
pipeline_id = "p1"

[[pipelines]]
account = "flow"
pipeline_id = "123"
name = "mobile"
{extra}
""",
        encoding="utf-8",
    )
    return path


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    env.update({ENV: TOKEN, "NO_COLOR": "1", **extra})
    return env


async def start(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pipestatus.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env() if env is None else env,
    )


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await start(*args, env=env)
    async with asyncio.timeout(25):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    text, errors = out.decode(), err.decode()
    assert TOKEN not in text
    assert TOKEN not in errors
    assert "Traceback" not in errors
    return proc.returncode, text, errors


# --- pure parts -----------------------------------------------------------------------------------


def followed(label: str = "backend") -> Followed:
    client = Client()
    target = client.yunxiao("https://flow.example", token="t").target("1")
    return Followed(
        label=label,
        account="flow",
        vendor="yunxiao",
        ids=(("pipeline_id", "1"),),
        target=target,
        home="https://flow.example",
    )


def run(status: Status, number: int = 5, *, finished: bool = True) -> Run:
    stages = (
        Stage(id="1", name="build", order=0, status=Status.SUCCESS, raw_status="SUCCESS"),
        Stage(id="2", name="test", order=1, status=status, raw_status=status.value.upper()),
    )
    return Run(
        vendor="yunxiao",
        pipeline_id="1",
        run_id=str(number),
        number=number,
        status=status,
        raw_status=status.value.upper(),
        started_at=T0,
        finished_at=T0 + timedelta(seconds=75) if finished else None,
        stages=stages,
    )


def test_cctray_table_covers_every_status() -> None:
    """Every status maps to an activity and a lastBuildStatus the CCTray format allows."""
    assert set(CCTRAY) == set(Status)
    for activity, build in CCTRAY.values():
        assert activity in ACTIVITIES
        assert build in BUILD_STATUSES


def test_cctray_running_shows_the_last_finished_run() -> None:
    """A run under way is Building, with the last finished run's status, label and time."""
    project = cctray_project(
        followed(), run(Status.RUNNING, 6, finished=False), run(Status.FAILED, 5), T0
    )
    assert project == {
        "name": "backend",
        "activity": "Building",
        "lastBuildStatus": "Failure",
        "lastBuildLabel": "5",
        "lastBuildTime": "2024-05-01T12:01:15Z",
        "webUrl": "https://flow.example",
    }


def test_cctray_unreadable_pipeline_is_unknown() -> None:
    """A pipeline that could not be read is Sleeping/Unknown, timed when it was read."""
    error = NotFoundError(status=404, vendor="yunxiao")
    project = cctray_project(followed(), error, None, T0)
    assert (project["activity"], project["lastBuildStatus"]) == ("Sleeping", "Unknown")
    assert project["lastBuildTime"] == "2024-05-01T12:00:00Z"


def test_render_cctray_escapes_names() -> None:
    """The feed is well-formed XML even for names with markup characters."""
    feed = render_cctray([cctray_project(followed('a<b>&"c'), run(Status.SUCCESS), None, T0)])
    (project,) = ET.fromstring(feed.encode()).iter("Project")  # noqa: S314 - our own output
    assert project.get("name") == 'a<b>&"c'
    assert project.get("lastBuildStatus") == "Success"


def test_pipeline_record_of_an_error() -> None:
    """An unreadable pipeline's record keeps every key, nulls, and the error's type and message."""
    record = pipeline_record(followed(), NotFoundError(status=404, vendor="yunxiao"))
    assert record["status"] is None
    assert record["stages"] == []
    assert record["error"] == {"type": "NotFoundError", "message": "yunxiao: HTTP 404"}


def test_current_stage_follows_the_run() -> None:
    """The current stage is the running one, or the one that failed once finished."""
    assert current_stage(run(Status.RUNNING, finished=False)) == "test"
    assert current_stage(run(Status.FAILED)) == "test"
    assert current_stage(run(Status.SUCCESS)) == "test"


def test_render_table_colours_only_when_asked() -> None:
    """The status cell carries ANSI colour only with color=True; columns stay aligned."""
    rows = [("yunxiao", "a", "failed", "test", "#5", "1m15s")]
    plain = render_table(rows, color=False)
    assert "\x1b[" not in "".join(plain)
    assert plain[0].index("STATUS") == plain[1].index("failed")
    assert "\x1b[1;31mfailed" in render_table(rows, color=True)[1]


def test_init_writes_the_example_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`init` writes the example, then refuses to overwrite it without --force."""
    path = tmp_path / "conf.toml"
    assert main(["init", str(path)]) == 0
    assert "token_env" in path.read_text(encoding="utf-8")
    path.write_text("# mine\n", encoding="utf-8")
    assert main(["init", str(path)]) == 2
    assert "--force" in capsys.readouterr().err
    assert path.read_text(encoding="utf-8") == "# mine\n"
    assert main(["init", str(path), "--force"]) == 0
    assert "token_env" in path.read_text(encoding="utf-8")


def test_fail_on_words_are_validated(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown --fail-on word is a usage error (exit 2) listing the seven statuses."""
    with pytest.raises(SystemExit) as info:
        main(["status", "--fail-on", "failed,broken"])
    assert info.value.code == 2
    assert "'broken' is not one of pending, running" in capsys.readouterr().err


def test_change_lines_size_the_vendor_column_to_what_is_shown() -> None:
    """The vendor column of change lines is as wide as the widest vendor shown, so the
    pipeline column starts at the same place on every line, and no wider."""
    short, long = followed("a"), attrs.evolve(followed("b"), vendor="a-much-longer-vendor")
    width = len(long.vendor)
    lines = [
        change_line(
            item,
            Change(
                target=item.target,
                previous=None,
                current=run(Status.SUCCESS),
                kind=ChangeKind.FIRST,
            ),
            T0,
            1,
            width,
        )
        for item in (short, long)
    ]
    assert lines[0].index("  a  ") == lines[1].index("  b  ")
    assert lines[1].index("  b  ") == lines[1].index(long.vendor) + width


def test_demo_fleet_follows_every_registered_vendor() -> None:
    """The demo follows spec.demo.ids(1..n) of every registered vendor, on accounts made from
    each spec's demo options."""
    fleet = demo_fleet(Client(), "http://127.0.0.1:1", "t", 3)
    assert [item.vendor for item in fleet] == [key for key in REGISTRY for _ in range(3)]
    for key, spec in REGISTRY.items():
        mine = [item for item in fleet if item.vendor == key]
        assert [item.target.ids for item in mine] == [spec.demo.ids(n) for n in (1, 2, 3)]
        assert all(item.target.source.options == spec.options(**spec.demo.options) for item in mine)
        assert all(dict(item.ids).keys() == set(spec.id_names) for item in mine)


async def test_the_simulated_fleet_serves_the_demo_fleet() -> None:
    """Every pipeline the demo follows is one the simulated server's make_fleet serves."""
    async with VendorServer(token=TOKEN) as server, Client(retries=0) as client:
        make_fleet(server, 2)
        fleet = demo_fleet(client, server.url, server.token, 2)
        outcomes = await client.poll(item.target for item in fleet)
    assert len(outcomes) == 2 * len(REGISTRY)
    assert all(isinstance(outcome, Run) for outcome in outcomes.values()), outcomes


# --- the command, in a subprocess -----------------------------------------------------------------


async def test_demo_prints_changes_and_ends() -> None:
    """`demo --duration 3` prints the fleet's changes as lines and exits 0."""
    code, out, _ = await run_cli("demo", "--duration", "3")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("pipestatus demo: 30 simulated pipelines")
    kinds = [line.split()[1] for line in lines[1:]]
    assert kinds.count("first") == 30
    assert len(kinds) > 30  # the fleet moved


async def test_status_json_holds_every_pipeline(server: VendorServer, tmp_path: Path) -> None:
    """`status --json` prints one document with every configured pipeline, and exits 0."""
    config = write_config(tmp_path, server.url)
    code, out, err = await run_cli("status", "-c", str(config), "--json")
    assert (code, err) == (0, "")
    document = json.loads(out)
    records = {r["name"]: r for r in document["pipelines"]}
    assert list(records) == ["backend", "pipe/p1", "mobile"]
    assert records["pipe/p1"]["status"] == "failed"
    assert records["pipe/p1"]["number"] == 4
    assert records["mobile"]["status"] == "running"
    assert [s["name"] for s in records["mobile"]["stages"]] == ["build", "test"]
    assert all(r["error"] is None for r in records.values())


async def test_status_fail_on_exits_3(server: VendorServer, tmp_path: Path) -> None:
    """`--fail-on failed,timedout` makes a failed pipeline exit 3; the table names it."""
    config = write_config(tmp_path, server.url)
    code, out, _ = await run_cli("status", "-c", str(config), "--fail-on", "failed,timedout")
    assert code == 3
    assert out.splitlines()[0].split() == [
        "VENDOR",
        "PIPELINE",
        "STATUS",
        "STAGE",
        "RUN",
        "DURATION",
    ]
    assert "pipe/p1" in out
    assert "failed" in out


async def test_status_unreadable_pipeline_exits_1(server: VendorServer, tmp_path: Path) -> None:
    """A pipeline that cannot be read gives exit 1 and an error object in its record."""
    extra = '[[pipelines]]\naccount = "pipe"\npipeline_id = "nope"\n'
    config = write_config(tmp_path, server.url, extra=extra)
    code, out, _ = await run_cli("status", "-c", str(config), "--json")
    assert code == 1
    record = json.loads(out)["pipelines"][3]
    assert record["name"] == "pipe/nope"
    assert record["error"]["type"] == "NotFoundError"


async def test_watch_json_lines(server: VendorServer, tmp_path: Path) -> None:
    """`watch --json` prints one JSON object per change, with its kind, until --duration."""
    config = write_config(tmp_path, server.url)
    args = ("watch", "-c", str(config), "--json", "--interval", "0.3", "--duration", "2.5")
    code, out, _ = await run_cli(*args)
    assert code == 0
    changes = [json.loads(line) for line in out.splitlines()]
    assert sorted(c["name"] for c in changes if c["kind"] == "first") == [
        "backend",
        "mobile",
        "pipe/p1",
    ]
    finished = [c for c in changes if c["name"] == "backend" and c["kind"] == "finished"]
    assert finished
    assert finished[0]["previous_status"] == "running"
    assert finished[0]["status"] == "success"


async def test_cctray_feed_is_valid(server: VendorServer, tmp_path: Path) -> None:
    """`cctray` prints a feed whose every attribute holds a value CCTray allows."""
    config = write_config(tmp_path, server.url)
    code, out, _ = await run_cli("cctray", "-c", str(config))
    assert code == 0
    projects = list(ET.fromstring(out.encode()).iter("Project"))  # noqa: S314 - our own output
    assert [p.get("name") for p in projects] == ["backend", "pipe/p1", "mobile"]
    for project in projects:
        assert project.get("activity") in ACTIVITIES
        assert project.get("lastBuildStatus") in BUILD_STATUSES
        assert project.get("lastBuildLabel")
        datetime.fromisoformat(project.get("lastBuildTime", ""))
        assert (project.get("webUrl") or "").startswith("http")
    by_name = {p.get("name"): p for p in projects}
    assert by_name["pipe/p1"].get("lastBuildStatus") == "Failure"
    assert by_name["mobile"].get("activity") == "Building"


async def test_cctray_serves_the_feed(server: VendorServer, tmp_path: Path) -> None:
    """`cctray --serve 127.0.0.1:0` answers /cctray.xml over HTTP and ends on SIGTERM with 0."""
    config = write_config(tmp_path, server.url)
    proc = await start("cctray", "-c", str(config), "--serve", "127.0.0.1:0", "--interval", "1")
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(15):
            line = (await proc.stdout.readline()).decode()
        assert line.startswith("serving http://127.0.0.1:")
        url = line.split()[1]
        body = ""
        async with aiohttp.ClientSession() as session:
            for _ in range(50):  # bounded: about five seconds
                try:
                    async with session.get(url) as response:
                        assert response.status == 200
                        assert response.content_type == "application/xml"
                        body = await response.text()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
        root = ET.fromstring(body.encode())  # noqa: S314 - our own output
        names = [p.get("name") for p in root.iter("Project")]
        assert names == ["backend", "pipe/p1", "mobile"]
    finally:
        if proc.returncode is None:
            proc.terminate()
        async with asyncio.timeout(10):
            _, err = await proc.communicate()
    assert proc.returncode == 0
    assert b"Traceback" not in err


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("bad-toml", "pipestatus.toml: not valid TOML"),
        ("unknown-key", "pipestatus.toml: accounts.repo.colour: unknown key"),
        ("literal-token", "pipestatus.toml: accounts.repo.token: a token must not be written"),
        ("missing-env", f"accounts.repo.token_env: environment variable {ENV} is not set"),
        ("unreachable", "accounts.repo.endpoint: cannot reach http://127.0.0.1:1"),
    ],
)
async def test_configuration_errors_exit_2(
    server: VendorServer, tmp_path: Path, case: str, expected: str
) -> None:
    """Each configuration error gives one line on stderr naming the key, exit 2, no traceback,
    and never the token."""
    env = cli_env()
    config = write_config(tmp_path, server.url)
    if case == "bad-toml":
        config.write_text("[accounts.repo\n", encoding="utf-8")
    elif case == "unknown-key":
        config = write_config(tmp_path, server.url, account='colour = "red"')
    elif case == "literal-token":
        config = write_config(tmp_path, server.url, account=f'token = "{TOKEN}"')
    elif case == "missing-env":
        del env[ENV]
    else:
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace(server.url, "http://127.0.0.1:1", 1), encoding="utf-8")
    code, _, err = await run_cli("status", "-c", str(config), "--retries", "0", env=env)
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("pipestatus: error: ")
    assert expected in err


async def test_refused_token_names_the_variable(server: VendorServer, tmp_path: Path) -> None:
    """A token refused on every pipeline of an account exits 2 naming the account's variable."""
    config = write_config(tmp_path, server.url)
    code, _, err = await run_cli("status", "-c", str(config), env=cli_env(**{ENV: "wrong"}))
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 3  # one per account
    assert f"accounts.repo.token_env: the token in {ENV} was refused" in lines[0]
