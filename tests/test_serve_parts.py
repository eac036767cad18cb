"""The service's parts on their own: the escaping HTML builder, links only to http(s), the
token check, the attempt outcomes of /metrics, /healthz once the watch stopped, the
configuration of [serve] and [notify] (errors at their key, exit 2 at startup), --state, the
transport's on_attempt and the watcher's overdue targets."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from clihelp import cli_env, run_cli
from servehelp import ENV, FIRST, TOKEN, a_run, add_fleet, fleet_toml

from pipestatus import Client
from pipestatus._transport import Attempt
from pipestatus.cli.config import ConfigError, parse_config
from pipestatus.cli.serveconf import resolve_service
from pipestatus.serve.app import Faces, authorized, make_app
from pipestatus.serve.board import Board, safe_href
from pipestatus.serve.html import Markup, el
from pipestatus.serve.metrics import Metrics, attempt_outcome
from pipestatus.serve.page import ASSETS, asset
from pipestatus.testing import VendorServer
from pipestatus.vendors import REGISTRY

SPEC = FIRST


def test_the_builder_escapes_text_and_attributes() -> None:
    """Text children and attribute values are escaped; only the builder's own markup is not."""
    made = el("td", {"title": '"><script>x</script>', "data-x": "a&b"}, "<b>bold</b>", el("i"))
    assert made == (
        '<td title="&quot;&gt;&lt;script&gt;x&lt;/script&gt;" data-x="a&amp;b">'
        "&lt;b&gt;bold&lt;/b&gt;<i></i></td>"
    )
    assert isinstance(made, Markup)


@pytest.mark.parametrize("name", ["on click", "x>", "A", ""])
def test_the_builder_refuses_names_that_are_not_code(name: str) -> None:
    """A tag or attribute name outside [a-z][a-z0-9-]* is refused (names are never data)."""
    with pytest.raises(ValueError, match="not a"):
        el("td", {name: "v"})
    with pytest.raises(ValueError, match="not a tag"):
        el(name or "1")


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://ci.example/run/1", True),
        ("http://ci.example/run/1?x=1", True),
        ("javascript:alert(1)", False),
        ("JAVASCRIPT:alert(1)", False),
        ("data:text/html,<script>", False),
        ("//evil.example/x", False),
        ("https://", False),
        (None, False),
    ],
)
def test_only_http_addresses_become_links(url: str | None, kept: bool) -> None:
    """A run's page becomes a link only when it is an http(s) address."""
    assert safe_href(url) == (url if kept else None)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("Bearer s3cret", True),
        ("bearer s3cret", True),
        (_basic("anyone", "s3cret"), True),
        ("Bearer s3cre", False),
        ("Bearer s3crett", False),
        (_basic("s3cret", "x"), False),
        ("Basic !!!", False),
        ("Token s3cret", False),
        ("", False),
        (None, False),
    ],
)
def test_the_token_check(header: str | None, ok: bool) -> None:
    """Bearer TOKEN or Basic with TOKEN as the password pass; anything else does not."""
    assert authorized(header, "s3cret") is ok


@pytest.mark.parametrize(
    ("outcome", "label"),
    [
        (200, "success"),
        (304, "success"),
        (302, "redirect"),
        (404, "client_error"),
        (429, "rate_limited"),
        (503, "server_error"),
        ("RequestTimeout", "timeout"),
        ("TransportError", "connection_error"),
    ],
)
def test_attempt_outcomes(outcome: int | str, label: str) -> None:
    """Each attempt is counted under one of a few outcome labels (low cardinality)."""
    assert attempt_outcome(outcome) == label


def test_the_assets_ship_in_the_package() -> None:
    """The page's script and stylesheet are package files; the script never uses innerHTML."""
    for name in ASSETS:
        assert asset(name)
    script = asset("dashboard.js").decode()
    assert ".innerHTML" not in script
    assert "insertAdjacentHTML" not in script
    assert "document.write" not in script
    assert "textContent" in script
    assert "EventSource" in script


