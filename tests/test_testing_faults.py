"""Faults as data (``pipestatus.testing.faults``) and chaos as a table (``.chaos``).

The effects are applied alone to an :class:`Exchange` over a mocked request (no server, no
socket), and through a real server where what they do is on the wire.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from pipestatus.testing import CHAOS_KINDS, Fault, SimJob, SimRun, SimStage, VendorServer
from pipestatus.testing._answers import Answer
from pipestatus.testing.chaos import CHAOS, ChaosKind, ChaosSettings, pick_chaos
from pipestatus.testing.faults import (
    AddHeaders,
    Delay,
    Exchange,
    Hang,
    Malformed,
    MutatePayload,
    Oversize,
    RawBody,
    Redirect,
    StatusAnswer,
    Trickle,
    Truncate,
    UnknownStatusWord,
    fault_from,
)

TOKEN = "secret-token"
YX = {"x-yunxiao-token": TOKEN}
YX_PATH = "/oapi/v1/flow/pipelines/1/runs/latestPipelineRun"


class Recorder:
    """The pipeline side of an exchange: counts how often its answer is produced."""

    def __init__(self, payload: Any = None, status: int = 200) -> None:
        self.payload = {"status": "RUNNING", "id": 1} if payload is None else payload
        self.status = status
        self.produced = 0
        self.rendered: list[Answer] = []

    async def produce(self) -> Answer:
        self.produced += 1
        return Answer(self.status, self.payload, {"X-Total": "1"})

    def render(self, answer: Answer) -> web.StreamResponse:
        self.rendered.append(answer)
        return web.Response(status=answer.status, body=json.dumps(answer.payload).encode())


def exchange(recorder: Recorder, fault: Fault | None = None, *, closing: bool = False) -> Exchange:
    event = asyncio.Event()
    if closing:
        event.set()
    return Exchange(
        make_mocked_request("GET", "/x"),
        fault or Fault(),
        event,
        recorder.produce,
        recorder.render,
    )


def body_of(response: web.StreamResponse) -> bytes:
    assert isinstance(response, web.Response)
    assert isinstance(response.body, bytes)
    return response.body


# -- effects applied alone ---------------------------------------------------------------------


async def test_add_headers_hands_on_and_reaches_the_final_answer() -> None:
    """AddHeaders answers nothing itself, and its headers go out on the pipeline's answer."""
    recorder = Recorder()
    ex = exchange(recorder)
    assert await AddHeaders({"X-Fault": "yes"}).apply(ex) is None
    assert recorder.produced == 0
    await ex.finish()
    (answer,) = recorder.rendered
    assert answer.headers == {"X-Total": "1", "X-Fault": "yes"}


async def test_status_answer_answers_without_the_pipeline() -> None:
    """StatusAnswer answers its status and body (Retry-After set) and never asks the pipeline."""
    recorder = Recorder()
    ex = exchange(recorder)
    ex.headers["X-Extra"] = "1"
    response = await StatusAnswer(429, {"code": "Throttled"}, retry_after=3).apply(ex)
    assert response is not None
    assert response.status == 429
    assert response.headers["Retry-After"] == "3"
    assert response.headers["X-Extra"] == "1"
    assert response.headers["Content-Type"].startswith("application/json")
    assert json.loads(body_of(response)) == {"code": "Throttled"}
    assert recorder.produced == 0


async def test_status_answer_defaults_to_an_html_page() -> None:
    """A StatusAnswer without a body sends a gateway's HTML page naming the status."""
    response = await StatusAnswer(502).apply(exchange(Recorder()))
    assert response is not None
    assert response.headers["Content-Type"] == "text/html"
    assert b"502 Bad Gateway" in body_of(response)


