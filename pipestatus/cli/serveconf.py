"""The configuration of ``pipestatus serve``: the ``[serve]`` table (the bearer token's variable,
the poll interval, how the page groups pipelines) and the ``[notify]`` table (chat sinks and the
rules that send changes to them), structured by the one converter of
:mod:`pipestatus.cli.convert` into frozen attrs classes, every problem addressed by its key path
(``notify.sinks.team.kind: must be one of ...``).

Secrets never live in the file: a sink names the environment variable of its webhook address
(``url_env``; robots take their access token in it) and of its signing secret (``secret_env``);
``[serve] token_env`` names the bearer token's. :func:`resolve_service` reads them from the
environment at startup (a missing one is a :class:`~pipestatus.cli.config.ConfigError` naming
the key), into values whose ``repr`` shows neither address nor secret.

::

    [serve]
    token_env = "PIPESTATUS_SERVE_TOKEN"   # optional: every path then wants this bearer token
    interval = 30                          # seconds between polls
    group_by = "account"                   # or "tag"

    [notify.sinks.team]
    kind = "dingtalk"                      # webhook, slack, dingtalk, feishu, wecom
    url_env = "DINGTALK_WEBHOOK"           # or url = "https://..." (no secret in it)
    secret_env = "DINGTALK_SECRET"         # dingtalk/feishu signing; webhook: an HMAC header

    [[notify.rules]]
    sinks = ["team"]
    kinds = ["broke", "fixed"]             # the change kinds to send (default: these two)
    pipelines = ["backend*"]               # name globs; tags = [...], branches = [...]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, NewType

import attrs

from pipestatus.cli.convert import (
    CONVERTER,
    EnvName,
    HookURL,
    Invalid,
    Problem,
    Word,
    check_hook_url,
    structure,
)
from pipestatus.model import ChangeKind
from pipestatus.vendors._spec import OptionError

__all__ = [
    "DEFAULT_KINDS",
    "SINK_KINDS",
    "Kind",
    "Notify",
    "Rule",
    "ServeKeys",
    "Service",
    "Sink",
    "SinkKeys",
    "parse_notify",
    "parse_serve",
    "resolve_service",
]

#: The chat and webhook sinks a ``kind`` may name.
SINK_KINDS: Final = ("webhook", "slack", "dingtalk", "feishu", "wecom")
#: The message types a DingTalk or WeCom robot takes (``msgtype``).
MSGTYPES: Final = ("markdown", "text")
#: What a rule sends when it names no kinds: a pipeline broke, or was fixed.
DEFAULT_KINDS: Final = (ChangeKind.BROKE, ChangeKind.FIXED)

#: A sink's kind, one of :data:`SINK_KINDS`.
SinkKind = NewType("SinkKind", str)
#: A change kind's word (``broke``), one of :class:`~pipestatus.model.ChangeKind`'s values.
Kind = NewType("Kind", str)


def _sink_kind(value: object, _: object) -> SinkKind:
    if not isinstance(value, str) or value not in SINK_KINDS:
        raise Invalid(f"must be one of {', '.join(SINK_KINDS)}")
    return SinkKind(value)


def _kind(value: object, _: object) -> Kind:
    words = [kind.value for kind in ChangeKind]
    if not isinstance(value, str) or value not in words:
        raise Invalid(f"must be one of {', '.join(words)}")
    return Kind(value)


CONVERTER.register_structure_hook(SinkKind, _sink_kind)
CONVERTER.register_structure_hook(Kind, _kind)


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 < value < float("inf"):
        raise OptionError(attribute.name, "must be a positive number of seconds")


def _retries(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= 20:
        raise OptionError(attribute.name, "must be in 0..20")


@attrs.frozen(kw_only=True)
class ServeKeys:
    """The ``[serve]`` table."""

    token_env: EnvName | None = None
    interval: float = attrs.field(default=30.0, validator=_positive)
    group_by: Literal["account", "tag"] = "account"


@attrs.frozen(kw_only=True)
class SinkKeys:
    """A ``[notify.sinks.NAME]`` table, as written (names of variables, never their values)."""

    kind: SinkKind
    url: HookURL | None = None
    url_env: EnvName | None = None
    secret_env: EnvName | None = None
    msgtype: Literal["markdown", "text"] = "markdown"
    timeout: float = attrs.field(default=10.0, validator=_positive)
    retries: int = attrs.field(default=3, validator=_retries)


@attrs.frozen(kw_only=True)
class Rule:
    """A ``[[notify.rules]]`` entry: which changes go to which sinks. Each filter is a tuple of
    ``fnmatch`` globs (empty: any); a change is sent when its kind is in ``kinds`` and every
    filter matches (``tags``: any of the pipeline's tags)."""

    sinks: tuple[Word, ...]
    kinds: tuple[Kind, ...] = tuple(Kind(kind.value) for kind in DEFAULT_KINDS)
    pipelines: tuple[Word, ...] = ()
    tags: tuple[Word, ...] = ()
    branches: tuple[Word, ...] = ()
    index: int = 0  # position in the file, for messages (notify.rules[index])


@attrs.frozen(kw_only=True)
class Notify:
    """The ``[notify]`` table: sinks by name and rules in file order."""

    sinks: Mapping[str, SinkKeys] = attrs.Factory(dict)
    rules: tuple[Rule, ...] = ()


@attrs.frozen(kw_only=True)
class Sink:
    """A sink ready to send: its name, kind, address and secret (read from the environment;
    shown by neither ``repr`` nor any message), message type, per-attempt timeout and retries."""

    name: str
    kind: str
    url: str = attrs.field(repr=False)
    secret: str | None = attrs.field(default=None, repr=False)
    msgtype: str = "markdown"
    timeout: float = 10.0
    retries: int = 3

    @property
    def signed(self) -> bool:
        return self.secret is not None


@attrs.frozen(kw_only=True)
class Service:
    """What ``serve`` reads from the environment at startup: the bearer token (or ``None``)
    and the sinks, by name."""

    token: str | None = attrs.field(default=None, repr=False)
    sinks: Mapping[str, Sink] = attrs.Factory(dict)


def _table(raw: object, where: str) -> dict[str, object]:
    if not isinstance(raw, dict):
        raise Problem(where, "must be a table")
    return raw


def parse_serve(raw: object) -> ServeKeys:
    """The ``[serve]`` table, or a :class:`Problem` at its key."""
    return structure(_table(raw, "serve"), ServeKeys, "serve")


def parse_notify(raw: object) -> Notify:
    """The ``[notify]`` table, or a :class:`Problem` at its key: an unknown sink kind, an
    address that cannot be parsed, a sink with both or neither of ``url`` and ``url_env``, a
    rule naming a sink that is not defined."""
    table = _table(raw, "notify")
    for key in table:
        if key not in ("sinks", "rules"):
            raise Problem(f"notify.{key}", "unknown key (expected rules, sinks)")
    sinks: dict[str, SinkKeys] = {}
    for name, entry in _table(table.get("sinks", {}), "notify.sinks").items():
        where = f"notify.sinks.{name}"
        sink = structure(_table(entry, where), SinkKeys, where)
        if (sink.url is None) == (sink.url_env is None):
            raise Problem(f"{where}.url", "give one of url and url_env")
        sinks[name] = sink
    raw_rules = table.get("rules", [])
    if not isinstance(raw_rules, list):
        raise Problem("notify.rules", "must be an array of tables: [[notify.rules]]")
    rules: list[Rule] = []
    for index, entry in enumerate(raw_rules):
        where = f"notify.rules[{index}]"
        rule = structure({**_table(entry, where), "index": index}, Rule, where)
        if not rule.sinks:
            raise Problem(f"{where}.sinks", "name at least one sink")
        for position, name in enumerate(rule.sinks):
            if name not in sinks:
                known = ", ".join(sorted(sinks)) or "none defined"
                raise Problem(f"{where}.sinks[{position}]", f"no sink of that name ({known})")
        rules.append(rule)
    return Notify(sinks=sinks, rules=tuple(rules))


def _variable(environ: Mapping[str, str], name: str, key: str, source: str) -> str:
    from pipestatus.cli.config import ConfigError

    value = environ.get(name, "").strip()
    if not value:
        state = "is empty" if name in environ else "is not set"
        raise ConfigError(f"{source}: {key}: environment variable {name} {state}")
    return value


def resolve_service(
    serve: ServeKeys, notify: Notify, environ: Mapping[str, str], *, source: str
) -> Service:
    """The bearer token and each sink's address and secret, from the environment; a missing
    variable, or one whose address cannot be used, is a ``ConfigError`` naming the key (and
    never the value)."""
    from pipestatus.cli.config import ConfigError

    token = None
    if serve.token_env is not None:
        token = _variable(environ, serve.token_env, "serve.token_env", source)
    sinks: dict[str, Sink] = {}
    for name, keys in notify.sinks.items():
        where = f"notify.sinks.{name}"
        url: str | None = keys.url
        if keys.url_env is not None:
            url = _variable(environ, keys.url_env, f"{where}.url_env", source)
            try:
                check_hook_url(url)
            except Invalid as exc:
                raise ConfigError(
                    f"{source}: {where}.url_env: environment variable {keys.url_env}: {exc}"
                ) from None
        assert url is not None  # parse_notify demands one of the two
        secret = None
        if keys.secret_env is not None:
            secret = _variable(environ, keys.secret_env, f"{where}.secret_env", source)
        sinks[name] = Sink(
            name=name,
            kind=keys.kind,
            url=url,
            secret=secret,
            msgtype=keys.msgtype,
            timeout=keys.timeout,
            retries=keys.retries,
        )
    return Service(token=token, sinks=sinks)
