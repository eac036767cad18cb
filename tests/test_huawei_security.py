"""Huawei secrets stay secret: the SK, the IAM password, IAM tokens and security tokens appear in
no repr or str, no log record (at DEBUG), no exception or its chain, no URL and no output of the
command, even when a server echoes them back."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from pipestatus import Client
from pipestatus.auth import HuaweiAKSK, HuaweiIAM
from pipestatus.auth._iam import Hiding
from pipestatus.errors import AuthError, PipestatusError
from pipestatus.testing import SimJob, SimRun, SimStage, VendorServer

TOKEN = "srv-SECRET-0a9b8c7d"  # the server's token (the demo SK and password)
AK = "SECURITYTESTAK000001"
SK = "SK-SECRET-5e4d3c2b1a"
PASSWORD = "PW-SECRET-6f7e8d9c"
SECURITY_TOKEN = "ST-SECRET-1b2c3d4e"
USER, DOMAIN = "sec-user", "sec-domain"
REPO, PIPE = 2000, 1
HEADER = "x-auth-token"


def _run() -> SimRun:
    return SimRun(3, "success", [SimStage("build", [SimJob("make", "success")])])


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def server() -> AsyncIterator[VendorServer]:
    async with VendorServer(token=TOKEN) as srv:
        srv.add_repo_pipeline(REPO, PIPE, _run())
        srv.add_v5_pipeline("proj", "p1", _run())
        srv.huawei.add_key(AK, SK)
        srv.huawei.add_user(USER, PASSWORD, DOMAIN)
        yield srv


def _issued(server: VendorServer) -> set[str]:
    """Every secret the server issued: IAM tokens, minted SKs and security tokens."""
    found = set(server.huawei.tokens)
    for key in server.huawei.keys.values():
        found.add(key.sk)
        if key.security_token:
            found.add(key.security_token)
    return found - {TOKEN}


def _secrets(server: VendorServer) -> set[str]:
    return {SK, PASSWORD, SECURITY_TOKEN, TOKEN, *_issued(server)}


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, its __cause__ and __context__, recursively."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]


def _texts(error: BaseException) -> list[str]:
    texts = []
    for each in _chain(error):
        texts += [str(each), repr(each), repr(each.args), repr(vars(each))]
        texts.append("".join(traceback.format_exception(each)))
    return texts


def _leaks(texts: list[str], secrets: set[str]) -> list[str]:
    return [
        f"{secret[:6]}... in {text[:300]!r}"
        for text in texts
        for secret in secrets
        if secret in text
    ]


def _iam(server: VendorServer, password: str = PASSWORD) -> HuaweiIAM:
    return HuaweiIAM(USER, password, DOMAIN, "cn-north-4", iam_url=server.url)


def test_no_secret_in_credentials_reprs() -> None:
    """No credentials object, bound auth or adapter shows a secret in its repr or str."""
    aksk = HuaweiAKSK(AK, SK, project_id="p", security_token=SECURITY_TOKEN)
    iam = HuaweiIAM(USER, PASSWORD, DOMAIN, "cn-north-4", iam_url="https://iam.example")
    client = Client()
    objects: list[object] = [
        aksk,
        iam,
        iam.temporary_aksk(900),
        iam.assume("agency", domain="other"),
        client.codearts_repo("https://h", credentials=aksk),
        client.codearts_pipeline("https://h", project_id="p", credentials=iam),
        client.codearts_repo("https://h", credentials=aksk).target(1, 2),
    ]
    from pipestatus.auth import Binding

    objects += [cred.bind(Binding(token_header="X-T")) for cred in (aksk, iam)]
    texts = [repr(o) for o in objects] + [str(o) for o in objects]
    assert not _leaks(texts, {SK, PASSWORD, SECURITY_TOKEN})
    assert "AKSK" in repr(aksk)
    assert USER in repr(iam)


ERRORS: dict[str, Callable[[Client, VendorServer], Awaitable[object]]] = {
    "wrong-sk": lambda c, s: c.codearts_repo(
        s.url, credentials=HuaweiAKSK(AK, SK + "x", security_token=SECURITY_TOKEN)
    ).latest_run(REPO, PIPE),
    "stale-date": lambda c, s: c.codearts_pipeline(
        s.url,
        project_id="proj",
        credentials=HuaweiAKSK(
            AK, SK, clock=lambda: s.huawei.now().replace(year=s.huawei.now().year - 1)
        ),
    ).latest_runs(["p1"]),
    "bad-password": lambda c, s: c.codearts_repo(
        s.url, credentials=_iam(s, "wrong-" + PASSWORD)
    ).latest_run(REPO, PIPE),
    "iam-down": lambda c, s: c.codearts_repo(s.url, credentials=_iam(s)).latest_run(REPO, PIPE),
    "mint-refused": lambda c, s: c.codearts_repo(
        s.url, credentials=_iam(s).temporary_aksk(900)
    ).latest_run(REPO, PIPE),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
async def test_no_secret_in_errors_their_chain_or_debug_logs(
    server: VendorServer, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    """Each failure of Huawei credentials raises a PipestatusError; neither it, anything in
    its __cause__/__context__ chain, nor any DEBUG record of the "pipestatus" logger holds a
    secret."""
    caplog.set_level(logging.DEBUG, logger="pipestatus")
    if case == "iam-down":
        server.fault(path_prefix="/v3/auth/tokens", status=503)
    if case == "mint-refused":
        server.fault(path_prefix="/v3.0/OS-CREDENTIAL", status=401)
    async with Client(retries=1, sleep=_no_sleep) as client:
        with pytest.raises(PipestatusError) as caught:
            await ERRORS[case](client, server)
    texts = _texts(caught.value)
    texts += [record.getMessage() for record in caplog.records] + [caplog.text]
    assert not _leaks(texts, _secrets(server))


async def test_debug_logs_of_a_working_watch_hold_no_secret(
    server: VendorServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A watch over AK/SK, IAM and temporary-key accounts, through token renewals, logs at
    DEBUG without a secret, and its changes show none."""
    caplog.set_level(logging.DEBUG, logger="pipestatus")
    server.huawei.token_lifetime = 2.0
    script = [
        SimRun(n, status, [SimStage("build", [SimJob("make", status)])])
        for n in range(1, 100)
        for status in ("running", "success")
    ]
    server.add_repo_pipeline(REPO, 2, script)
    server.add_v5_pipeline("proj", "p2", script)
    iam = HuaweiIAM(
        USER, PASSWORD, DOMAIN, "cn-north-4", iam_url=server.url, clock=server.huawei.now
    )
    aksk = HuaweiAKSK(AK, SK, security_token=None)
    changes = []
    async with Client(retries=0) as client:
        targets = [
            client.codearts_repo(server.url, credentials=aksk).target(REPO, 2),
            client.codearts_pipeline(server.url, project_id="proj", credentials=iam).target("p2"),
            client.codearts_repo(server.url, credentials=iam.temporary_aksk()).target(REPO, 2),
        ]
        watch = client.watch(targets, interval=0.01, errors=True)
        async with asyncio.timeout(20):
            async for change in watch:
                changes.append(change)
                server.huawei.advance(1.5)
                if len(changes) == 12:
                    break
        await watch.aclose()
    assert len(server.huawei.tokens) >= 2
    texts = [record.getMessage() for record in caplog.records] + [caplog.text]
    texts += [repr(change) for change in changes]
    assert not _leaks(texts, _secrets(server))


