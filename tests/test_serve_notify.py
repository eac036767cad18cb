"""Chat notifications: each sink's documented payload and signature, checked by a local aiohttp
receiver on 127.0.0.1; retries with backoff (the sleep injected); each change sent once; a
receiver that hangs delays nothing else; secrets in no log line; the rules' filters."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import attrs
import pytest
from servehelp import Receiver, until

from pipestatus import Change, Client, Job, Run, Stage, Status
from pipestatus.cli.config import Followed
from pipestatus.cli.demo import demo_fleet
from pipestatus.cli.serveconf import Rule, Sink
from pipestatus.model import ChangeKind
from pipestatus.serve.notify import Notifier
from pipestatus.serve.notify.messages import markdown_text, notice_of
from pipestatus.serve.notify.rules import matches

NOW = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
SECRET = "SEC-robot-secret-5a1f"
ROBOT_TOKEN = "robot-access-token-77c2"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def pipeline() -> Followed:
    followed = demo_fleet(Client(), "https://ci.example", "t", 1)[0]
    return attrs.evolve(followed, label="backend", tags=("prod",))


def failed_run(ref: str = "main", number: int = 42) -> Run:
    job = Job(id="j1", name="unit", status=Status.FAILED, raw_status="FAILED")
    stage = Stage(
        id="s1", name="test", order=0, status=Status.FAILED, raw_status="FAILED", jobs=(job,)
    )
    return Run(
        vendor="x",
        pipeline_id="p",
        run_id=str(number),
        number=number,
        status=Status.FAILED,
        raw_status="FAILED",
        started_at=NOW - timedelta(minutes=3),
        finished_at=NOW,
        ref=ref,
        url="https://ci.example/runs/42",
        stages=(stage,),
    )


def broke(item: Followed, run: Run | None = None) -> Change:
    return Change(
        target=item.target, previous=None, current=run or failed_run(), kind=ChangeKind.BROKE
    )


def sink(name: str, kind: str, url: str, **options: Any) -> Sink:
    return Sink(name=name, kind=kind, url=url, **options)


async def no_wait(_: float) -> None:
    await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def running(notifier: Notifier) -> AsyncIterator[Notifier]:
    task = asyncio.create_task(notifier.run())
    try:
        yield notifier
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def notifier_for(*sinks: Sink, rule: Rule | None = None, **options: Any) -> Notifier:
    rule = rule or Rule(sinks=tuple(s.name for s in sinks))  # type: ignore[arg-type]
    return Notifier([rule], {s.name: s for s in sinks}, clock=lambda: NOW, **options)


# --- each chat's payload and signature --------------------------------------------------------


async def test_dingtalk_gets_signed_markdown(receiver: Receiver) -> None:
    """DingTalk: markdown with a title, and timestamp + sign (base64 HMAC-SHA256 of
    "{timestamp}\n{secret}" keyed by the secret, URL-encoded) added to the address."""
    url = f"{receiver.url}/robot/send?access_token={ROBOT_TOKEN}"
    async with running(notifier_for(sink("ding", "dingtalk", url, secret=SECRET))) as n:
        assert n.submit(pipeline(), broke(pipeline())) == 1
        (got,) = await receiver.wait_for("/robot/send")
    stamp = got.query["timestamp"][0]
    assert int(stamp) == int(NOW.timestamp() * 1000)
    expected = hmac.new(SECRET.encode(), f"{stamp}\n{SECRET}".encode(), hashlib.sha256).digest()
    assert base64.b64decode(got.query["sign"][0]) == expected
    assert got.query["access_token"] == [ROBOT_TOKEN]
    body = got.body
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"].startswith("backend #42 broke")
    assert "https://ci.example/runs/42" in body["markdown"]["text"]


async def test_dingtalk_sign_is_percent_encoded_in_the_address(receiver: Receiver) -> None:
    """The sign's base64 '+', '/' and '=' reach the robot percent-encoded, as DingTalk asks."""
    url = f"{receiver.url}/robot/send?access_token={ROBOT_TOKEN}"
    async with running(notifier_for(sink("ding", "dingtalk", url, secret=SECRET))) as n:
        n.submit(pipeline(), broke(pipeline()))
        (got,) = await receiver.wait_for("/robot/send")
    raw_sign = next(p for p in got.raw_query.split("&") if p.startswith("sign="))[5:]
    assert raw_sign.endswith("%3D")  # base64 of 32 bytes ends with "=", sent as %3D
    assert "+" not in raw_sign
    assert "/" not in raw_sign
    assert unquote(raw_sign) == got.query["sign"][0]


