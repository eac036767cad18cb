"""Errors hold nothing they must not: a walk of every error's ``__cause__``, ``__context__`` and
traceback frame locals (as an error reporter records them: by ``repr``) finds no secret, on
every error path (the transport, API errors echoing the token, token providers, IAM, AK/SK,
the configuration); no chained exception is aiohttp's or a provider's; and an error returned
as a result (a poll, a watch, a batch) keeps no traceback, so 10,000 of them hold little."""

from __future__ import annotations

import asyncio
import gc
import os
import tracemalloc
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

import pipestatus
from pipestatus import Client, Target
from pipestatus._sansio import ERROR_BODY_LIMIT, Request, Response
from pipestatus.auth import HuaweiAKSK, HuaweiIAM
from pipestatus.cli.config import ConfigError, parse_config, resolve_tokens
from pipestatus.errors import PipestatusError, ServerError
from pipestatus.testing import Fault, SimJob, SimRun, SimStage, VendorServer
from pipestatus.testing.hostile import NotHTTP

TOKEN = "tok-LEAK-7f3e9a1c5b"
AK = "LEAKTESTAK0000000001"
SK = "SK-LEAK-2d4f6a8c0e"
PASSWORD = "PW-LEAK-9b8a7c6d5e"
SECURITY_TOKEN = "ST-LEAK-1a3c5e7g9i"
USER, DOMAIN = "leak-user", "leak-domain"
SECRETS = (TOKEN, SK, PASSWORD, SECURITY_TOKEN)


# --- the walk ------------------------------------------------------------------------------------


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [error]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
        todo += list(getattr(current, "exceptions", ()))


PACKAGE = str(Path(pipestatus.__file__).parent)


def _frames(tb: TracebackType | None) -> Iterator[tuple[str, dict[str, Any]]]:
    """pipestatus' own frames of a traceback (the caller's frames hold what the caller put
    there), with their locals."""
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename.startswith(PACKAGE):
            yield code.co_qualname, dict(tb.tb_frame.f_locals)
        tb = tb.tb_next


def _shown(value: object) -> str:
    """What a reporter records of a value: its text, and its ``repr``."""
    try:
        shown = repr(value)
    except Exception as exc:  # noqa: BLE001 - a repr that fails shows nothing
        shown = f"<repr failed: {type(exc).__name__}>"
    if isinstance(value, bytes):
        return shown + value.decode("latin-1")
    return shown + value if isinstance(value, str) else shown


def found_in(error: BaseException, secrets: tuple[str, ...] = SECRETS) -> list[str]:
    """Where a secret shows from ``error``: its text, attributes and notes, every error of its
    ``__cause__``/``__context__`` chain, and every local of every frame of their tracebacks;
    and every chained exception that is not one of pipestatus' own."""
    found = []
    for each in _chain(error):
        if each is not error and not isinstance(each, PipestatusError):
            found.append(f"chained {type(each).__module__}.{type(each).__qualname__}")
        texts = {
            "text": str(each) + repr(each.args),
            "attributes": _shown(vars(each)),
            "notes": _shown(getattr(each, "__notes__", None)),
        }
        for frame, names in _frames(each.__traceback__):
            for name, value in names.items():
                texts[f"{frame} local {name}"] = _shown(value)
        found += [
            f"{secret[:8]}... in {where} of {type(each).__name__}"
            for where, text in texts.items()
            for secret in secrets
            if secret in text
        ]
    return found


def test_the_walk_finds_a_token_in_a_frame_local() -> None:
    """The walk itself finds a secret held by a traceback frame, and a foreign context."""

    from pipestatus.auth import HeaderToken

    try:
        try:
            raise KeyError("x")
        except KeyError:
            HeaderToken("X-T", TOKEN + "\n")  # a pipestatus frame with the token as a local
    except ValueError as exc:
        caught = exc
    assert any("local token" in place for place in found_in(caught))
    assert any("chained builtins.KeyError" in place for place in found_in(caught))


# --- the paths ---------------------------------------------------------------------------------


def _run() -> SimRun:
    return SimRun(3, "failed", [SimStage("build", [SimJob("make", "failed")])])


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def server() -> Any:
    async with VendorServer(token=TOKEN) as srv:
        srv.add_repo_pipeline(2000, 1, _run())
        srv.add_v5_pipeline("proj", "p1", _run())
        srv.add_yunxiao_pipeline("9", _run())
        srv.huawei.add_key(AK, SK)
        srv.huawei.add_user(USER, PASSWORD, DOMAIN)
        yield srv


def _free_port_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _echo(status: int) -> Callable[[VendorServer, pytest.MonkeyPatch], Fault]:
    """A fault answering ``status`` with a JSON body that echoes the token, twice."""
    body = f'{{"error_code": "E{status}", "error_msg": "token {TOKEN} refused: {TOKEN}"}}'
    return lambda s, m: s.fault(status=status, body=body.encode())