async def test_no_secret_in_any_url(server: VendorServer) -> None:
    """No request of any Huawei credentials carries a secret in its path or query."""
    async with Client(retries=0) as client:
        iam = _iam(server)
        await client.codearts_repo(server.url, credentials=HuaweiAKSK(AK, SK)).jobs(REPO, PIPE)
        await client.codearts_repo(server.url, credentials=iam).latest_run(REPO, PIPE)
        await client.codearts_repo(server.url, credentials=iam.temporary_aksk()).latest_run(
            REPO, PIPE
        )
    urls = [f"{r.path}?{r.query}" for r in server.requests]
    assert len(urls) >= 5
    assert not _leaks(urls, _secrets(server))


class Echo:
    """A gateway that refuses everything and echoes the credentials it was sent."""

    def __init__(self) -> None:
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        echoed = " ".join(
            request.headers.get(name, "")
            for name in ("X-Auth-Token", "X-Security-Token", "Authorization")
        )
        return web.json_response(
            {"error_code": "APIGW.0301", "error_msg": f"refused: {echoed}"}, status=401
        )


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    gateway = Echo()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", gateway.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    gateway.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield gateway
    await runner.cleanup()


@pytest.mark.parametrize("kind", ["aksk-with-security-token", "iam-token", "temporary-keys"])
async def test_echoed_secrets_are_hidden(server: VendorServer, echo: Echo, kind: str) -> None:
    """A gateway that echoes the token, the security token or the signature in its error body
    gets them hidden in the AuthError."""
    iam = _iam(server)
    credentials: Any = {
        "aksk-with-security-token": HuaweiAKSK(AK, SK, security_token=SECURITY_TOKEN),
        "iam-token": iam,
        "temporary-keys": iam.temporary_aksk(),
    }[kind]
    async with Client(retries=0) as client:
        repo = client.codearts_repo(echo.url, credentials=credentials)
        with pytest.raises(AuthError) as caught:
            await repo.latest_run(REPO, PIPE)
    assert "<hidden>" in str(caught.value)
    assert not _leaks(_texts(caught.value), _secrets(server))


