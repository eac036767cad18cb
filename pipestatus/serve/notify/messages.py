"""What each sink is sent, as pure functions: the notice of a change, and the request each chat
documents for it, signed where the chat signs.

* ``webhook``: the change's JSON record (that of ``pipestatus watch --json``) with
  ``"event": "pipestatus.change"``; with a secret, the header
  ``X-Pipestatus-Signature: sha256=<hex HMAC-SHA256 of the body>``.
* ``slack`` (incoming webhook): ``{"text": ..., "blocks": [{"type": "section", "text":
  {"type": "mrkdwn", "text": ...}}]}``, with ``&``, ``<`` and ``>`` escaped as Slack asks.
* ``dingtalk`` (custom robot): ``{"msgtype": "markdown", "markdown": {"title", "text"}}`` (or
  ``"text": {"content"}``); signed: ``&timestamp=<ms>&sign=<urlencoded base64 HMAC-SHA256 of
  "{timestamp}\\n{secret}" keyed by the secret>`` added to the address.
* ``feishu`` (custom bot): ``{"msg_type": "text", "content": {"text"}}`` (markdown: an
  ``interactive`` card with a ``lark_md`` block); signed: ``"timestamp"`` (seconds) and
  ``"sign"`` (base64 HMAC-SHA256 keyed by ``"{timestamp}\\n{secret}"`` over an empty message) in
  the body.
* ``wecom`` (group robot): ``{"msgtype": "markdown", "markdown": {"content"}}`` (or ``text``).

Vendor strings were cleaned on the way in (no control character); here they are also escaped
for the chat's markdown, so a branch named ``[x](http://evil)`` is shown, not linked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

import attrs

from pipestatus.cli.config import Followed
from pipestatus.cli.records import change_record
from pipestatus.cli.render import make_row
from pipestatus.model import Change, ChangeKind
from pipestatus.serve.board import safe_href

__all__ = [
    "Notice",
    "Outgoing",
    "dingtalk_sign",
    "feishu_sign",
    "notice_of",
    "outgoing",
    "webhook_signature",
]

#: How each kind of change is announced.
HEADLINES: Final[Mapping[str, str]] = {
    ChangeKind.FIRST: "is {status}",
    ChangeKind.STARTED: "started",
    ChangeKind.FINISHED: "finished: {status}",
    ChangeKind.FIXED: "is fixed",
    ChangeKind.BROKE: "broke: {status}",
    ChangeKind.STILL_FAILING: "is still failing: {status}",
    ChangeKind.MOVED: "moved on: {status}",
    ChangeKind.ERROR: "cannot be read",
    ChangeKind.RECOVERED: "can be read again",
}
_MARKDOWN: Final = re.compile(r"([\\`*_{}\[\]()<>~])")


@attrs.frozen(kw_only=True)
class Notice:
    """A change as people read it: the plain facts every sink's message is made of."""

    pipeline: str
    kind: str
    status: str
    headline: str
    run: str
    branch: str
    stage: str
    duration: str
    url: str | None
    problem: str
    record: Mapping[str, Any]  # the change's JSON record (the generic webhook's body)


@attrs.frozen(kw_only=True)
class Outgoing:
    """One request to send: its address, JSON body and extra headers. Its ``repr`` hides the
    address (a robot's access token is in it)."""

    url: str = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)


def notice_of(item: Followed, change: Change, now: datetime) -> Notice:
    """The notice of ``change`` to ``item``."""
    row = make_row(item, change.current, now)
    headline = HEADLINES.get(change.kind, "changed: {status}").format(status=row.word)
    record = {"event": "pipestatus.change", **change_record(item, change, now)}
    return Notice(
        pipeline=item.label,
        kind=change.kind.value,
        status=row.word,
        headline=f"{item.label} {row.cells['run']} {headline}".replace("  ", " "),
        run=row.cells["run"],
        branch=row.cells["branch"],
        stage=row.cells["stage"],
        duration=row.cells["duration"],
        url=safe_href(record.get("page")),
        problem=row.cells["problem"],
        record=record,
    )


# --- signatures ----------------------------------------------------------------------------------


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's ``sign``: base64 HMAC-SHA256 (keyed by the secret) of
    ``"{timestamp}\\n{secret}"``, URL-encoded."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return quote(base64.b64encode(digest).decode(), safe="")


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu's ``sign``: base64 HMAC-SHA256 keyed by ``"{timestamp}\\n{secret}"`` over an
    empty message."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def webhook_signature(secret: str, body: bytes) -> str:
    """The generic webhook's ``X-Pipestatus-Signature``: ``sha256=`` and the hex HMAC-SHA256
    of the body keyed by the secret (GitHub's form)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- message texts -------------------------------------------------------------------------------


def _md(text: str) -> str:
    """``text`` with markdown's special characters escaped."""
    return _MARKDOWN.sub(r"\\\1", text)