def _region_lookup_down(server: VendorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """cn-north-4's endpoints and IAM on the server, whose project lookup fails."""
    for name, value in server.huawei_env("cn-north-4").items():
        if name.startswith(("HUAWEICLOUD_SDK_REGION_", "HUAWEICLOUD_SDK_IAM_ENDPOINT")):
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("HUAWEICLOUD_SDK_PROJECT_ID", raising=False)
    server.fault(path_prefix="/v3/projects", status=503)


def _iam(url: str, password: str = PASSWORD) -> HuaweiIAM:
    return HuaweiIAM(USER, password, DOMAIN, "cn-north-4", iam_url=url)


async def _provider() -> str:
    return TOKEN


async def _failing_provider() -> str:
    raise RuntimeError(f"the vault refused {TOKEN}")


class _OnceThenFailing:
    """A provider whose token works once (then the server refuses it) and which then fails."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError(f"renewal refused for {TOKEN}")
        return TOKEN


Setup = Callable[[VendorServer, pytest.MonkeyPatch], object]
#: Each error path: what to set up on the server, and the target to read.
PATHS: dict[str, tuple[Setup, Callable[[Client, VendorServer], Target]]] = {
    "refused-connection": (
        lambda s, m: None,
        lambda c, s: c.codearts_repo(_free_port_url(), token=TOKEN).target(2000, 1),
    ),
    "timeout": (
        lambda s, m: s.fault(hang=True),
        lambda c, s: c.yunxiao(s.url, token=TOKEN).target("9"),
    ),
    "not-http": (
        lambda s, m: s.add_fault(Fault(effects=(NotHTTP(),))),
        lambda c, s: c.yunxiao(s.url, token=TOKEN).target("9"),
    ),
    "reset-mid-body": (
        lambda s, m: s.fault(reset=True),
        lambda c, s: c.codearts_repo(s.url, token=TOKEN).target(2000, 1),
    ),
    "401-echoing-the-token": (
        _echo(401),
        lambda c, s: c.codearts_repo(s.url, token=TOKEN).target(2000, 1),
    ),
    "503-echoing-the-token": (
        _echo(503),
        lambda c, s: c.codearts_pipeline(s.url, project_id="proj", token=TOKEN).target("p1"),
    ),
    "429-echoing-the-token": (
        _echo(429),
        lambda c, s: c.yunxiao(s.url, token=TOKEN).target("9"),
    ),
    "provider-fails": (
        lambda s, m: None,
        lambda c, s: c.yunxiao(s.url, token=_failing_provider).target("9"),
    ),
    "provider-fails-after-a-401": (
        lambda s, m: s.fault(status=401, body=b'{"errorMessage": "expired"}'),
        lambda c, s: c.yunxiao(s.url, token=_OnceThenFailing()).target("9"),
    ),
    "iam-refuses-the-password": (
        lambda s, m: None,
        lambda c, s: c.codearts_repo(s.url, credentials=_iam(s.url, "wrong")).target(2000, 1),
    ),
    "iam-unreachable": (
        lambda s, m: None,
        lambda c, s: c.codearts_repo(s.url, credentials=_iam(_free_port_url())).target(2000, 1),
    ),
    "iam-token-refused-then-iam-down": (
        lambda s, m: (
            s.fault(path_prefix="/v4/", status=401, body=b"{}"),
            s.fault(path_prefix="/v3/auth/tokens", status=503),
        ),
        lambda c, s: c.codearts_repo(s.url, credentials=_iam(s.url)).target(2000, 1),
    ),
    "temporary-keys-refused": (
        lambda s, m: s.fault(path_prefix="/v3.0/OS-CREDENTIAL", status=401),
        lambda c, s: c.codearts_repo(s.url, credentials=_iam(s.url).temporary_aksk(900)).target(
            2000, 1
        ),
    ),
    "aksk-wrong-sk": (
        lambda s, m: None,
        lambda c, s: c.codearts_repo(
            s.url, credentials=HuaweiAKSK(AK, SK + "x", security_token=SECURITY_TOKEN)
        ).target(2000, 1),
    ),
    "aksk-project-lookup-down": (
        _region_lookup_down,
        lambda c, s: c.codearts_repo(
            region="cn-north-4", credentials=HuaweiAKSK(AK, SK, security_token=SECURITY_TOKEN)
        ).target(2000, 1),
    ),
}


#: The paths whose setup comes after one good read (a token fetched, then refused).
WARM = frozenset({"provider-fails-after-a-401", "iam-token-refused-then-iam-down"})


async def _read(client: Client, target: Target, how: str) -> PipestatusError:
    """The error reading ``target`` meets: raised by a direct call, or returned by a poll."""
    if how == "raised":
        try:
            await target.source.fetch(target)  # type: ignore[attr-defined]
        except PipestatusError as exc:
            return exc
        raise AssertionError("no error")
    outcome = (await client.poll([target]))[target]
    assert isinstance(outcome, PipestatusError), outcome
    return outcome


@pytest.mark.parametrize("how", ["raised", "returned"])
@pytest.mark.parametrize("path", sorted(PATHS))
async def test_no_error_path_holds_a_secret(
    server: VendorServer, monkeypatch: pytest.MonkeyPatch, path: str, how: str
) -> None:
    """On every error path, neither the error nor its chain nor any traceback frame's locals
    show a secret, and nothing chained is aiohttp's or a provider's; a returned error has no
    traceback at all."""
    setup, make = PATHS[path]
    if path not in WARM:
        setup(server, monkeypatch)
    async with Client(timeout=0.5, retries=1, sleep=_no_sleep) as client:
        target = make(client, server)
        if path in WARM:
            await target.source.fetch(target)  # type: ignore[attr-defined]
            setup(server, monkeypatch)
        error = await _read(client, target, how)
    assert not found_in(error), found_in(error)
    if how == "returned":
        assert error.__traceback__ is None
        assert error.__context__ is None


# --- the configuration ---------------------------------------------------------------------------


def _config(**account: str) -> dict[str, Any]:
    return {
        "accounts": {"ci": {"vendor": "yunxiao", "endpoint": "https://h.example", **account}},
        "pipelines": [{"account": "ci", "pipeline_id": "9"}],
    }


CONFIG_PATHS: dict[str, tuple[dict[str, Any], Mapping[str, str]]] = {
    "token-pasted-as-token_env": (_config(token_env=TOKEN.replace("-", "_")), {}),
    "token-written-in-the-file": (_config(token=TOKEN), {}),
    "sk-with-a-control-character": (
        {
            "accounts": {
                "ci": {
                    "vendor": "codearts_repo",
                    "endpoint": "https://h.example",
                    "auth": "aksk",
                    "ak_env": "CI_AK",
                    "sk_env": "CI_SK",
                }
            },
            "pipelines": [{"account": "ci", "repository_id": 1, "pipeline_id": 2}],
        },
        {"CI_AK": AK, "CI_SK": SK + "\x01", "OTHER": TOKEN},
    ),
}


@pytest.mark.parametrize("path", sorted(CONFIG_PATHS))
def test_no_configuration_error_holds_a_secret(path: str) -> None:
    """A configuration refused for a token pasted in the file or a secret the environment
    holds carries it in no message, chain or frame local."""
    data, environ = CONFIG_PATHS[path]
    secrets = (*SECRETS, TOKEN.replace("-", "_"))
    with pytest.raises(ConfigError) as info:
        resolve_tokens(parse_config(data, source="ci.toml"), environ)
    assert not found_in(info.value, secrets), found_in(info.value, secrets)
    assert info.value.__context__ is None


def test_a_configuration_file_with_a_token_holds_it_nowhere(tmp_path: Path) -> None:
    """Loading a file with a literal token refuses it without holding the file's text."""
    from pipestatus.cli.config import load_config

    path = tmp_path / "ci.toml"
    path.write_text(f'token = "{TOKEN}"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert not found_in(info.value), found_in(info.value)


# --- what returned errors hold -------------------------------------------------------------------

#: Memory held by 10,000 errored poll results, each from a 500 with a 64 KiB HTML body: a few
#: hundred bytes each (the error's own strings). 0.1 kept every body, 640 MiB.
ERRORED_RESULTS_BOUND = 16 * 1024 * 1024


class _HtmlErrors:
    """A driver answering every request 500 with a fresh 64 KiB HTML page (as a gateway does)."""

    closed = False

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def send(self, request: Request, *, vendor: str, limit: int) -> Response:
        await asyncio.sleep(0)
        body = b"<html><body>" + os.urandom(ERROR_BODY_LIMIT - 26) + b"</body></html>"
        return Response(status=500, headers={"content-type": "text/html"}, body=body, vendor=vendor)


async def test_10000_errored_results_hold_only_their_errors() -> None:
    """10,000 poll results that are errors from 64 KiB HTML answers hold less than the bound
    (their bodies, requests and payloads are not kept through tracebacks)."""
    client = Client(retries=0)
    client._transport.driver = _HtmlErrors()
    async with client:
        repo = client.codearts_repo("https://ci.example", token=TOKEN)
        targets = [repo.target(1, number) for number in range(1, 10_001)]
        gc.collect()
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            results = await client.poll(targets)
            gc.collect()
            held, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert all(isinstance(results[t], ServerError) for t in targets)
    assert held - before < ERRORED_RESULTS_BOUND, (held - before) / 2**20