async def test_feishu_gets_a_signed_body(receiver: Receiver) -> None:
    """Feishu: timestamp (seconds) and sign (base64 HMAC-SHA256 keyed by
    "{timestamp}\n{secret}" over an empty message) in the body, and a card."""
    url = f"{receiver.url}/feishu/open-apis/bot/v2/hook/{ROBOT_TOKEN}"
    async with running(notifier_for(sink("fs", "feishu", url, secret=SECRET))) as n:
        n.submit(pipeline(), broke(pipeline()))
        (got,) = await receiver.wait_for(f"/feishu/open-apis/bot/v2/hook/{ROBOT_TOKEN}")
    body = got.body
    assert body["timestamp"] == str(int(NOW.timestamp()))
    key = f"{body['timestamp']}\n{SECRET}".encode()
    assert body["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert body["msg_type"] == "interactive"
    assert body["card"]["header"]["title"]["content"].startswith("backend #42 broke")


async def test_feishu_text_messages(receiver: Receiver) -> None:
    """Feishu with msgtype = "text": {"msg_type": "text", "content": {"text": ...}}."""
    url = f"{receiver.url}/feishu/hook"
    async with running(notifier_for(sink("fs", "feishu", url, msgtype="text"))) as n:
        n.submit(pipeline(), broke(pipeline()))
        (got,) = await receiver.wait_for("/feishu/hook")
    assert got.body["msg_type"] == "text"
    assert "sign" not in got.body  # unsigned without a secret
    assert got.body["content"]["text"].startswith("backend #42 broke")


@pytest.mark.parametrize("msgtype", ["markdown", "text"])
async def test_wecom_gets_its_msgtype(receiver: Receiver, msgtype: str) -> None:
    """WeCom: {"msgtype": "markdown", "markdown": {"content"}} or the text form."""
    url = f"{receiver.url}/cgi-bin/webhook/send?key={ROBOT_TOKEN}"
    async with running(notifier_for(sink("wc", "wecom", url, msgtype=msgtype))) as n:
        n.submit(pipeline(), broke(pipeline()))
        (got,) = await receiver.wait_for("/cgi-bin/webhook/send")
    assert got.body["msgtype"] == msgtype
    assert "backend #42 broke" in got.body[msgtype]["content"]


async def test_slack_gets_text_and_a_mrkdwn_block(receiver: Receiver) -> None:
    """Slack: "text" (the fallback) and a section block of mrkdwn linking the run."""
    async with running(notifier_for(sink("sl", "slack", f"{receiver.url}/services/T/B/X"))) as n:
        n.submit(pipeline(), broke(pipeline(), failed_run(ref="fix<&>")))
        (got,) = await receiver.wait_for("/services/T/B/X")
    block = got.body["blocks"][0]
    assert block["type"] == "section"
    assert block["text"]["type"] == "mrkdwn"
    assert block["text"]["text"].startswith("<https://ci.example/runs/42|backend #42 broke")
    assert "fix&lt;&amp;&gt;" in block["text"]["text"]
    assert got.body["text"].startswith("backend #42 broke")


async def test_the_webhook_gets_the_change_record_signed(receiver: Receiver) -> None:
    """The generic webhook: the change's JSON record, and X-Pipestatus-Signature (hex
    HMAC-SHA256 of the body) when it has a secret."""
    url = f"{receiver.url}/hook"
    async with running(notifier_for(sink("wh", "webhook", url, secret=SECRET))) as n:
        n.submit(pipeline(), broke(pipeline()))
        (got,) = await receiver.wait_for("/hook")
    body = got.body
    assert body["event"] == "pipestatus.change"
    assert body["kind"] == "broke"
    assert body["name"] == "backend"
    assert body["status"] == "failed"
    signature = hmac.new(SECRET.encode(), got.raw, hashlib.sha256).hexdigest()
    assert got.headers["X-Pipestatus-Signature"] == f"sha256={signature}"


def test_markdown_escapes_vendor_strings() -> None:
    """A branch written as a markdown link is shown, never made a link."""
    run = failed_run(ref="[click](https://evil.example)")
    text = markdown_text(notice_of(pipeline(), broke(pipeline(), run), NOW))
    assert "[click](https://evil.example)" not in text
    assert r"\[click\]\(https://evil.example\)" in text


# --- delivery ----------------------------------------------------------------------------------


async def test_a_hanging_receiver_delays_nothing_else(receiver: Receiver) -> None:
    """While one sink's receiver holds its request, another sink's message is delivered and
    submit returns at once."""
    hanging = sink("slow", "webhook", f"{receiver.url}/hang", timeout=60.0)
    fine = sink("fast", "webhook", f"{receiver.url}/ok")
    async with running(notifier_for(hanging, fine)) as n:
        assert n.submit(pipeline(), broke(pipeline())) == 2
        await receiver.wait_for("/hang")
        (got,) = await receiver.wait_for("/ok")
        assert not receiver.release.is_set()  # the slow one is still held
        second = broke(pipeline(), failed_run(number=43))
        assert n.submit(pipeline(), second) == 2  # queued behind the hanging one: no wait
        assert len(await receiver.wait_for("/ok", 2)) == 2
        slow = next(s for s in n.states() if s.name == "slow")
        assert slow.queued == 1
        assert slow.sent == 0
    assert got.body["name"] == "backend"


async def test_a_failing_sink_is_retried_with_backoff_then_reported(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """A sink answering 500 is tried 1 + retries times with doubling waits, then counted as
    failed and reported as failing, its address and secret in no log line."""
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    url = f"{receiver.url}/fail?access_token={ROBOT_TOKEN}"
    failing = sink("ding", "dingtalk", url, secret=SECRET, retries=2)
    caplog.set_level(logging.DEBUG, logger="pipestatus")
    notifier = notifier_for(failing, sleep=sleep, backoff_base=1.0)
    async with running(notifier) as n:
        n.submit(pipeline(), broke(pipeline()))
        await receiver.wait_for("/fail", 3)

        async def reported() -> bool:
            return bool(n.failing())

        await until(reported)
    assert waits == [1.0, 2.0]
    (state,) = notifier.states()
    assert (state.sent, state.failed, state.failing) == (0, 1, True)
    assert notifier.failing() == ["ding (dingtalk): HTTP 500"]
    for record in caplog.records:
        text = record.getMessage()
        assert ROBOT_TOKEN not in text
        assert SECRET not in text
        assert receiver.url not in text
    assert "ding" in caplog.text


async def test_a_chat_error_code_is_a_failure(receiver: Receiver) -> None:
    """DingTalk answering 200 with a non-zero errcode has not taken the message."""
    notifier = notifier_for(sink("ding", "dingtalk", f"{receiver.url}/errcode", retries=0))
    async with running(notifier) as n:
        n.submit(pipeline(), broke(pipeline()))
        await receiver.wait_for("/errcode")

        async def reported() -> bool:
            return bool(n.failing())

        await until(reported)
    assert notifier.failing() == ["ding (dingtalk): errcode 310000"]


async def test_each_change_is_sent_once(receiver: Receiver) -> None:
    """The same change offered twice, through two rules to the same sink, is sent once; a
    second rule to another sink sends it there once too."""
    one = sink("one", "webhook", f"{receiver.url}/one")
    two = sink("two", "webhook", f"{receiver.url}/two")
    rules = [
        Rule(sinks=("one",)),  # type: ignore[arg-type]
        Rule(sinks=("one", "two"), index=1),  # type: ignore[arg-type]
    ]
    notifier = Notifier(rules, {"one": one, "two": two}, clock=lambda: NOW)
    async with running(notifier) as n:
        change = broke(pipeline())
        assert n.submit(pipeline(), change) == 2
        assert n.submit(pipeline(), change) == 0
        await receiver.wait_for("/one")
        await receiver.wait_for("/two")
        other = broke(pipeline(), failed_run(number=43))
        assert n.submit(pipeline(), other) == 2
        await receiver.wait_for("/one", 2)
    assert len([r for r in receiver.got if r.path == "/one"]) == 2
    assert sorted(r.path for r in receiver.got) == ["/one", "/one", "/two", "/two"]


def test_a_full_queue_drops_the_oldest() -> None:
    """Past max_queue the oldest waiting message is dropped and counted."""
    notifier = notifier_for(sink("q", "webhook", "http://127.0.0.1:9/x"), max_queue=2)
    for number in (1, 2, 3):
        notifier.submit(pipeline(), broke(pipeline(), failed_run(number=number)))
    (state,) = notifier.states()
    assert (state.queued, state.dropped) == (2, 1)


# --- rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "ref", "kind", "sent"),
    [
        pytest.param({}, "main", ChangeKind.BROKE, True, id="defaults-broke"),
        pytest.param({}, "main", ChangeKind.STARTED, False, id="defaults-not-started"),
        pytest.param({"kinds": ("started",)}, "main", ChangeKind.STARTED, True, id="kinds"),
        pytest.param({"pipelines": ("back*",)}, "main", ChangeKind.BROKE, True, id="name-glob"),
        pytest.param({"pipelines": ("front*",)}, "main", ChangeKind.BROKE, False, id="name-no"),
        pytest.param({"tags": ("prod",)}, "main", ChangeKind.BROKE, True, id="tag"),
        pytest.param({"tags": ("staging",)}, "main", ChangeKind.BROKE, False, id="tag-no"),
        pytest.param({"branches": ("release/*",)}, "release/2", ChangeKind.BROKE, True, id="br"),
        pytest.param({"branches": ("release/*",)}, "main", ChangeKind.BROKE, False, id="br-no"),
    ],
)
def test_rules_filter_by_kind_name_tag_and_branch(
    rule: dict[str, Any], ref: str, kind: ChangeKind, sent: bool
) -> None:
    """A rule sends a change when its kind is one of the rule's and every filter matches."""
    item = pipeline()
    change = Change(target=item.target, previous=None, current=failed_run(ref=ref), kind=kind)
    assert matches(Rule(sinks=("s",), **rule), item, change) is sent  # type: ignore[arg-type]