def _config(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "accounts": {"a": {"vendor": SPEC.key, "endpoint": "https://x.example", "token_env": ENV}},
        "pipelines": [{"account": "a", **dict(zip(SPEC.id_names, SPEC.demo.ids(1), strict=True))}],
        **(extra or {}),
    }


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"notify": {"sinks": {"t": {"kind": "pager"}}}}, r"notify\.sinks\.t\.kind: must be one"),
        (
            {"notify": {"sinks": {"t": {"kind": "slack", "url": "not a url"}}}},
            r"notify\.sinks\.t\.url: must be an http\(s\):// address",
        ),
        (
            {"notify": {"sinks": {"t": {"kind": "slack", "url": "https://[x"}}}},
            r"notify\.sinks\.t\.url: not a valid URL",
        ),
        (
            {"notify": {"sinks": {"t": {"kind": "slack"}}}},
            r"notify\.sinks\.t\.url: give one of url and url_env",
        ),
        (
            {"notify": {"sinks": {"t": {"kind": "slack", "url_env": "https://hooks"}}}},
            r"notify\.sinks\.t\.url_env: must be the name of an environment variable",
        ),
        (
            {
                "notify": {
                    "sinks": {"t": {"kind": "slack", "url": "https://h.example"}},
                    "rules": [{"sinks": ["t", "nope"]}],
                }
            },
            r"notify\.rules\[0\]\.sinks\[1\]: no sink of that name \(t\)",
        ),
        (
            {
                "notify": {
                    "sinks": {"t": {"kind": "slack", "url": "https://h.example"}},
                    "rules": [{"sinks": ["t"], "kinds": ["exploded"]}],
                }
            },
            r"notify\.rules\[0\]\.kinds\[0\]: must be one of first, ",
        ),
        ({"serve": {"group_by": "vendor"}}, r"serve\.group_by: "),
        ({"serve": {"interval": 0}}, r"serve\.interval: must be a positive number of seconds"),
        ({"notify": {"channels": {}}}, r"notify\.channels: unknown key"),
    ],
)
def test_a_bad_setting_is_refused_at_its_key(extra: dict[str, Any], message: str) -> None:
    """An unknown sink kind, an unparseable address, a rule naming no such sink, a bad kind:
    one message naming the key."""
    with pytest.raises(ConfigError, match=message):
        parse_config(_config(extra), source="c.toml")


def test_secrets_are_read_from_the_environment_and_never_shown() -> None:
    """url_env and secret_env are read at startup; a missing one names its key; the sink's
    repr shows neither the address nor the secret."""
    sinks = {"t": {"kind": "dingtalk", "url_env": "HOOK", "secret_env": "SECRET"}}
    config = parse_config(_config({"notify": {"sinks": sinks}}), source="c.toml")
    with pytest.raises(
        ConfigError, match=r"c\.toml: notify\.sinks\.t\.secret_env: .*SECRET is not"
    ):
        resolve_service(
            config.serve, config.notify, {"HOOK": "https://h.example/x"}, source="c.toml"
        )
    with pytest.raises(ConfigError, match=r"notify\.sinks\.t\.url_env: environment variable HOOK"):
        resolve_service(config.serve, config.notify, {"HOOK": "ftp://x", "SECRET": "s"}, source="c")
    env = {"HOOK": "https://h.example/send?access_token=tok-9", "SECRET": "sec-9"}
    service = resolve_service(config.serve, config.notify, env, source="c.toml")
    sink = service.sinks["t"]
    assert sink.url == env["HOOK"]
    assert sink.secret == "sec-9"
    assert "tok-9" not in repr(sink)
    assert "sec-9" not in repr(sink)


async def test_a_bad_notify_setting_exits_2_with_one_line(tmp_path: Path) -> None:
    """`serve` with a sink whose secret variable is not set exits 2, one line naming the key,
    before it listens."""
    async with VendorServer(token=TOKEN) as server:
        fleet = add_fleet(server, 1)
        extra = '[notify.sinks.t]\nkind = "feishu"\nurl = "https://f.example/hook"\n'
        extra += 'secret_env = "PIPESTATUS_NOT_SET_SECRET"\n'
        path = tmp_path / "c.toml"
        path.write_text(fleet_toml(fleet, extra=extra), encoding="utf-8")
        done = await run_cli(
            "serve", "-c", str(path), "--listen", "127.0.0.1:0", env=cli_env(**{ENV: TOKEN})
        )
    assert done.code == 2
    (line,) = done.err.strip().splitlines()
    assert "notify.sinks.t.secret_env" in line
    assert "PIPESTATUS_NOT_SET_SECRET is not set" in line


async def test_a_state_file_that_is_not_a_store_exits_2_naming_it(tmp_path: Path) -> None:
    """--state FILE that holds something else (here: not SQLite at all) stops the service with
    exit 2 and a message naming the file; the file is left as it was."""
    state = tmp_path / "s.db"
    state.write_bytes(b"not a database, and nobody's state either\n" * 100)
    before = state.read_bytes()
    async with VendorServer(token=TOKEN) as server:
        fleet = add_fleet(server, 1)
        path = tmp_path / "c.toml"
        path.write_text(fleet_toml(fleet), encoding="utf-8")
        done = await run_cli(
            "serve", "-c", str(path), "--listen", "127.0.0.1:0", "--state", str(state),
            env=cli_env(**{ENV: TOKEN}),
        )  # fmt: skip
    assert done.code == 2
    assert str(state) in done.err
    assert state.read_bytes() == before