@pytest.mark.parametrize(
    ("raw", "sent"),
    [(b"\x00raw", b"\x00raw"), ("[1, 2", b"[1, 2"), ({"a": 1}, b'{"a": 1}')],
    ids=["bytes", "str", "json"],
)
async def test_raw_body_answers_200_with_its_body(raw: object, sent: bytes) -> None:
    """RawBody answers 200 with bytes and str verbatim and anything else as JSON."""
    recorder = Recorder()
    response = await RawBody(raw).apply(exchange(recorder))
    assert response is not None
    assert response.status == 200
    assert body_of(response) == sent
    assert recorder.produced == 0


async def test_redirect_answers_its_status_and_location() -> None:
    """Redirect answers its status with the Location it names."""
    response = await Redirect("http://127.0.0.1:9/x", 307).apply(exchange(Recorder()))
    assert response is not None
    assert response.status == 307
    assert response.headers["Location"] == "http://127.0.0.1:9/x"


async def test_mutate_payload_edits_a_200_and_hands_on() -> None:
    """MutatePayload changes the pipeline's 200 payload once, and answers nothing itself."""
    recorder = Recorder()
    ex = exchange(recorder)
    assert await MutatePayload(lambda p: {**p, "extra": True}).apply(ex) is None
    assert (await ex.answer()).payload == {"status": "RUNNING", "id": 1, "extra": True}
    assert recorder.produced == 1


async def test_mutate_payload_leaves_an_error_answer_alone() -> None:
    """A payload mutator does not touch an answer that is not a 200."""
    recorder = Recorder({"error_code": "X"}, status=404)
    ex = exchange(recorder)
    await MutatePayload(lambda p: "mutated").apply(ex)
    assert (await ex.answer()).payload == {"error_code": "X"}


async def test_unknown_status_word_replaces_top_level_statuses() -> None:
    """UnknownStatusWord rewrites the status of an object, or of each object of a list."""
    for payload, expected in [
        ({"status": "RUNNING"}, {"status": "ZAP"}),
        ([{"status": "A"}, 3], [{"status": "ZAP"}, 3]),
    ]:
        ex = exchange(Recorder(payload))
        assert await UnknownStatusWord("ZAP").apply(ex) is None
        assert (await ex.answer()).payload == expected


async def test_malformed_damages_the_answer_as_the_effects_left_it() -> None:
    """Malformed sends half of the (already mutated) JSON followed by garbage."""
    recorder = Recorder({"status": "RUNNING", "padding": "x" * 40})
    fault = Fault(effects=(UnknownStatusWord("ZAP"), Malformed()))
    response = await fault.apply(exchange(recorder, fault))
    data = body_of(response)
    assert data.startswith(b'{"status": "ZAP"')
    assert data.endswith(b'",,}{"status": ')
    with pytest.raises(json.JSONDecodeError):
        json.loads(data)
    assert recorder.produced == 1


async def test_delay_and_hang_cut_the_request_when_the_server_closes() -> None:
    """Delay and Hang end in a cut connection, not an answer, once the server is closing."""
    for effect in (Delay(30.0), Hang()):
        recorder = Recorder()
        ex = exchange(recorder, closing=True)
        async with asyncio.timeout(5):
            response = await effect.apply(ex)
        assert response is not None
        assert ex.request.transport is not None
        ex.request.transport.close.assert_called()  # type: ignore[attr-defined]
        assert recorder.produced == 0


async def test_hang_goes_on_once_released() -> None:
    """A Hang without a limit hands on to the next effect when its fault is released."""
    fault = Fault(effects=(Hang(),))
    ex = exchange(Recorder(), fault)
    fault.release()
    async with asyncio.timeout(5):
        assert await Hang().apply(ex) is None


async def test_a_fault_without_effects_sends_the_pipelines_answer() -> None:
    """A fault with no effect answers what the pipeline answers, headers included."""
    recorder = Recorder()
    fault = Fault(effects=(AddHeaders({"X-A": "1"}),))
    await fault.apply(exchange(recorder, fault))
    (answer,) = recorder.rendered
    assert answer.payload == recorder.payload
    assert answer.headers["X-A"] == "1"


