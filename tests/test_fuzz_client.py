"""Property tests through the whole client: whatever a vendor answers, every call ends in a
model or a ``PipestatusError``, within its timeout.

Most examples run under aioresponses (fast, no sockets); a smaller number go over real HTTP to
``pipestatus.testing.VendorServer``, whose faults serve the drawn status, headers and body, so
the parts aioresponses replaces (the HTTP parser, ``Content-Length``, redirects, encodings) are
fuzzed too.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aioresponses import aioresponses
from conftest import json_paths, load_fixture
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from pipestatus import Client, Job, Run, Target
from pipestatus.errors import APIError, PipestatusError
from pipestatus.testing import SimJob, SimRun, SimStage, VendorServer

TOKEN = "fuzz-secret-token-0123456789"
BASE = "http://vendor.test"
ANY_URL = re.compile(r"^http://vendor\.test/.*$")
REPO, PIPE = 2111976239, 6
V5_IDS = ["d1971e7b3fb44f4a8e79d4b4f1b2c3d4", "p-2"]
YX_ID = "123"
RETRIES = 1
#: Real-server attempts may wait this long; aioresponses never waits.
TIMEOUT = 0.5
#: Added to timeout * attempts before a call counts as hung (pages, redirects, scheduling).
SLACK = 3.0

MOCKED = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
REAL = settings(MOCKED, max_examples=100)


async def _no_sleep(_: float) -> None:
    return None


# --- payloads -------------------------------------------------------------------------------

BASES: dict[str, Callable[[], Any]] = {
    "v4-latest-jobs": lambda: load_fixture("codearts_repo", "latest-jobs-200.json"),
    "v4-jobs": lambda: load_fixture("codearts_repo", "jobs-200.json"),
    "v5-batch": lambda: load_fixture("codearts_pipeline", "batch-status-200.json"),
    "yunxiao-latest-run": lambda: load_fixture("yunxiao", "latest-run-200.json"),
}
_LOADED = {name: load() for name, load in BASES.items()}

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["RUNNING", "success", "FAIL", "COMPLETED", "2023-03-04 16:48:09", "构建"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["id", "status", "stages", "jobs"]) | st.text(), inner)
    ),
    max_leaves=20,
)


def _deep(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = {"stages": [value]}
    return value


@st.composite
def payloads(draw: st.DrawFn, *, huge: int = 300_000, base: str | None = None) -> Any:
    """A vendor payload (``base``, or any), as is or with a few values replaced, deleted,
    retyped, made huge or deep."""
    payload = copy.deepcopy(_LOADED[base or draw(st.sampled_from(sorted(_LOADED)))])
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(json_paths(payload)))
        action = draw(st.sampled_from(["replace", "delete", "retype", "huge", "deep"]))
        if not path:
            payload = draw(json_values) if action == "replace" else [payload]
            continue
        parent = payload
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        if action == "delete":
            del parent[key]
        elif action == "replace":
            parent[key] = draw(json_values)
        elif action == "retype":
            parent[key] = [parent[key]] if not isinstance(parent[key], list) else {"0": 1}
        elif action == "huge":
            parent[key] = draw(st.sampled_from(["x", "9", "构"])) * draw(st.integers(1, huge))
        else:
            parent[key] = _deep(parent[key], draw(st.integers(10, 400)))
    return payload


class Body:
    """Bytes to serve, with a short repr (hypothesis prints examples; some are megabytes).

    A plain class: hypothesis's printer shows an attrs class field by field."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        head = self.data[:120]
        return f"Body({head!r}{'...' if len(self.data) > 120 else ''}, {len(self.data)} bytes)"


@st.composite
def json_bodies(draw: st.DrawFn, *, limit: int, base: str | None = None) -> Body:
    """A (mutated) vendor payload, encoded, at most ``limit`` bytes (cut short beyond)."""
    payload = draw(payloads(huge=limit, base=base))
    data = json.dumps(payload, ensure_ascii=draw(st.booleans())).encode()
    return Body(data[:limit])