def _slack(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _facts(notice: Notice) -> list[tuple[str, str]]:
    facts = [
        ("status", notice.status),
        ("branch", notice.branch),
        ("stage", notice.stage),
        ("duration", notice.duration),
        ("problem", notice.problem),
    ]
    return [(name, value) for name, value in facts if value]


def plain_text(notice: Notice) -> str:
    lines = [notice.headline]
    lines += [f"{name}: {value}" for name, value in _facts(notice)]
    if notice.url:
        lines.append(notice.url)
    return "\n".join(lines)


def markdown_text(notice: Notice) -> str:
    lines = [f"**{_md(notice.headline)}**", ""]
    lines += [f"- {name}: {_md(value)}" for name, value in _facts(notice)]
    if notice.url:
        lines += ["", f"[open the run]({notice.url.replace(')', '%29')})"]
    return "\n".join(lines)


def _slack_text(notice: Notice) -> str:
    head = f"*{_slack(notice.headline)}*"
    if notice.url:
        head = f"<{_slack(notice.url).replace('|', '%7C')}|{_slack(notice.headline)}>"
    lines = [head] + [f"• {name}: {_slack(value)}" for name, value in _facts(notice)]
    return "\n".join(lines)


def _json(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode("utf-8", "replace")


def outgoing(
    kind: str,
    notice: Notice,
    *,
    url: str,
    secret: str | None,
    msgtype: str,
    now: datetime,
) -> Outgoing:
    """The request that sends ``notice`` to a sink of ``kind`` at ``url``, signed with
    ``secret`` where the chat signs, stamped with ``now``."""
    if kind == "webhook":
        body = _json(notice.record)
        headers = {"X-Pipestatus-Signature": webhook_signature(secret, body)} if secret else {}
        return Outgoing(url=url, body=body, headers=headers)
    if kind == "slack":
        text = _slack_text(notice)
        block = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
        return Outgoing(url=url, body=_json({"text": plain_text(notice), "blocks": [block]}))
    if kind == "dingtalk":
        if msgtype == "text":
            payload: dict[str, Any] = {"msgtype": "text", "text": {"content": plain_text(notice)}}
        else:
            payload = {
                "msgtype": "markdown",
                "markdown": {"title": notice.headline, "text": markdown_text(notice)},
            }
        if secret:
            stamp = int(now.timestamp() * 1000)
            joiner = "&" if "?" in url else "?"
            url = f"{url}{joiner}timestamp={stamp}&sign={dingtalk_sign(secret, stamp)}"
        return Outgoing(url=url, body=_json(payload))
    if kind == "feishu":
        if msgtype == "text":
            payload = {"msg_type": "text", "content": {"text": plain_text(notice)}}
        else:
            payload = {
                "msg_type": "interactive",
                "card": {
                    "header": {"title": {"tag": "plain_text", "content": notice.headline}},
                    "elements": [
                        {"tag": "div", "text": {"tag": "lark_md", "content": markdown_text(notice)}}
                    ],
                },
            }
        if secret:
            stamp = int(now.timestamp())
            payload = {"timestamp": str(stamp), "sign": feishu_sign(secret, stamp), **payload}
        return Outgoing(url=url, body=_json(payload))
    if kind == "wecom":
        if msgtype == "text":
            payload = {"msgtype": "text", "text": {"content": plain_text(notice)}}
        else:
            payload = {"msgtype": "markdown", "markdown": {"content": markdown_text(notice)}}
        return Outgoing(url=url, body=_json(payload))
    raise ValueError(f"unknown sink kind {kind!r}")


def accepted(kind: str, status: int, body: bytes) -> str | None:
    """``None`` when the chat took the message, else why not (never the body as a whole: it
    may echo the address). DingTalk and WeCom answer 200 with ``errcode``; Feishu with
    ``code`` (``StatusCode`` in older answers)."""
    if not 200 <= status < 300:
        return f"HTTP {status}"
    if kind not in ("dingtalk", "wecom", "feishu"):
        return None
    try:
        answer = json.loads(body)
    except ValueError:
        return "an answer that is not JSON"
    if not isinstance(answer, dict):
        return "an answer that is not a JSON object"
    field = "errcode" if kind != "feishu" else ("code" if "code" in answer else "StatusCode")
    code = answer.get(field, 0)
    if code in (0, None):
        return None
    return f"{field} {code}" if isinstance(code, int) else f"{field} is not 0"