async def test_the_first_answering_effect_wins() -> None:
    """Effects run in order and an answer ends the fault: later effects never run."""
    recorder = Recorder()
    fault = Fault(effects=(StatusAnswer(503), MutatePayload(lambda p: 1 / 0), Malformed()))
    response = await fault.apply(exchange(recorder, fault))
    assert response.status == 503
    assert recorder.produced == 0


# -- the matcher ---------------------------------------------------------------------------------


def test_fault_matches_vendor_pipeline_path_and_times() -> None:
    """A fault matches only its vendor, one of its pipelines and its path prefix, `times` times."""
    owner: list[Fault] = []
    fault = Fault(vendor="v", pipeline=7, path_prefix="/a/", times=2)
    fault.attach(owner)
    assert fault.pipeline == "7"
    assert fault.matches("v", ["1", "7"], "/a/b")
    assert not fault.matches("w", ["7"], "/a/b")
    assert not fault.matches("v", ["1"], "/a/b")
    assert not fault.matches("v", ["7"], "/b")
    fault.hit()
    assert owner == [fault]
    fault.hit()
    assert owner == []
    assert not fault.matches("v", ["7"], "/a/b")
    assert fault.hits == 2


# -- the keyword builder -----------------------------------------------------------------------


def mutate(payload: Any) -> Any:
    return payload


@pytest.mark.parametrize(
    ("options", "effects"),
    [
        ({}, ()),
        ({"status": 503, "retry_after": 2}, (StatusAnswer(503, None, 2),)),
        (
            {"headers": {"A": "b"}, "delay": 0.5, "hang": True, "status": 500, "body": "x"},
            (AddHeaders({"A": "b"}), Delay(0.5), Hang(), StatusAnswer(500, "x")),
        ),
        ({"redirect_to": "http://o/", "status": 500}, (Redirect("http://o/", 302),)),
        ({"body": {"a": 1}, "oversize_bytes": 10}, (RawBody({"a": 1}),)),
        ({"oversize_bytes": 10, "announce": True}, (Oversize(10, announce=True),)),
        (
            {"payload_mutator": mutate, "malformed": True, "trickle": 0.1},
            (MutatePayload(mutate), Malformed()),
        ),
        ({"truncate": True}, (Truncate(),)),
        ({"reset": True, "truncate": True}, (Truncate(reset=True),)),
        ({"trickle": 0.25}, (Trickle(0.25),)),
    ],
    ids=[
        "none",
        "status",
        "pre-answer-then-status",
        "redirect-first",
        "body-before-oversize",
        "oversize",
        "mutator-then-malformed",
        "truncate",
        "reset",
        "trickle",
    ],
)
def test_fault_keywords_build_effects_in_the_documented_order(
    options: dict[str, Any], effects: tuple[object, ...]
) -> None:
    """server.fault's keywords become pre-answer effects and then the one that wins."""
    assert fault_from(**options).effects == effects


def test_fault_keywords_reject_unknown_names() -> None:
    """A misspelled fault keyword is a TypeError naming it, not a silent no-op."""
    with pytest.raises(TypeError, match="stauts"):
        fault_from(stauts=503)  # type: ignore[call-arg]


# -- the chaos table ---------------------------------------------------------------------------