@st.composite
def bodies(draw: st.DrawFn, *, limit: int) -> Body:
    """A body: a (mutated) vendor payload, cut short or not, or bytes that are no JSON at all."""
    kind = draw(st.sampled_from(["json", "json", "json", "truncated", "bytes", "deep", "special"]))
    if kind in ("json", "truncated"):
        data = draw(json_bodies(limit=limit)).data
        if kind == "truncated":
            data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    elif kind == "bytes":
        data = draw(st.binary(max_size=200))
    elif kind == "deep":
        depth = draw(st.integers(500, limit // 2))
        data = b"[" * depth + b"]" * draw(st.sampled_from([0, depth]))
    else:
        data = draw(
            st.sampled_from(
                [b"", b"null", b"[]", b"{}", b"0", b'"x"', b"NaN", b"<html>502</html>", b"\xff\xfe"]
            )
        )
    return Body(data)


#: aioresponses feeds the whole body at once, and aiohttp 3.14 asserts (in
#: ``BaseProtocol.pause_reading``) once that passes its 128 KiB high-water mark: a mock limit,
#: not the client's; larger bodies go to the real server.
MOCK_BODY_LIMIT = 100_000
REAL_BODY_LIMIT = 1_000_000
#: What the real-server mutator puts in place of a value.
MUTANTS: list[Any] = [None, "", "EXPLODED", -1, 2**64, 1.5, float("inf"), [], {}, "x" * 5000]


statuses = st.sampled_from([200, 200, 200, 201, 204, 206, 304, 301, 302, 303, 307, 308]) | (
    st.integers(200, 599)
)
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40
)  # what an HTTP header can hold
retry_after = (
    st.sampled_from(
        [
            "0",
            "1",
            "-1",
            "nan",
            "inf",
            "1e308",
            "99999999999999999999",
            " 2 ",
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "Mon, 32 Foo 2025 99:99:99 GMT",
            "",
        ]
    )
    | header_text
)
locations_with_bug = (
    st.sampled_from(
        [
            "/elsewhere",
            "?page=2",
            "",
            f"{BASE}/same-origin",
            "https://vendor.test/other-scheme",
            "http://evil.test/steal",
            "//evil.test/steal",
            "http://[::1",
            "http://vendor.test:99999/",
            "javascript:alert(1)",
        ]
    )
    | header_text
)


locations = locations_with_bug


@st.composite
def headers(draw: st.DrawFn, *, content_length: st.SearchStrategy[str]) -> dict[str, str]:
    drawn: dict[str, str] = {}
    for name, values in (
        ("Retry-After", retry_after),
        ("Location", locations),
        ("Content-Length", content_length),
        ("X-Total", st.sampled_from(["0", "1", "-5", "1e9", "abc", "9" * 40]) | header_text),
        ("ETag", st.sampled_from(['"abc"', "W/x", ""]) | header_text),
        ("Content-Type", st.sampled_from(["text/html", "application/json", "x/y; charset=nope"])),
    ):
        if draw(st.booleans()):
            drawn[name] = draw(values)
    return drawn


# --- the calls --------------------------------------------------------------------------------

Call = Callable[[Client, str], Awaitable[object]]


async def _v4_latest_run(client: Client, base: str) -> object:
    run = await client.codearts_repo(base, token=TOKEN).latest_run(REPO, PIPE)
    assert isinstance(run, Run)
    return run


async def _v4_jobs(client: Client, base: str) -> object:
    jobs = await client.codearts_repo(base, token=TOKEN).jobs(REPO, PIPE)
    assert isinstance(jobs, list)
    assert all(isinstance(job, Job) for job in jobs)
    return jobs


def _v5(client: Client, base: str) -> Any:
    return client.codearts_pipeline(base, project_id="proj", token=TOKEN)


async def _v5_latest_runs(client: Client, base: str) -> object:
    runs = await _v5(client, base).latest_runs(V5_IDS)
    assert set(runs) <= set(V5_IDS)
    assert all(isinstance(run, Run) for run in runs.values())
    return runs


async def _v5_latest_results(client: Client, base: str) -> object:
    results = await _v5(client, base).latest_results(V5_IDS)
    assert set(results) == set(V5_IDS)
    assert all(isinstance(value, Run | PipestatusError) for value in results.values())
    return results


async def _yunxiao_latest_run(client: Client, base: str) -> object:
    run = await client.yunxiao(base, token=TOKEN).latest_run(YX_ID)
    assert isinstance(run, Run)
    return run


async def _poll(client: Client, base: str) -> object:
    targets: list[Target] = [
        client.codearts_repo(base, token=TOKEN).target(REPO, PIPE),
        *(_v5(client, base).target(pipeline_id) for pipeline_id in V5_IDS),
        client.yunxiao(base, token=TOKEN).target(YX_ID),
    ]
    results = await client.poll(targets)
    assert list(results) == targets
    assert all(isinstance(value, Run | PipestatusError) for value in results.values())
    return results


CALLS: dict[str, Call] = {
    "v4.latest_run": _v4_latest_run,
    "v4.jobs": _v4_jobs,
    "v5.latest_runs": _v5_latest_runs,
    "v5.latest_results": _v5_latest_results,
    "yunxiao.latest_run": _yunxiao_latest_run,
    "client.poll": _poll,
}
calls = st.sampled_from(sorted(CALLS))
#: The payload each call expects (``client.poll`` gets any).
PAYLOAD_OF: dict[str, str | None] = {
    "v4.latest_run": "v4-latest-jobs",
    "v4.jobs": "v4-jobs",
    "v5.latest_runs": "v5-batch",
    "v5.latest_results": "v5-batch",
    "yunxiao.latest_run": "yunxiao-latest-run",
    "client.poll": None,
}


async def _ends_well(call: Call, client: Client, base: str) -> object:
    """Run ``call``: its result, or the ``PipestatusError`` it raised; anything else, or a
    call past timeout * attempts + slack, fails the example."""
    bound = client._transport.timeout * (RETRIES + 1) + SLACK
    outcome: object
    try:
        async with asyncio.timeout(bound):
            outcome = await call(client, base)
    except PipestatusError as exc:
        outcome = exc
    if currently_in_test_context():  # event() only exists inside @given
        event(type(outcome).__name__)
    return outcome


# --- aioresponses: many examples, no sockets -------------------------------------------------


@MOCKED
@given(
    name=calls,
    status=statuses,
    # Digits only here: aioresponses bypasses aiohttp's HTTP parser, which refuses any other
    # Content-Length before the client sees it (the real-server tests send the rest).
    head=headers(content_length=st.sampled_from(["0", "1", "5", "99999999999"])),
    body=bodies(limit=MOCK_BODY_LIMIT),
)
def test_mocked_answers_end_in_a_model_or_an_error(
    name: str, status: int, head: dict[str, str], body: Body
) -> None:
    """Any status, headers and body under aioresponses end each call in a model or a
    PipestatusError, never another exception and never a hang."""

    async def scenario() -> None:
        with aioresponses() as mocked:
            for method in ("GET", "POST"):
                mocked.add(
                    ANY_URL, method=method, status=status, body=body.data, headers=head, repeat=True
                )
            async with Client(sleep=_no_sleep, retries=RETRIES, timeout=TIMEOUT) as client:
                await _ends_well(CALLS[name], client, BASE)

    asyncio.run(scenario())


@MOCKED
@given(name=calls, data=st.data())
def test_mocked_vendor_payloads_end_in_a_model_or_an_error(name: str, data: st.DataObject) -> None:
    """Any (mutated) vendor payload in a 200 ends each call in a model or a PipestatusError."""
    body = data.draw(json_bodies(limit=MOCK_BODY_LIMIT, base=PAYLOAD_OF[name]), label="body")

    async def scenario() -> None:
        with aioresponses() as mocked:
            for method in ("GET", "POST"):
                mocked.add(ANY_URL, method=method, status=200, body=body.data, repeat=True)
            async with Client(sleep=_no_sleep, retries=RETRIES, timeout=TIMEOUT) as client:
                await _ends_well(CALLS[name], client, BASE)

    asyncio.run(scenario())


# --- the real server: fewer examples, real HTTP ----------------------------------------------


def _sim_run() -> SimRun:
    return SimRun(7, "running", [SimStage("build", [SimJob("make", "success")])])


def _serve_all(server: VendorServer) -> None:
    server.add_repo_pipeline(REPO, PIPE, _sim_run(), extra_jobs=3)
    for pipeline_id in V5_IDS:
        server.add_v5_pipeline("proj", pipeline_id, _sim_run())
    server.add_yunxiao_pipeline(YX_ID, _sim_run())


def test_real_server_answers_end_in_a_model_or_an_error() -> None:
    """Any status, headers (any Content-Length, Location, Retry-After) and body sent over real
    HTTP end each call in a model or a PipestatusError within its timeout."""
    with asyncio.Runner() as runner:
        server = VendorServer(token=TOKEN)
        runner.run(server.start())
        _serve_all(server)
        try:

            @REAL
            @given(
                name=calls,
                status=statuses,
                head=headers(
                    content_length=st.sampled_from(["0", "3", "99999999999", "-1", "abc", "1,1"])
                    | header_text
                ),
                body=bodies(limit=REAL_BODY_LIMIT),
                gzip=st.booleans(),
            )
            def example(
                name: str, status: int, head: dict[str, str], body: Body, gzip: bool
            ) -> None:
                if gzip:
                    head = {**head, "Content-Encoding": "gzip"}  # a body that is no gzip
                server.clear_faults()
                server.fault(status=status, body=body.data, headers=head)

                async def scenario() -> None:
                    async with Client(sleep=_no_sleep, retries=RETRIES, timeout=TIMEOUT) as client:
                        await _ends_well(CALLS[name], client, server.url)

                runner.run(scenario())

            example()
        finally:
            runner.run(server.close())


def test_real_server_mutated_payloads_end_in_a_model_or_an_error() -> None:
    """The server's own payloads, damaged by a seeded mutator, end each call in a model or a
    PipestatusError over real HTTP."""
    with asyncio.Runner() as runner:
        server = VendorServer(token=TOKEN)
        runner.run(server.start())
        _serve_all(server)
        try:

            @REAL
            @given(name=calls, seed=st.integers(0, 2**32), rounds=st.integers(1, 4))
            def example(name: str, seed: int, rounds: int) -> None:
                def mutate(payload: Any) -> Any:
                    rng = random.Random(seed)
                    for _ in range(rounds):
                        paths = json_paths(payload)
                        path = rng.choice(paths)
                        value: Any = copy.deepcopy(rng.choice(MUTANTS))
                        if not path:
                            payload = value
                            continue
                        parent = payload
                        for key in path[:-1]:
                            parent = parent[key]
                        parent[path[-1]] = value
                    return payload

                server.clear_faults()
                server.fault(payload_mutator=mutate)

                async def scenario() -> None:
                    async with Client(sleep=_no_sleep, retries=RETRIES, timeout=TIMEOUT) as client:
                        await _ends_well(CALLS[name], client, server.url)

                runner.run(scenario())

            example()
        finally:
            runner.run(server.close())


# --- bugs the fuzzing above found (fixed; kept as regressions) ---------------------------


async def test_unparseable_redirect_location_is_an_api_error() -> None:
    """A redirect whose Location cannot be parsed ends in an APIError, for each call."""
    async with VendorServer(token=TOKEN) as server:
        _serve_all(server)
        async with Client(sleep=_no_sleep, retries=RETRIES, timeout=TIMEOUT) as client:
            escaped = []
            for location in ("http://[::1", "http://[bad/"):
                server.clear_faults()
                server.fault(redirect_to=location, redirect_status=302)
                for name, call in CALLS.items():
                    try:
                        await _ends_well(call, client, server.url)
                    except Exception as exc:  # noqa: BLE001 - collecting what escapes
                        escaped.append((location, name, type(exc).__name__))
    assert not escaped, escaped


async def test_out_of_range_port_on_a_default_port_origin_is_an_api_error() -> None:
    """A redirect to the vendor's host with a port out of range ends in an APIError."""
    with aioresponses() as mocked:
        mocked.get(
            re.compile(r"^https://vendor\.test/.*$"),
            status=302,
            headers={"Location": "https://vendor.test:99999/x"},
            repeat=True,
        )
        async with Client(sleep=_no_sleep, retries=RETRIES, timeout=TIMEOUT) as client:
            with pytest.raises(APIError):
                await client.yunxiao("https://vendor.test", token=TOKEN).latest_run(YX_ID)