def test_iam_request_auth_hides_what_its_body_carries() -> None:
    """What IAM echoes of a password sent in the body is hidden."""
    assert Hiding(lambda: (PASSWORD,)).hide(f"bad password {PASSWORD}!") == "bad password <hidden>!"


# --- the command ------------------------------------------------------------------------------


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "huawei.toml"
    path.write_text(
        """
[accounts.repo]
vendor = "codearts_repo"
region = "cn-north-4"
auth = "aksk"
ak_env = "T_AK"
sk_env = "T_SK"
security_token_env = "T_ST"

[accounts.pipe]
vendor = "codearts_pipeline"
region = "cn-north-4"
project_id = "proj"
auth = "iam"
user = "sec-user"
domain = "sec-domain"
password_env = "T_PW"
project = "cn-north-4"

[[pipelines]]
account = "repo"
repository_id = 2000
pipeline_id = 1

[[pipelines]]
account = "pipe"
pipeline_id = "p1"
""",
        encoding="utf-8",
    )
    return path


async def _cli(*args: str, env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pipestatus.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode() + err.decode()


@pytest.mark.parametrize("right", [True, False], ids=["accepted", "refused"])
async def test_the_command_never_prints_a_secret(
    server: VendorServer, tmp_path: Path, right: bool
) -> None:
    """`pipestatus status -vv` over an AK/SK and an IAM account, accepted or refused, prints
    no SK, password, token or security token (stdout, stderr and DEBUG logs alike)."""
    server.huawei.keys[AK].security_token = SECURITY_TOKEN
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUAWEICLOUD_SDK_")}
    env |= {
        "NO_COLOR": "1",
        "HUAWEICLOUD_SDK_IAM_ENDPOINT": server.url,
        "T_AK": AK,
        "T_SK": SK if right else SK + "x",
        "T_ST": SECURITY_TOKEN,
        "T_PW": PASSWORD if right else PASSWORD + "x",
    }
    for name, value in server.huawei_env("cn-north-4").items():
        if name.startswith("HUAWEICLOUD_SDK_REGION_"):
            env[name] = value
    code, output = await _cli("status", "-vv", "-c", str(_config(tmp_path)), env=env)
    assert code == (0 if right else 2), output
    assert "Traceback" not in output
    assert not _leaks([output], _secrets(server) | {SK + "x", PASSWORD + "x"})
    if not right:
        assert "accounts.repo.sk_env: the keys in T_AK and T_SK were refused" in output
        assert "check the AK and SK" in output
        assert "accounts.pipe.password_env: the password in T_PW was refused" in output
        assert "user 'sec-user' in domain 'sec-domain'" in output


@pytest.mark.parametrize(
    "path",
    sorted((Path(__file__).parent.parent / "pipestatus" / "auth").glob("*.py")),
    ids=lambda p: p.name,
)
def test_the_credentials_name_no_vendor(path: Path) -> None:
    """No module of pipestatus/auth/ names a vendor key or a vendor's auth header: the header
    a Huawei token travels in comes from the vendor module, through the binding."""
    from test_meta import _vendors_named

    assert _vendors_named(path.read_text(encoding="utf-8")) == set()