def names(table: dict[str, ChaosKind], kinds: tuple[str, ...], seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    settings = ChaosSettings(rate=1.0, kinds=kinds)
    picked = [pick_chaos(rng, settings, table) for _ in range(n)]
    return [fault.name for fault in picked if fault is not None]


def row(weight: float) -> ChaosKind:
    return ChaosKind(weight, lambda _rng, _settings: (StatusAnswer(500),))


def test_chaos_weights_drive_the_draw() -> None:
    """Kinds are drawn in proportion to their weights; a kind of weight 0 is never drawn."""
    table = {"never": row(0), "rare": row(1), "common": row(3)}
    counts = collections.Counter(names(table, tuple(table), seed=5, n=4000))
    assert counts["chaos:never"] == 0
    assert 2.5 < counts["chaos:common"] / counts["chaos:rare"] < 3.5
    assert sum(counts.values()) == 4000


def test_chaos_draws_are_seeded() -> None:
    """The same seed draws the same kinds in the same order; another seed does not."""
    kinds = tuple(CHAOS)
    first = names(dict(CHAOS), kinds, seed=9, n=50)
    assert first == names(dict(CHAOS), kinds, seed=9, n=50)
    assert first != names(dict(CHAOS), kinds, seed=10, n=50)


def test_chaos_at_rate_zero_draws_nothing() -> None:
    """With rate 0 chaos faults nothing and leaves the generator untouched."""
    rng = random.Random(1)
    state = rng.getstate()
    assert pick_chaos(rng, ChaosSettings(rate=0.0, kinds=CHAOS_KINDS)) is None
    assert rng.getstate() == state


def test_every_chaos_kind_is_a_row_with_effects() -> None:
    """CHAOS_KINDS is the table's keys, and each row makes at least one effect."""
    assert tuple(CHAOS) == CHAOS_KINDS
    settings = ChaosSettings(rate=1.0, kinds=CHAOS_KINDS, hang=0.5, trickle=0.01)
    for kind, entry in CHAOS.items():
        assert entry.weight > 0, kind
        effects = entry.effects(random.Random(0), settings)
        assert effects, kind
        assert all(callable(effect.apply) for effect in effects)
    assert CHAOS["hang"].effects(random.Random(0), settings) == (Hang(0.5),)


# -- through a server --------------------------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[VendorServer]:
    async with VendorServer(token=TOKEN) as srv:
        srv.add_yunxiao_pipeline(
            "1",
            [SimRun(1, "running", [SimStage("s", [SimJob("j", "running")])]), SimRun(2, "success")],
        )
        yield srv


async def test_added_fault_answers_and_leaves_the_script_alone(server: VendorServer) -> None:
    """A fault built from effects answers instead of the pipeline, whose script stays put."""
    made = server.add_fault(
        Fault(path_prefix="/oapi/", times=1, effects=(StatusAnswer(418, {"no": "tea"}),))
    )
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.url}{YX_PATH}", headers=YX) as resp:
            assert resp.status == 418
            assert await resp.json() == {"no": "tea"}
        async with session.get(f"{server.url}{YX_PATH}", headers=YX) as resp:
            assert (await resp.json())["pipelineRunId"] == 1
    assert made.hits == 1
    assert [r.fault for r in server.requests] == ["fault", None]


async def test_damaging_fault_advances_the_script(server: VendorServer) -> None:
    """A fault that damages the pipeline's answer consumes that script step."""
    server.add_fault(Fault(times=1, effects=(UnknownStatusWord(),)))
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.url}{YX_PATH}", headers=YX) as resp:
            body = await resp.json()
            assert (body["status"], body["pipelineRunId"]) == ("EXPLODED", 1)
            assert "ETag" in resp.headers
        async with session.get(f"{server.url}{YX_PATH}", headers=YX) as resp:
            assert (await resp.json())["pipelineRunId"] == 2


async def test_chaos_settings_stay_writable_attributes(server: VendorServer) -> None:
    """chaos_rate, chaos_hang and chaos_trickle can be set as before: rate 0 stops chaos."""
    server.chaos(1.0, seed=2, kinds=("http_503",))
    server.chaos_hang, server.chaos_trickle = 0.5, 0.01
    assert (server.chaos_rate, server.chaos_hang, server.chaos_trickle) == (1.0, 0.5, 0.01)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.url}{YX_PATH}", headers=YX) as resp:
            assert resp.status == 503
        server.chaos_rate = 0
        async with session.get(f"{server.url}{YX_PATH}", headers=YX) as resp:
            assert resp.status == 200
