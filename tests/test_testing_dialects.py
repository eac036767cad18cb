"""The simulator reads the vendor registry: one dialect per vendor, the fleet from the specs,
and a standalone process whose per-vendor options come from the dialects."""

from __future__ import annotations

import ast
import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import pytest
from aiohttp import web

import pipestatus
import pipestatus.testing._server
import pipestatus.testing._standalone
from pipestatus import Client, Run
from pipestatus.testing import ERROR_BODIES, SimJob, SimRun, SimStage, VendorServer, make_fleet
from pipestatus.testing._answers import Answer
from pipestatus.testing._sim import RunSource, Served
from pipestatus.testing._standalone import main, parser
from pipestatus.testing.dialects import DIALECTS, dialect_for
from pipestatus.testing.dialects._base import Context, Dialect, Route, ids_of
from pipestatus.testing.fleet import fleet_table
from pipestatus.vendors import REGISTRY

ROOT = Path(__file__).resolve().parent.parent  # the checkout: its README and sources
TESTING = ROOT / "pipestatus" / "testing"
README = ROOT / "README.md"
TOKEN = "secret-token"


def a_run(number: int = 4) -> SimRun:
    return SimRun(number, "failed", [SimStage("build", [SimJob("make", "failed")])])


def adapter(client: Client, key: str, url: str, token: str, **options: Any) -> Any:
    """The library's adapter of vendor ``key`` (its public factory, found by key)."""
    return getattr(client, key)(url, token=token, **options)


@pytest.fixture
async def server() -> AsyncIterator[VendorServer]:
    async with VendorServer(token=TOKEN) as srv:
        yield srv


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as sess:
        yield sess


# -- the dialects come from the registry -------------------------------------------------------


def test_every_registered_vendor_has_its_dialect() -> None:
    """DIALECTS has exactly the registry's keys, each from dialects/<key>.py and of that key."""
    assert list(DIALECTS) == list(REGISTRY)
    for key, dialect in DIALECTS.items():
        assert dialect.key == key
        assert dialect.__module__ == f"pipestatus.testing.dialects.{key}"
        assert dialect_for(key) is dialect
        assert set(ERROR_BODIES[key]) == set(dialect.error_bodies)


def test_a_vendor_without_a_dialect_is_named() -> None:
    """Looking up a key with no dialect module fails naming the module to add."""
    with pytest.raises(LookupError, match=r"pipestatus\.testing\.dialects\.acme"):
        dialect_for("acme")