async def test_healthz_is_503_once_the_watch_stopped() -> None:
    """/healthz answers 503 ("stopped") when the watch is not running."""
    config = parse_config(_config(), source="c.toml")
    board = Board(config, [])
    async with TestClient(TestServer(make_app(Faces(board=board, metrics=Metrics())))) as http:
        response = await http.get("/healthz")
        assert response.status == 503
        assert (await response.json())["status"] == "stopped"


async def test_the_transport_reports_every_attempt() -> None:
    """Client(on_attempt=...) hears each attempt: vendor, status, number, seconds."""
    heard: list[Attempt] = []

    async def no_wait(_: float) -> None:
        await asyncio.sleep(0)

    async with VendorServer(token=TOKEN) as server:
        server.add_pipeline(SPEC.key, SPEC.demo.ids(1), a_run(1, "success"), **SPEC.demo.options)
        server.fault(vendor=SPEC.key, status=503, times=1)
        async with Client(retries=1, on_attempt=heard.append, sleep=no_wait) as client:
            from pipestatus.auth import token_auth

            options = SPEC.options(**SPEC.demo.options)
            adapter = client._connect(SPEC, server.url, token_auth(SPEC.header, TOKEN), options)
            await client.poll([adapter.target(*SPEC.demo.ids(1))])
    assert [(a.vendor, a.outcome, a.number) for a in heard] == [
        (SPEC.key, 503, 1),
        (SPEC.key, 200, 2),
    ]
    assert all(a.seconds >= 0 for a in heard)


async def test_the_watcher_names_overdue_targets() -> None:
    """A target whose poll hangs past the grace is overdue; answered ones are not."""
    async with VendorServer(token=TOKEN) as server:
        fleet = add_fleet(server, 1)
        hang_id = FIRST.demo.ids(fleet.per_vendor + 1)[-1]
        hang = server.fault(vendor=FIRST.key, pipeline=hang_id, hang=True)
        from pipestatus.auth import token_auth

        async with Client(timeout=60, retries=0) as client:
            targets = []
            for spec in REGISTRY.values():
                options = spec.options(**spec.demo.options)
                auth = token_auth(spec.header, TOKEN)
                adapter = client._connect(spec, server.url, auth, options)
                targets.append(adapter.target(*spec.demo.ids(1)))
            flip_adapter = client._connect(
                FIRST,
                server.url,
                token_auth(FIRST.header, TOKEN),
                FIRST.options(**FIRST.demo.options),
            )
            stuck = flip_adapter.target(*FIRST.demo.ids(fleet.per_vendor + 1))
            async with client.watcher([*targets, stuck], interval=30) as watcher:
                assert watcher.overdue(0.0) == frozenset()  # not started: nothing is due yet
                seen = set()
                async with asyncio.timeout(10):
                    async for change in watcher:
                        seen.add(change.target)
                        if len(seen) == len(targets):
                            break
                await server.wait_in_flight(1)
                assert watcher.overdue(0.0) == {stuck}
                assert watcher.overdue(3600.0) == frozenset()
        hang.release()


def test_serve_binds_loopback_by_default() -> None:
    """Without --listen, serve listens on 127.0.0.1:8080 only."""
    from pipestatus.cli.commands import build_parser
    from pipestatus.cli.commands.serve import DEFAULT_LISTEN

    args = build_parser().parse_args(["serve"])
    assert args.listen is None
    assert DEFAULT_LISTEN == ("127.0.0.1", 8080)


async def test_serve_runs_until_sigterm_and_exits_0(tmp_path: Path) -> None:
    """`pipestatus serve` prints where it serves, answers, and ends on SIGTERM with 0."""
    from clihelp import start

    async with VendorServer(token=TOKEN) as server:
        fleet = add_fleet(server, 1)
        path = tmp_path / "c.toml"
        path.write_text(fleet_toml(fleet), encoding="utf-8")
        proc = await start(
            "serve", "-c", str(path), "--listen", "127.0.0.1:0", env=cli_env(**{ENV: TOKEN})
        )
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            line = (await proc.stdout.readline()).decode().strip()
        assert line.startswith("serving http://127.0.0.1:")
        url = line.removeprefix("serving ").rstrip("/")
        async with aiohttp.ClientSession() as session, session.get(url + "/healthz") as response:
            assert response.status == 200
        proc.terminate()
        async with asyncio.timeout(30):
            assert await proc.wait() == 0