async def test_every_route_of_every_dialect_is_served(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """A started server answers each dialect's routes with that dialect's own 401 body."""
    for key, dialect_class in DIALECTS.items():
        dialect = dialect_class(Context(token=TOKEN, elapsed=lambda: 0.0, make_id=lambda *k: 1))
        assert dialect.routes(), key
        for route in dialect.routes():
            path = re.sub(r"\{[^}]+\}", "1", route.path)
            async with session.request(route.method, server.url + path, json=["1"]) as resp:
                assert resp.status == 401, (key, route.path)
                assert await resp.json() == ERROR_BODIES[key][401], (key, route.path)
            (seen,) = server.requests[-1:]
            assert seen.vendor == key


async def test_pipelines_are_added_by_key_and_read_by_the_library(
    server: VendorServer, session: aiohttp.ClientSession
) -> None:
    """add_pipeline(key, ids, run, **options) serves a pipeline the library reads for every
    vendor, under the account options its spec names."""
    async with Client(retries=0) as client:
        targets = {}
        for key, spec in REGISTRY.items():
            server.add_pipeline(key, spec.demo.ids(7), a_run(), **spec.demo.options)
            made = adapter(client, key, server.url, server.token, **spec.demo.options)
            targets[key] = made.target(*spec.demo.ids(7))
        results = await client.poll(targets.values())
    for key, target in targets.items():
        run = results[target]
        assert isinstance(run, Run), (key, run)
        assert run.vendor == key
        assert run.status == "failed"
        (served,) = server.pipelines(key)
        assert served.ids == REGISTRY[key].demo.ids(7)


def test_add_pipeline_refuses_unknown_vendors_options_and_ids() -> None:
    """An unknown vendor, an option the dialect lacks or the wrong number of IDs is refused."""
    srv = VendorServer()
    key = next(iter(REGISTRY))
    spec = REGISTRY[key]
    with pytest.raises(ValueError, match="acme"):
        srv.add_pipeline("acme", ("1",), None)
    with pytest.raises(TypeError, match="colour"):
        srv.add_pipeline(key, spec.demo.ids(1), None, colour="red")
    with pytest.raises(ValueError, match="named by"):
        srv.add_pipeline(key, (*spec.demo.ids(1), "extra"), None)


async def test_fleet_serves_each_specs_demo_ids_under_its_options(
    server: VendorServer,
) -> None:
    """make_fleet serves spec.demo.ids(n), n = 1..N, under spec.demo.options, for every vendor."""
    make_fleet(server, 3, seed=2)
    async with Client(retries=0) as client:
        targets = []
        for key, spec in REGISTRY.items():
            served = server.pipelines(key)
            assert [p.ids for p in served] == [spec.demo.ids(n) for n in (1, 2, 3)]
            scopes = {str(value) for value in spec.demo.options.values()}
            assert {p.scope for p in served} <= {None, *scopes}
            made = adapter(client, key, server.url, server.token, **spec.demo.options)
            targets += [made.target(*spec.demo.ids(n)) for n in (1, 2, 3)]
        results = await client.poll(targets)
    assert len(results) == 3 * len(REGISTRY)
    bad = {t: r for t, r in results.items() if not isinstance(r, Run)}
    assert not bad


class ToyDialect(Dialect):
    """A made-up vendor: ``GET /toy/{id}`` with header ``Toy-Key``."""

    key = "toy"
    error_bodies: ClassVar[Mapping[int, Mapping[str, str]]] = {401: {"why": "no key"}}
    standalone_option = ("--toy", "static toy pipelines")

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.served: dict[str, Served] = {}

    def routes(self) -> Sequence[Route]:
        return (Route("GET", "/toy/{id}", self._get),)

    def authorized(self, request: web.Request) -> bool:
        return request.headers.get("Toy-Key") == self.context.token

    def pipelines_of(self, request: web.Request, body: bytes) -> list[str]:
        return [request.match_info["id"]]

    def add(self, ids: Sequence[str | int], run: RunSource, **options: Any) -> None:
        (pipeline_id,) = ids_of(self, ids, "id")
        self.served[pipeline_id] = Served(self.key, (pipeline_id,), run)

    def pipelines(self) -> list[Served]:
        return list(self.served.values())

    @classmethod
    def static(cls, n: int) -> tuple[tuple[str, ...], dict[str, Any]]:
        return (f"t{n}",), {}

    async def _get(self, request: web.Request, body: bytes) -> Answer:
        if not self.authorized(request):
            return self.error(401)
        run = self.served[request.match_info["id"]].current(self.context.elapsed())
        assert run is not None
        return Answer(200, {"number": run.number, "state": run.status})


async def test_a_new_dialect_needs_no_change_to_the_core(
    monkeypatch: pytest.MonkeyPatch, session: aiohttp.ClientSession
) -> None:
    """A dialect added to DIALECTS is routed, authenticated, faulted, recorded and given its
    standalone option by the core as it is."""
    with_toy = {**DIALECTS, "toy": ToyDialect}
    monkeypatch.setattr(pipestatus.testing._server, "DIALECTS", with_toy)
    monkeypatch.setattr(pipestatus.testing._standalone, "DIALECTS", with_toy)
    assert "--toy" in parser()._option_string_actions
    async with VendorServer(token=TOKEN) as srv:
        srv.add_pipeline("toy", ("t1",), [a_run(1), a_run(2)])
        srv.fault(vendor="toy", pipeline="t1", status=503, times=1)
        url = f"{srv.url}/toy/t1"
        async with session.get(url) as resp:
            assert resp.status == 503  # faults come before the dialect's auth check
        seen = []
        for headers in ({}, {"Toy-Key": TOKEN}, {"Toy-Key": TOKEN}):
            async with session.get(url, headers=headers) as resp:
                seen.append((resp.status, await resp.json()))
        assert seen == [
            (401, {"why": "no key"}),
            (200, {"number": 1, "state": "failed"}),
            (200, {"number": 2, "state": "failed"}),
        ]
        assert [r.vendor for r in srv.requests] == ["toy"] * 4
        assert [p.ids for p in srv.pipelines("toy")] == [("t1",)]


# -- the core names no vendor ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    sorted(p for p in TESTING.rglob("*.py") if "dialects" not in p.relative_to(TESTING).parts),
    ids=lambda p: str(p.relative_to(TESTING)),
)
def test_only_dialects_name_a_vendor(path: Path) -> None:
    """Outside dialects/, the simulator names no vendor key and no vendor auth header."""
    text = path.read_text(encoding="utf-8")
    for key, spec in REGISTRY.items():
        assert key not in text, key
        assert spec.header.lower() not in text.lower(), spec.header


@pytest.mark.parametrize("path", sorted((TESTING / "dialects").glob("*.py")), ids=lambda p: p.name)
def test_dialects_keep_their_own_status_words(path: Path) -> None:
    """No dialect imports the library's vendor modules (or their STATUS tables): of
    pipestatus.vendors the simulator reads the registry alone."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            assert not any(a.name.startswith("pipestatus.vendors") for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "pipestatus.vendors"
        ):
            assert node.module == "pipestatus.vendors"
            assert [alias.name for alias in node.names] == ["REGISTRY"]


# -- standalone --------------------------------------------------------------------------------


def test_standalone_options_include_one_per_dialect(capsys: pytest.CaptureFixture[str]) -> None:
    """--help lists the fixed options and each dialect's static-pipelines option."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    shown = capsys.readouterr().out
    for flag in ("--port", "--token", "--seed", "--fleet", "--fleet-size", "--speed"):
        assert flag in shown
    for dialect in DIALECTS.values():
        assert dialect.standalone_option[0] in shown
    assert {"--repo", "--v5", "--yunxiao"} <= set(parser()._option_string_actions)


def test_readme_documents_the_standalone_server() -> None:
    """The README's fleet table is the fleet the code serves, and it names every option."""
    readme = README.read_text(encoding="utf-8")
    assert fleet_table() in readme
    section = readme.split("## The simulated server", 1)[1].split("\n## ", 1)[0]
    for flag in parser()._option_string_actions:
        if flag not in ("-h", "--help"):
            assert f"| `{flag}" in section, flag


async def test_standalone_serves_the_fleet() -> None:
    """python -m pipestatus.testing --fleet serves every vendor's demo IDs with --token."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pipestatus.testing",
        "--fleet", "--fleet-size", "2", "--speed", "5", "--token", "fleet-token",
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            url = (await proc.stdout.readline()).decode().strip()
        assert url.startswith("http://127.0.0.1:")
        async with Client(retries=0) as client:
            targets = [
                adapter(client, key, url, "fleet-token", **spec.demo.options).target(
                    *spec.demo.ids(n)
                )
                for key, spec in REGISTRY.items()
                for n in (1, 2)
            ]
            results = await client.poll(targets)
        assert all(isinstance(run, Run) for run in results.values()), results
    finally:
        proc.terminate()
        await proc.communicate()
    assert proc.returncode == 0
